"""The operator's jobs — simulate, ingest, build features — each a plain function over
Settings, so that the CLI (and later the Prefect flows) only wire them together."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from features.city import City, load_city
from features.engine import EngineOptions, NeighbourParams, build_and_write, features_path
from features.ingest import run_ingest
from fengqiao.settings import Settings
from pipelines.simulate.export import copy_truth, rates_table, write_export
from pipelines.simulate.world import SimulationConfig, simulate_world

log = logging.getLogger(__name__)


@dataclass
class JobResult:
    """What a job did, as the lines the run summary prints."""

    name: str
    seconds: float
    lines: list[str]

    def render(self) -> str:
        return "\n".join([f"== {self.name} ({self.seconds:.1f} s)", *self.lines])


def simulate_job(config: SimulationConfig, out_dir: Path, dirty: bool = False, dirty_rate: float = 0.01) -> JobResult:
    """Simulate a world and write it as a platform export to ``out_dir``."""
    started = time.perf_counter()
    world = simulate_world(config)
    written = write_export(world, out_dir, dirty=dirty, dirty_rate=dirty_rate)
    lines = [f"export written to {out_dir} ({len(written)} files{', with injected bad data' if dirty else ''})"]
    lines += [f"  {name:<10} {len(frame):>12,} rows" for name, frame in world.tables.items()]
    lines += ["realised rates:", rates_table(world.rates)]
    return JobResult("simulate", time.perf_counter() - started, lines)


def ingest_job(settings: Settings, source: str, mapping: Path | None = None, create_key: bool = False,
               as_of: pd.Timestamp | None = None) -> JobResult:
    """Validate and pseudonymise ``source`` into the warehouse; copy a simulated world's oracle.

    Timestamps after ``as_of`` (default: now) are rejected as future dates.
    """
    started = time.perf_counter()
    city = city_of(settings)
    report = run_ingest(source, settings.warehouse_dir, settings.hmac_key(create=create_key),
                        mapping=mapping, as_of=as_of, timezone=settings.timezone, contracts=city.contracts)
    lines = [report.summary()]
    if Path(source).is_dir():
        copied = copy_truth(Path(source), settings.warehouse_dir)
        if copied:
            lines.append("oracle (synthetic truth) copied: " + ", ".join(p.name for p in copied))
    return JobResult("ingest", time.perf_counter() - started, lines)


def city_of(settings: Settings) -> City:
    """The city's tables, sources, entity kinds and calendar: the defaults and its configuration file."""
    return load_city(settings.city_config, settings.windows_days, settings.decay_days)


def engine_options(settings: Settings, city: City) -> EngineOptions:
    """How the feature engine is set for this city: zone, neighbour rule and calendar."""
    neighbours = NeighbourParams(k=settings.neighbour_k, radius_km=settings.neighbour_radius_km,
                                 scale_km=settings.neighbour_scale_km, rule=settings.neighbour_rule)  # fmt: skip
    return EngineOptions(timezone=settings.timezone, neighbours=neighbours, calendar=city.calendar)


def features_job(settings: Settings) -> JobResult:
    """Build the point-in-time feature tables of every entity kind from the warehouse."""
    started = time.perf_counter()
    city = city_of(settings)
    builds = build_and_write(settings.warehouse_dir, snapshot_every_days=settings.snapshot_every_days,
                             horizon_days=settings.horizon_days, catalogue=city.catalogue,
                             options=engine_options(settings, city))  # fmt: skip
    lines = [f"city configuration: {city.source}"]
    lines += [str(b.summary) for b in builds]
    lines += [f"written: {features_path(settings.warehouse_dir, b.entity)}" for b in builds if b.summary.built]
    return JobResult("features", time.perf_counter() - started, lines)
