"""Write a simulated world the way a platform export looks: CSV and Parquet per table,
plus the truth a real export never has (oracle, daily intensity) and a record of the world.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from features.truth import ORACLE_FILES
from fengqiao.publish import write_atomic
from pipelines.simulate.csv_text import write_csv
from pipelines.simulate.dirty import inject_dirty
from pipelines.simulate.world import World, config_dict

WORLD_FILE = "world.json"
INJECTION_LOG = "dirty_injected.csv"
INTENSITY_FILE = "daily_intensity.npy"


def _save_npy(path: Path, array: np.ndarray) -> None:
    with path.open("wb") as fh:
        np.save(fh, array)


def write_export(world: World, out_dir: Path, dirty: bool = False, dirty_rate: float = 0.01) -> dict[str, Path]:
    """Write the export tables (``<table>.csv`` and ``<table>.parquet``), the oracle files,
    ``daily_intensity.npy`` (λ[day, village] in regions order) and ``world.json`` (config, the
    world's start and end — the moment of the export — its horizon, and the realised rates).
    A world without an oracle (continued under plans) writes none and removes an older one. With ``dirty``, realistic bad data is injected at ``dirty_rate`` and the
    list of what was injected goes to ``dirty_injected.csv``. Returns the paths written.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tables = world.tables
    written: dict[str, Path] = {}
    if dirty:
        rng = np.random.default_rng(world.config.seed + 1)
        tables, injected = inject_dirty(tables, rng, rate=dirty_rate, as_of=world.export_end)
        path = out_dir / INJECTION_LOG
        write_atomic(path, lambda p: injected.to_csv(p, index=False))
        written["dirty_injected"] = path
    else:
        (out_dir / INJECTION_LOG).unlink(missing_ok=True)
    for name, frame in tables.items():
        for suffix, write in (
            (".parquet", lambda p, f=frame: f.to_parquet(p, index=False)),
            (".csv", lambda p, f=frame: write_csv(f, p)),
        ):
            path = out_dir / f"{name}{suffix}"
            write_atomic(path, write)
            written[f"{name}{suffix}"] = path
    for entity, frame in (("village", world.oracle_villages), ("project", world.oracle_projects)):
        path = out_dir / ORACLE_FILES[entity]
        if frame is None:
            path.unlink(missing_ok=True)
            continue
        write_atomic(path, lambda p, f=frame: f.to_parquet(p, index=False))
        written[ORACLE_FILES[entity]] = path
    path = out_dir / INTENSITY_FILE
    write_atomic(path, lambda p: _save_npy(p, world.daily_intensity))
    written[INTENSITY_FILE] = path
    record = {"config": config_dict(world.config), "start": world.config.start_ts.isoformat(),
              "end": world.export_end.isoformat(), "horizon_days": world.config.horizon_days,
              "rates": world.rates,
              "rows": {k: len(v) for k, v in world.tables.items()}, "dirty": dirty}
    path = out_dir / WORLD_FILE
    write_atomic(path, lambda p: p.write_text(json.dumps(record, indent=2, ensure_ascii=False, default=str)))
    written[WORLD_FILE] = path
    return written


def rates_table(rates: dict[str, float]) -> str:
    """The realised rates as aligned text lines for the run summary."""
    width = max(len(k) for k in rates)
    return "\n".join(f"  {k:<{width}}  {v:,.4g}" for k, v in rates.items())
