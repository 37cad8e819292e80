"""The operator's jobs — simulate, ingest, build features — each a plain function over
Settings, so that the CLI (and later the Prefect flows) only wire them together."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from features.engine import build_and_write, features_path
from features.ingest import run_ingest
from features.truth import ORACLE_FILES, check_horizon, stored_oracle_horizon
from fengqiao.settings import Settings
from pipelines.simulate.export import WORLD_FILE, copy_truth, rates_table, write_export
from pipelines.simulate.config import Progress, SimulationConfig
from pipelines.simulate.world import simulate_world

log = logging.getLogger(__name__)


@dataclass
class JobResult:
    """What a job did, as the lines the run summary prints."""

    name: str
    seconds: float
    lines: list[str]

    def render(self) -> str:
        return "\n".join([f"== {self.name} ({self.seconds:.1f} s)", *self.lines])


def simulate_job(config: SimulationConfig, out_dir: Path, dirty: bool = False, dirty_rate: float = 0.01,
                 progress: Progress | None = None) -> JobResult:
    """Simulate a world and write it as a platform export to ``out_dir``; ``progress`` hears
    of each step (see ``pipelines.simulate.world.Progress``)."""
    started = time.perf_counter()
    report = progress or (lambda step, done, total: None)
    world = simulate_world(config, progress=report)
    report("export", 0, 0)
    written = write_export(world, out_dir, dirty=dirty, dirty_rate=dirty_rate)
    lines = [f"export written to {out_dir} ({len(written)} files{', with injected bad data' if dirty else ''})"]
    lines += [f"  {name:<10} {len(frame):>12,} rows" for name, frame in world.tables.items()]
    lines += ["realised rates:", rates_table(world.rates)]
    return JobResult("simulate", time.perf_counter() - started, lines)


def ingest_job(settings: Settings, source: str, mapping: Path | None = None, create_key: bool = False,
               as_of: pd.Timestamp | None = None) -> JobResult:
    """Validate and pseudonymise ``source`` into the warehouse; copy a simulated world's oracle.

    Timestamps after ``as_of`` are rejected as future dates. Its default is the end of a
    simulated world (``world.json`` in the source folder), else now.
    """
    started = time.perf_counter()
    as_of = as_of if as_of is not None else simulated_export_end(source)
    report = run_ingest(source, settings.warehouse_dir, settings.hmac_key(create=create_key),
                        mapping=mapping, as_of=as_of, timezone=settings.timezone)
    lines = [report.summary()]
    if Path(source).is_dir():
        copied = copy_truth(Path(source), settings.warehouse_dir)
        if copied:
            lines.append("oracle (synthetic truth) copied: " + ", ".join(p.name for p in copied))
    return JobResult("ingest", time.perf_counter() - started, lines)


def simulated_export_end(source: str) -> pd.Timestamp | None:
    """The moment a simulated export was made (``end`` in its ``world.json``), or None for a
    real export."""
    record = Path(source) / WORLD_FILE
    if not record.is_file():
        return None
    return pd.Timestamp(json.loads(record.read_text())["end"])


def features_job(settings: Settings) -> JobResult:
    """Build the point-in-time feature tables of villages and projects from the warehouse.

    A simulated world's oracle in the warehouse must share the labels' horizon: a mismatch
    stops the job before anything is written.
    """
    started = time.perf_counter()
    oracle_days = stored_oracle_horizon(settings.warehouse_dir)
    if oracle_days is not None:
        check_horizon(oracle_days, settings.horizon_days, str(settings.warehouse_dir / ORACLE_FILES["village"]))
    builds = build_and_write(settings.warehouse_dir, snapshot_every_days=settings.snapshot_every_days,
                             horizon_days=settings.horizon_days)
    lines = [str(b.summary) for b in builds]
    lines += [f"written: {features_path(settings.warehouse_dir, b.entity)}" for b in builds if b.summary.built]
    return JobResult("features", time.perf_counter() - started, lines)
