"""How accurate is the oracle's Monte-Carlo estimate? Its paths against many more.

The oracle averages 1 − e^{−Σλ} over a few forward paths per snapshot (ADR 002). On the
default world (fixed seed) this script recomputes the oracle of evenly spread snapshots with
the world's own number of paths and with a reference number of paths from another stream,
and reports the differences for villages and projects: mean and 99th-percentile absolute
difference, the mean difference relative to the mean probability, and the correlation.
Writes experiments/results/oracle_accuracy.md and .json.

    python experiments/oracle_accuracy.py [--snapshots 12] [--reference-paths 480]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import numpy as np
from results_table import publish

from pipelines.simulate.config import SimulationConfig
from pipelines.simulate.history import run_history
from pipelines.simulate.mechanics import world_mechanics
from pipelines.simulate.oracle import oracle, project_rows


def compare(name: str, estimate: np.ndarray, reference: np.ndarray) -> dict:
    diff = np.abs(estimate - reference)
    return {"entity": name, "rows": int(estimate.size), "mean_p": round(float(reference.mean()), 5),
            "mean_abs_diff": round(float(diff.mean()), 5), "p99_abs_diff": round(float(np.quantile(diff, 0.99)), 5),
            "mean_abs_diff_over_mean_p": round(float(diff.mean() / reference.mean()), 4),
            "correlation": round(float(np.corrcoef(estimate, reference)[0, 1]), 5)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshots", type=int, default=12)
    parser.add_argument("--reference-paths", type=int, default=480)
    args = parser.parse_args()
    config = SimulationConfig()
    rng = np.random.default_rng(config.seed)
    mech = world_mechanics(rng, config)
    history_seed, oracle_seed = (int(s) for s in rng.integers(0, 2**31 - 1, size=2))
    history = run_history(history_seed, config, mech)
    chosen = np.linspace(0, len(mech.snapshot_days) - 1, args.snapshots).round().astype(np.int64)
    started = time.perf_counter()
    estimate = oracle(oracle_seed, config, mech, history.snap_states, chosen)
    paths_s = time.perf_counter() - started
    reference_config = replace(config, oracle_paths=args.reference_paths)
    started = time.perf_counter()
    reference = oracle(oracle_seed + 1, reference_config, mech, history.snap_states, chosen)
    reference_s = time.perf_counter() - started
    live = project_rows(mech.arrays.proj_days, mech.snapshot_days[chosen])
    rows = [compare("village", estimate[0].ravel(), reference[0].ravel()),
            compare("project", estimate[1][live], reference[1][live])]
    header = ["entity", "rows", "mean_p", "mean_abs_diff", "p99_abs_diff", "mean_abs_diff_over_mean_p", "correlation"]
    lines = [f"# oracle_accuracy — {time.strftime('%Y-%m-%d')}", "",
             f"Default world, {args.snapshots} snapshots evenly spread: the oracle's {config.oracle_paths} paths "
             f"({paths_s:.1f} s) against {args.reference_paths} paths from another stream ({reference_s:.1f} s).", ""]
    publish("oracle_accuracy", lines, header, rows,
            {"paths": config.oracle_paths, "reference_paths": args.reference_paths, "snapshots": chosen.tolist(),
             "rows": rows})


if __name__ == "__main__":
    main()
