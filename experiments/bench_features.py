"""Benchmark: the numba feature engine against a polars peer, checked against the pandas reference.

Same inputs, same outputs checked, one run, fixed seeds. Three measurements:

1. the headline: the window-count and decayed-intensity families, engine vs a polars
   implementation of the same features (a peer: a fast columnar engine doing the same work)
   — target ≥ 20×, outputs equal;
2. the whole feature table (every family, every row): engine vs the pandas reference of the
   tests (``tests/feature_reference.py``). The reference computes each feature alone by its
   definition — a correctness reference, not a peer — so its ratio only says the check ran;
3. the whole build from the warehouse on disk to ``features_<entity>.parquet`` in a fresh
   process: wall time and peak RSS — target at ``--scale 10 --years 4`` (≥10M events, ~20k
   villages, 3 years of weekly snapshots after the first year's warm-up): < 5 min, < 8 GiB.

The world is made by ``fengqiao simulate`` and ``fengqiao ingest``, each in its own process.
Results go to ``experiments/results/bench_features*.md`` and ``.json``.

    python experiments/bench_features.py                                   # default world (~25 min: the reference)
    python experiments/bench_features.py --scale 10 --years 4 --skip-reference
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

from features.contracts import TIMEZONE
from features.engine import EngineOptions, build_features, default_catalogue, plan_features, read_feature_inputs
from features.engine.engine import EngineState, event_time_range
from features.engine.families import DecayedIntensities, WindowCounts
from features.engine.timeline import snapshot_times

REFERENCE = Path(__file__).parents[1] / "tests" / "feature_reference.py"

RESULTS = Path(__file__).parent / "results"


# --- the world --------------------------------------------------------------------------


def load_world(scale: float, seed: int | None, years: float, workdir: Path) -> str:
    """``fengqiao simulate`` then ``fengqiao ingest`` into ``workdir/var``, each in its own process.

    Ingest runs ``--as-of`` far ahead so that a history simulated past today's date (``--years 4``
    from the default start) is not rejected as future-dated.
    """
    env = {**os.environ, "FENGQIAO_DATA_ROOT": str(workdir / "var"), "FENGQIAO_PSEUDONYM_KEY": "bench-features"}
    raw = str(workdir / "raw")
    simulate = ["simulate", "--scale", f"{scale:g}", "--years", f"{years:g}", "--out", raw]
    if seed is not None:
        simulate += ["--seed", str(seed)]
    for argv in (simulate, ["ingest", raw, "--as-of", "2100-01-01"]):
        proc = subprocess.run([sys.executable, "-c", "from pipelines.cli import app; app()", *argv], env=env,
                              capture_output=True, text=True)  # fmt: skip
        if proc.returncode != 0:
            raise RuntimeError(f"fengqiao {' '.join(argv)} failed:\n{proc.stderr[-4000:]}")
    seed_text = "the simulator's default seed" if seed is None else f"seed {seed}"
    return f"`fengqiao simulate --scale {scale:g} --years {years:g}` → `fengqiao ingest` ({seed_text})"


def count_events(tables: dict[str, pd.DataFrame]) -> int:
    return sum(len(tables[n]) for n in ("disputes", "petitions", "patrols", "incidents") if n in tables)


# --- the polars peer: window counts and decayed intensities ------------------------------


def _polars_condition(cond) -> pl.Expr:
    col = pl.col(cond.column)
    ops = {
        "in": lambda: col.is_in(list(cond.value)),
        "not_in": lambda: ~col.is_in(list(cond.value)),
        "==": lambda: col == cond.value,
        "!=": lambda: col != cond.value,
        ">=": lambda: col >= cond.value,
        ">": lambda: col > cond.value,
        "<=": lambda: col <= cond.value,
        "<": lambda: col < cond.value,
        "is_null": lambda: col.is_null(),
        "not_null": lambda: col.is_not_null(),
        "contains": lambda: col.str.split("|").list.contains(cond.value),
    }
    return ops[cond.op]().fill_null(False)


def polars_window_and_decay(tables: dict, plan, entity_ids: np.ndarray, snapshots: np.ndarray) -> dict[str, np.ndarray]:
    """The plan's window-count and decayed-intensity features, computed with polars.

    Counts: the engine's own algorithm in polars — each event adds its weight from the first
    snapshot after it to the first snapshot after it + w (snapshots are evenly spaced), summed
    per (entity, code, snapshot) and cumulated over the snapshot grid. (A ``join_asof`` on
    cumulative counts at t and t - w took as long.) Decays: a cumulative sum of
    exp((time - t0) / tau) read at each snapshot by ``join_asof`` (backward, exact matches
    excluded: time < t), times exp(-(t - t0) / tau). Ties follow docs/decisions/001.
    """
    entities = pl.DataFrame({"entity": entity_ids, "e": np.arange(len(entity_ids), dtype=np.int64)})
    n_snap = len(snapshots)
    grid_snaps = pl.DataFrame({"s": snapshots, "si": np.arange(n_snap, dtype=np.int64)})
    out: dict[str, np.ndarray] = {}
    t0 = None
    for family in plan.families:
        source, counter = family.source, family.counter
        days = family.windows if isinstance(family, WindowCounts) else family.taus_days
        needed = sorted({source.entity, source.time} | counter.columns())
        ev = (
            tables[source.table]
            .select(needed)
            .with_columns(entity=pl.col(source.entity), t=pl.col(source.time).dt.epoch("s"))
            .filter(pl.col("t").is_not_null())
            .join(entities, on="entity", how="inner")
        )
        if counter.where is not None:
            ev = ev.filter(_polars_condition(counter.where))
        codes = pl.DataFrame({"code_name": [c.code for c in counter.codes] or [""],
                              "code": np.arange(counter.n_codes, dtype=np.int64)})  # fmt: skip
        if counter.by_list:
            ev = (
                ev.with_row_index("row")
                .with_columns(code_name=pl.col(counter.by).str.split("|"))
                .explode("code_name")
                .unique(["row", "code_name"])
                .join(codes, on="code_name", how="inner")
            )
        elif counter.by is not None:
            ev = ev.join(codes, left_on=counter.by, right_on="code_name", how="inner")
        else:
            ev = ev.with_columns(code=pl.lit(0, dtype=pl.Int64))
        weight = pl.col(counter.weight).cast(pl.Float64).fill_null(0.0) if counter.weight else pl.lit(1.0)
        ev = ev.select("e", "code", "t", w=weight)
        if t0 is None:
            t0 = int(snapshots[0]) - 3 * 365 * 86_400
        grid = entities.select("e").join(codes.select("code"), how="cross").join(grid_snaps, how="cross").sort("s")
        values = np.zeros((len(days) * counter.n_codes, len(entity_ids) * n_snap))
        keys = ["e", "code"]
        asof = dict(by=keys, strategy="backward", allow_exact_matches=False, check_sortedness=False)
        if isinstance(family, WindowCounts):
            # Each event adds w from the first snapshot after it to the first one after it + days
            # (snapshots are evenly spaced, so both are arithmetic); a cumulative sum over the
            # snapshot grid of each (entity, code) gives the count.
            s0, step = int(snapshots[0]), int(snapshots[1] - snapshots[0]) if n_snap > 1 else 1

            def first_after(expr: pl.Expr) -> pl.Expr:
                return pl.when(expr < s0).then(0).otherwise((expr - s0) // step + 1).clip(0, n_snap)

            dense = grid.sort(["e", "code", "si"])
            for k, window in enumerate(days):
                steps = pl.concat([
                    ev.select("e", "code", si=first_after(pl.col("t")), v=pl.col("w")),
                    ev.select("e", "code", si=first_after(pl.col("t") + window * 86_400), v=-pl.col("w")),
                ]).filter(pl.col("si") < n_snap).group_by(["e", "code", "si"]).agg(pl.col("v").sum())  # fmt: skip
                counts = dense.join(steps, on=["e", "code", "si"], how="left", maintain_order="left").with_columns(
                    v=pl.col("v").fill_null(0).cum_sum().over(["e", "code"])
                )
                _scatter(values, counts, k, counter.n_codes, n_snap)
        else:
            for k, tau_days in enumerate(days):
                tau = tau_days * 86_400.0
                right = (
                    ev.sort(keys + ["t"])
                    .with_columns(cum=(pl.col("w") * ((pl.col("t") - t0) / tau).exp()).cum_sum().over(keys))
                    .sort(["t", "cum"])
                    .select(keys + ["t", "cum"])
                )
                joined = grid.join_asof(right, left_on="s", right_on="t", **asof)
                frame = joined.with_columns(v=pl.col("cum").fill_null(0) * (-(pl.col("s") - t0) / tau).exp())
                _scatter(values, frame, k, counter.n_codes, n_snap)
        for j, feature in enumerate(family.features):
            out[feature.spec.name] = values[j]
    return out


def _scatter(values: np.ndarray, frame, k: int, n_codes: int, n_snap: int) -> None:
    e, code, si, v = (frame[c].to_numpy() for c in ("e", "code", "si", "v"))
    values[k * n_codes + code, e * n_snap + si] = v


# --- measuring ----------------------------------------------------------------------------


def _timed(fn, repeat: int = 1):
    """(result of the last call, best wall time in seconds)."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return result, best


