"""A data root the API can serve: a simulated world's warehouse, a LightGBM model per entity
kind trained on it and exported with the bundle exporter, and the published score history.
Used by the API tests and by experiments/bench_api.py."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from pathlib import Path
from typing import Self

import pandas as pd
import uvicorn

from models.bundle.export import BundleFacts, export_model
from models.catalogue import build_model
from models.data import load_training_table

ENTITIES = ("village", "project")
HORIZON_DAYS = 30
THRESHOLDS = (0.30, 0.15, 0.05)


def train_bundle(warehouse: Path, entity: str, folder: Path, version: str, learning_rate: float = 0.05) -> Path:
    """Train the calibrated LightGBM model on ``warehouse``'s labelled rows and export its bundle."""
    table = load_training_table(warehouse, entity, HORIZON_DAYS)
    model = build_model("lightgbm", entity, table.features, HORIZON_DAYS,
                        lightgbm_params={"learning_rate": learning_rate})
    model.fit(table.X, table.y, table.snapshots)
    facts = BundleFacts(entity=entity, horizon_days=HORIZON_DAYS, level_thresholds=THRESHOLDS,
                        training_data_fingerprint=table.fingerprint, model_version=version)
    return export_model(model, folder, facts)


def copy_warehouse(source: Path, root: Path) -> Path:
    """A private copy of a warehouse under ``root`` (tests publish scores into it)."""
    target = root / "warehouse"
    shutil.copytree(source, target)
    return target


def publish_history(warehouse: Path, entity: str, rows: pd.DataFrame) -> Path:
    """Write ``score_history_<entity>.parquet`` in the contract's columns (what batch scoring
    publishes): ``<id>``, snapshot, probability, level, model_version, scored_at."""
    path = warehouse / f"score_history_{entity}.parquet"
    rows.to_parquet(path, index=False)
    return path


class LiveServer:
    """A real uvicorn server for ``app`` on a free loopback port, in a thread; bounded waits for
    start and stop."""

    def __init__(self, app, start_seconds: float = 60.0) -> None:
        self.socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.socket.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_config=None, access_log=False, lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]}, daemon=True)
        self.start_seconds = start_seconds

    def __enter__(self) -> Self:
        self.thread.start()
        deadline = time.monotonic() + self.start_seconds
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError(f"uvicorn did not start within {self.start_seconds} s")
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)
        self.socket.close()
