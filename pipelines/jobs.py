"""The operator's jobs — simulate, ingest, build features — each a plain function over
Settings, so that the CLI (and later the Prefect flows) only wire them together."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pandas as pd

from features.city import City, load_city
from features.engine import EngineOptions, NeighbourParams, build_and_write, features_path
from features.engine.partition import Mapper
from features.ingest import run_ingest
from features.truth import ORACLE_FILES, check_horizon, stored_oracle_horizon
from fengqiao.errors import ConfigurationError
from fengqiao.interventions import load_catalogue, read_plan
from fengqiao.progress import Progress, quiet
from fengqiao.settings import Settings
from pipelines.result import JobResult
from pipelines.simulate.config import SimulationConfig
from pipelines.simulate.evaluate import Evaluation, evaluate_plan, load_world
from pipelines.simulate.export import WORLD_FILE, rates_table, write_export
from pipelines.simulate.world import simulate_world

log = logging.getLogger(__name__)


def simulate_job(config: SimulationConfig, out_dir: Path, dirty: bool = False, dirty_rate: float = 0.01,
                 progress: Progress | None = None) -> JobResult:
    """Simulate a world and write it as a platform export to ``out_dir``; ``progress`` hears
    of each step (see ``fengqiao.progress.Progress``)."""
    started = time.perf_counter()
    report = progress or quiet
    world = simulate_world(config, progress=report)
    report("export", 0, 0)
    written = write_export(world, out_dir, dirty=dirty, dirty_rate=dirty_rate)
    lines = [f"export written to {out_dir} ({len(written)} files{', with injected bad data' if dirty else ''})"]
    lines += [f"  {name:<10} {len(frame):>12,} rows" for name, frame in world.tables.items()]
    lines += ["realised rates:", rates_table(world.rates)]
    return JobResult("simulate", time.perf_counter() - started, lines)


def evaluate_plan_job(settings: Settings, plan_path: Path, world_dir: Path, replications: int, seed: int,
                      progress: Progress = quiet) -> tuple[JobResult, Evaluation]:
    """The incidents ``plan_path`` averts in the simulated world ``world_dir`` (its truth
    re-simulated), with a 95% interval, in total and per county."""
    started = time.perf_counter()
    plan = read_plan(plan_path)
    catalogue = load_catalogue(settings.interventions_config)
    world = load_world(world_dir, progress)
    progress("evaluate", 0, 0)
    result = evaluate_plan(world, plan, catalogue, replications=replications, seed=seed)
    lines = [
        (f"plan {plan_path}: {len(plan.actions)} actions from {result.snapshot:%Y-%m-%d} over "
         f"{result.horizon_days} days, {result.replications} paired replications (seed {seed})"),
        f"expected incidents without the plan {result.expected_without:,.2f}, with it {result.expected_with:,.2f}",
        f"incidents averted: {result.averted:,.3f} (95% interval {result.low:,.3f} to {result.high:,.3f})",
        "per county:",
        result.by_county.to_string(index=False, float_format=lambda x: f"{x:,.3f}"),
    ]
    return JobResult("evaluate-plan", time.perf_counter() - started, lines), result


def ingest_job(settings: Settings, source: str, mapping: Path | None = None, create_key: bool = False,
               as_of: pd.Timestamp | None = None, allow_shrink: bool = False, progress: Progress = quiet) -> JobResult:
    """Validate and pseudonymise ``source`` into the warehouse, with a simulated world's
    oracle published in the same set (and an older oracle removed when the source has none).

    Timestamps after ``as_of`` are rejected as future dates; its default is the end of a
    simulated world (``world.json`` in the source folder), else now. The key is read (or,
    with ``create_key``, created) only if a table holds personal identifiers. ``progress``
    hears of each batch of each table (``features.ingest.run_ingest``).
    """
    started = time.perf_counter()
    as_of = as_of if as_of is not None else simulated_export_end(source)
    city = city_of(settings)
    folder = Path(source) if Path(source).is_dir() else None
    oracles = {name: folder / name if folder and (folder / name).is_file() else None for name in ORACLE_FILES.values()}
    report = run_ingest(source, settings.warehouse_dir, lambda: settings.hmac_key(create=create_key),
                        mapping=mapping, as_of=as_of, timezone=settings.timezone, allow_shrink=allow_shrink,
                        max_shrink_share=settings.max_shrink_share,
                        max_column_reject_share=settings.max_column_reject_share,
                        min_rows_for_share=settings.min_rows_for_reject_share,
                        max_distance_km=settings.max_assign_distance_km, companions=oracles,
                        contracts=city.contracts, batch_rows=settings.ingest_batch_rows, progress=progress)
    lines = [report.summary()]
    copied = [name for name, path in oracles.items() if path is not None]
    if copied:
        lines.append("oracle (synthetic truth) published with the tables: " + ", ".join(copied))
    return JobResult("ingest", time.perf_counter() - started, lines)


def simulated_export_end(source: str) -> pd.Timestamp | None:
    """The moment a simulated export was made (``end`` in its ``world.json``), or None for a
    real export and for a world recorded before the simulator wrote its end."""
    record = Path(source) / WORLD_FILE
    if not record.is_file():
        return None
    try:
        end = json.loads(record.read_text(encoding="utf-8")).get("end")
    except (OSError, ValueError, AttributeError) as err:
        raise ConfigurationError(f"{record} is not a world record the simulator wrote; remove it or pass --as-of") from err
    return None if end is None else pd.Timestamp(end)


def city_of(settings: Settings) -> City:
    """The city's tables, sources, entity kinds and calendar: the defaults and its configuration file."""
    return load_city(settings.city_config, settings.windows_days, settings.decay_days)


def engine_options(settings: Settings, city: City) -> EngineOptions:
    """How the feature engine is set for this city: zone, neighbour rule and calendar."""
    neighbours = NeighbourParams(k=settings.neighbour_k, radius_km=settings.neighbour_radius_km,
                                 scale_km=settings.neighbour_scale_km, rule=settings.neighbour_rule)  # fmt: skip
    return EngineOptions(timezone=settings.timezone, neighbours=neighbours, calendar=city.calendar)


def features_job(settings: Settings, mapper: Mapper | None = None, as_of: pd.Timestamp | None = None) -> JobResult:
    """Build the point-in-time feature tables of every entity kind from the warehouse (with a
    cluster's ``mapper``, places by county on the cluster), up to ``as_of`` (default: the
    latest event recorded; an export made on a Monday at midnight has its last snapshot on
    that Monday only when ``as_of`` says so).

    A simulated world's oracle in the warehouse must share the labels' horizon: a mismatch
    stops the job before anything is written.
    """
    started = time.perf_counter()
    oracle_days = stored_oracle_horizon(settings.warehouse_dir)
    if oracle_days is not None:
        check_horizon(oracle_days, settings.horizon_days, str(settings.warehouse_dir / ORACLE_FILES["village"]))
    city = city_of(settings)
    builds = build_and_write(settings.warehouse_dir, snapshot_every_days=settings.snapshot_every_days,
                             horizon_days=settings.horizon_days, catalogue=city.catalogue,
                             as_of=as_of, options=engine_options(settings, city), mapper=mapper)  # fmt: skip
    lines = [f"city configuration: {city.source}"] + (["built by county on the Dask cluster"] if mapper else [])
    lines += [str(b.summary) for b in builds]
    lines += [f"written: {features_path(settings.warehouse_dir, b.entity)}" for b in builds if b.summary.built]
    return JobResult("features", time.perf_counter() - started, lines)
