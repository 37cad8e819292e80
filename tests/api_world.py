"""A data root the API can serve — a simulated world's warehouse, LightGBM models per entity
kind trained on it, exported with the bundle exporter and registered in MLflow, the published
score history and tokens — and a real uvicorn server to serve it in tests."""

from __future__ import annotations

import shutil
import socket
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Self

import httpx
import mlflow
import pandas as pd
import uvicorn
from mlflow import MlflowClient

from fengqiao.settings import Settings
from models.batch_scoring import score_snapshot, write_scores
from models.bundle import load_bundle
from models.bundle.export import BundleFacts, export_model
from models.bundle.pyfunc import log_bundle
from models.catalogue import build_model
from models.data import load_training_table
from models.tracking import (
    REGISTERED_MODELS,
    artifact_location,
    experiment_id,
    use_store,
)
from serving.tokens import create_token

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


COUNTY_A, COUNTY_B = "610722", "610723"
SHARED_PROJECT = "PRJ00002"
"""A project of county B that the fixture extends to a village of county A."""
SCOPES = ("city", "admin", f"county:{COUNTY_A}", f"county:{COUNTY_B}")


@dataclass
class Api:
    url: str
    root: Path
    tokens: dict[str, str]

    def client(self, scope: str | None = "city") -> httpx.Client:
        headers = {"Authorization": f"Bearer {self.tokens[scope]}"} if scope else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def tokens_of(root: Path) -> dict[str, str]:
    """The fixture's tokens by scope."""
    return {scope: (root / "secrets" / f"{scope.replace(':', '_')}.token").read_text() for scope in SCOPES}


def serving_settings(root: Path, models: Path, **extra) -> Settings:
    return Settings(data_root=root, api_village_model=str(models / "village"),
                    api_project_model=str(models / "project"), **extra)


def build_api_root(model_warehouse: Path, root: Path) -> Path:
    """A data root the API can serve: the model world's warehouse (one project extended to a
    second county); version 1 and 2 bundles of each kind as folders (``bundles/<v>/<entity>``);
    the last two snapshots scored by batch scoring with version 1 (the published history); and
    four tokens."""
    warehouse = copy_warehouse(model_warehouse, root)
    projects = pd.read_parquet(warehouse / "projects.parquet")
    regions = pd.read_parquet(warehouse / "regions.parquet")
    village_a = regions.loc[regions["county_id"] == COUNTY_A, "village_id"].iloc[0]
    row = projects["project_id"] == SHARED_PROJECT
    projects.loc[row, "village_ids"] = projects.loc[row, "village_ids"] + "|" + village_a
    projects.to_parquet(warehouse / "projects.parquet", index=False)
    settings = Settings(data_root=root)
    for entity in ENTITIES:
        table = load_training_table(warehouse, entity, HORIZON_DAYS, labelled_only=False)
        for version, rate in (("1", 0.05), ("2", 0.1)):
            train_bundle(warehouse, entity, root / "bundles" / version / entity, version, learning_rate=rate)
        bundle = load_bundle(root / "bundles" / "1" / entity)
        for week, snapshot in enumerate(sorted(table.frame["snapshot"].unique())[-2:]):
            frame = table.frame[table.frame["snapshot"] == snapshot]
            write_scores(warehouse, entity, score_snapshot(bundle, frame, entity,
                                                           scored_at=datetime(2026, 1, 5 + 7 * week, tzinfo=UTC)))
    for scope in SCOPES:
        token, _ = create_token(settings.tokens_path, scope)
        (root / "secrets" / f"{scope.replace(':', '_')}.token").write_text(token)
    return root


def register(root: Path, entity: str, folder: Path) -> tuple[MlflowClient, str]:
    """Log the bundle in ``folder`` as a new version of the entity's registered model in the
    data root's MLflow store, as training does; returns the client and the version."""
    settings = Settings(data_root=root)
    client = use_store(settings.tracking_uri)
    table = load_training_table(root / "warehouse", entity, HORIZON_DAYS)
    with mlflow.start_run(experiment_id=experiment_id(client, entity, artifact_location(settings.mlflow_dir))):
        info = log_bundle(folder, table.X.head(3), REGISTERED_MODELS[entity])
    return client, str(info.registered_model_version)
