"""Benchmark: time and peak memory of simulate and ingest, default world and --scale 10.

Targets (issue 2): default world simulate + ingest under 60 s; --scale 10 under 10 minutes and
under 8 GiB peak, on 2 cores. Each stage runs in its own process (the CLI, as an operator
would run it) so that its peak resident memory is its own. Fixed seed; prints a table and
writes experiments/results/bench_simulate.md and .json.

    python experiments/bench_simulate.py [--scales 1 10] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results_table import publish

SEED = 20261128
TARGETS = {1.0: (60.0, None), 10.0: (600.0, 8.0)}


def run_stage(argv: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (GiB) of one CLI run in a child process."""
    code = (
        "import resource, sys; from pipelines.cli import app\n"
        "try:\n    app(sys.argv[1:], standalone_mode=False)\n"
        "finally:\n"
        "    print('PEAK_KIB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)\n"
    )
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *argv], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    peak_kib = max(int(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("PEAK_KIB"))
    return seconds, peak_kib / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 10.0])
    parser.add_argument("--keep", action="store_true", help="keep the generated data folders")
    args = parser.parse_args()
    rows = []
    for scale in args.scales:
        root = Path(tempfile.mkdtemp(prefix=f"fengqiao-bench-{scale:g}-"))
        env = {**os.environ, "FENGQIAO_DATA_ROOT": str(root / "var")}
        raw = root / "var" / "raw"
        # numba compiles on the first call in a fresh cache; warm it so we time the work.
        run_stage(["simulate", "--scale", "0.02", "--years", "0.5", "--out", str(root / "warm")], env)
        sim_s, sim_gib = run_stage(["simulate", "--seed", str(SEED), "--scale", str(scale), "--out", str(raw)], env)
        ing_s, ing_gib = run_stage(["ingest", str(raw), "--create-key"], env)
        world = json.loads((raw / "world.json").read_text())
        events = int(world["rates"]["events_total"])
        time_target, mem_target = TARGETS.get(scale, (None, None))
        rows.append({
            "scale": scale, "villages": int(world["rates"]["villages"]), "events": events,
            "simulate_s": round(sim_s, 1), "ingest_s": round(ing_s, 1), "total_s": round(sim_s + ing_s, 1),
            "simulate_peak_gib": round(sim_gib, 2), "ingest_peak_gib": round(ing_gib, 2),
            "target_s": time_target, "target_gib": mem_target,
            "meets_target": (time_target is None or sim_s + ing_s < time_target)
            and (mem_target is None or max(sim_gib, ing_gib) < mem_target),
        })
        print(rows[-1], flush=True)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    header = ["scale", "villages", "events", "simulate_s", "ingest_s", "total_s", "simulate_peak_gib",
              "ingest_peak_gib", "target_s", "target_gib", "meets_target"]
    lines = [f"# bench_simulate — {time.strftime('%Y-%m-%d')} on {os.cpu_count()} cores, "
             f"Python {platform.python_version()}", ""]
    publish("bench_simulate", lines, header, rows, rows)


if __name__ == "__main__":
    main()