def _max_difference(engine: pd.DataFrame, other: pd.DataFrame) -> tuple[bool, float, list[str]]:
    """Whether two feature tables agree (counts exactly, reals to float32 precision)."""
    if list(engine.columns) != list(other.columns) or len(engine) != len(other):
        return False, float("inf"), ["columns or rows differ"]
    worst, bad = 0.0, []
    for name in engine.columns[2:-1]:
        a = engine[name].to_numpy(np.float64)
        b = other[name].to_numpy(np.float64).astype(np.float32).astype(np.float64)
        both = ~(np.isnan(a) & np.isnan(b))
        diff = np.abs(a[both] - b[both]) if both.any() else np.zeros(1)
        worst = max(worst, float(np.nanmax(diff)) if len(diff) else 0.0)
        if not np.allclose(a, b, rtol=2e-6, atol=1e-5, equal_nan=True):
            bad.append(name)
    same_labels = engine["label"].astype(float).equals(other["label"].astype(float))
    if not same_labels:
        bad.append("label")
    return not bad, worst, bad


def _reference_module():
    """The tests' pandas reference, loaded from its file (it is a test helper, not a package)."""
    spec = importlib.util.spec_from_file_location("feature_reference", REFERENCE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def compare_reference(tables: dict[str, pd.DataFrame]) -> list[dict]:
    """The whole feature table, engine vs the pandas reference of the tests, per entity type."""
    reference_features = _reference_module().reference_features

    rows = []
    for entity in ("village", "project"):
        build, engine_s = _timed(lambda: build_features(tables, entity), repeat=3)
        print(f"  reference, {entity}s: engine {engine_s:.2f} s; running the pandas reference …", flush=True)
        reference, reference_s = _timed(lambda: reference_features(tables, entity))
        same, worst, bad = _max_difference(build.frame, reference)
        rows.append(dict(comparison=f"whole table, {entity}s", engine_s=engine_s, peer="pandas reference",
                         peer_s=reference_s, speedup=reference_s / engine_s, target=None, outputs_equal=same,
                         max_abs_difference=worst, differing=bad[:5], rows=len(build.frame),
                         features=build.summary.features))  # fmt: skip
    return rows


def compare_polars(tables: dict[str, pd.DataFrame]) -> dict:
    """Window counts and decayed intensities of the village plan: engine vs polars, same inputs."""
    catalogue = default_catalogue()
    kind = catalogue.entity("village")
    plan = plan_features(kind, {n: set(f.columns) for n, f in tables.items()}, catalogue.sources_of(kind))
    plan = dataclasses.replace(plan, families=tuple(f for f in plan.families
                                                    if type(f) in (WindowCounts, DecayedIntensities)))  # fmt: skip
    entities = pd.Index(np.sort(tables["regions"]["village_id"].to_numpy()), dtype="str")
    first, last = event_time_range(tables, plan.sources, TIMEZONE)
    snapshots = snapshot_times(first, last, 7, TIMEZONE)

    def engine() -> np.ndarray:
        return EngineState(tables, plan, entities, snapshots, EngineOptions()).run()

    polars_tables = {name: pl.from_pandas(frame) for name, frame in tables.items() if name != "regions"}
    engine()  # compiled kernels loaded
    values, engine_s = _timed(engine, repeat=3)
    peer, peer_s = _timed(lambda: polars_window_and_decay(polars_tables, plan, entities.to_numpy(), snapshots),
                          repeat=3)  # fmt: skip
    bad = [name for i, name in enumerate(plan.names)
           if not np.allclose(values[i], peer[name].astype(np.float32), rtol=1e-5, atol=1e-5)]  # fmt: skip
    worst = max(float(np.max(np.abs(values[i] - peer[n].astype(np.float32)))) for i, n in enumerate(plan.names))
    return dict(comparison="window counts + decayed intensities, villages", engine_s=engine_s, peer="polars",
                peer_s=peer_s, speedup=peer_s / engine_s, target=20.0, outputs_equal=not bad,
                max_abs_difference=worst, differing=bad[:5], rows=len(entities) * len(snapshots),
                features=len(plan.names))  # fmt: skip


_CHILD = """
import json, resource, sys, time
started = time.perf_counter()
from features.engine import build_and_write
imported = time.perf_counter()
builds = build_and_write(sys.argv[1])
done = time.perf_counter()
try:  # the high-water mark of this program's memory; ru_maxrss would include the parent's at fork
    with open("/proc/self/status") as status:
        peak_kib = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
except OSError:
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps(dict(
    build_s=done - imported, total_s=done - started, peak_rss_gib=peak_kib / 2**20,
    summaries=[str(b.summary) for b in builds],
    rows={b.entity: b.summary.rows for b in builds}, features={b.entity: b.summary.features for b in builds},
    snapshots=builds[0].summary.snapshots,
)))
"""


def whole_build(warehouse: Path, threads: int) -> dict:
    """``build_and_write`` from the warehouse on disk, in a fresh process: wall time and peak RSS."""
    env = {**os.environ, "NUMBA_NUM_THREADS": str(threads)}
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", _CHILD, str(warehouse)], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"the feature build failed:\n{proc.stderr[-4000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_wall_s"] = wall
    return result


# --- the report ---------------------------------------------------------------------------


def _markdown(report: dict) -> str:
    lines = [
        f"# Feature engine benchmark (scale {report['scale']})",
        "",
        f"World: {report['world']} — {report['villages']:,} villages, {report['projects']:,} projects, "
        f"{report['events']:,} events. Machine: {report['machine']}. Command: `{report['command']}`.",
        "",
    ]
    if report["comparisons"]:
        lines += [
            "| comparison | engine s | peer | peer s | speed-up | target | outputs equal |",
            "| --- | ---: | --- | ---: | ---: | ---: | --- |",
        ]
        for c in report["comparisons"]:
            lines.append(
                f"| {c['comparison']} ({c['rows']:,} rows × {c['features']} features) | {c['engine_s']:.2f} | "
                f"{c['peer']} | {c['peer_s']:.2f} | {c['speedup']:.0f}× | "
                f"{'≥' + format(c['target'], '.0f') + '×' if c['target'] else 'correctness check'} | "
                f"{'yes' if c['outputs_equal'] else 'NO: ' + ', '.join(c['differing'])} |"
            )
        lines.append("")
    b = report.get("whole_build")
    if b:
        lines += [
            "Whole build, warehouse parquet → `features_village.parquet` + `features_project.parquet` "
            "(+ `features_catalogue.json`), "
            f"fresh process, {report['threads']} numba threads:",
            "",
            "| rows (village / project) | features | snapshots | build s | process s | peak RSS GiB | targets |",
            "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
            f"| {b['rows']['village']:,} / {b['rows'].get('project', 0):,} | {b['features']['village']} / "
            f"{b['features'].get('project', 0)} | {b['snapshots']} | {b['build_s']:.1f} | {b['process_wall_s']:.1f} | "
            f"{b['peak_rss_gib']:.2f} | < 300 s, < 8 GiB |",
            "",
            "```",
            *b["summaries"],
            "```",
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="world scale (1: ~2,000 villages, ~1M events)")
    parser.add_argument("--seed", type=int, default=None, help="world seed (default: the simulator's)")
    parser.add_argument("--years", type=float, default=3.0, help="years of history (4 gives 3 years of snapshots)")
    parser.add_argument("--threads", type=int, default=2, help="numba threads for the whole build")
    parser.add_argument("--skip-reference", action="store_true", help="skip the (slow) pandas reference")
    parser.add_argument("--skip-peer", action="store_true", help="skip the polars peer")
    parser.add_argument("--skip-build", action="store_true", help="skip the whole build in a fresh process")
    parser.add_argument("--workdir", type=Path, help="keep the world here, and reuse it if it is already there")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="fengqiao-bench-") as tmp:
        workdir = args.workdir or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        warehouse = workdir / "var" / "warehouse"
        world_file = workdir / "world.txt"
        if world_file.exists():
            world = world_file.read_text()
        else:
            print(f"building the world (scale {args.scale:g}, {args.years:g} years) …", flush=True)
            world = load_world(args.scale, args.seed, args.years, workdir)
            world_file.write_text(world)
        tables = read_feature_inputs(warehouse, default_catalogue())
        report = dict(
            scale=args.scale, years=args.years, world=world, threads=args.threads,
            villages=len(tables["regions"]), projects=len(tables.get("projects", [])), events=count_events(tables),
            machine=f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}",
            command="python experiments/bench_features.py " + " ".join(argv if argv is not None else sys.argv[1:]),
            comparisons=[],
        )  # fmt: skip
        if not args.skip_peer:
            print("polars peer …", flush=True)
            report["comparisons"].append(compare_polars(tables))
        if not args.skip_reference:
            report["comparisons"] += compare_reference(tables)
        del tables
        if not args.skip_build:
            print("whole build in a fresh process …", flush=True)
            report["whole_build"] = whole_build(warehouse, args.threads)
    text = _markdown(report)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = "bench_features" if args.scale == 1 else f"bench_features_scale{args.scale:g}"
    if args.years != 3:
        stem += f"_{args.years:g}y"
    (RESULTS / f"{stem}.md").write_text(text)
    (RESULTS / f"{stem}.json").write_text(json.dumps(report, indent=2, default=str))
    return report


if __name__ == "__main__":
    main()
