"""Benchmark: wall time and peak memory of the whole `fengqiao demo` pipeline, before serving.

Targets (issue 11): the default world under 3 minutes after install; `--scale 10` under 20
minutes and under 12 GiB. The demo runs as an operator runs it — the CLI in a child process on
a fresh data root, Prefect's local API included — with numba's cache warmed first by a tiny
world (so that compilation, paid once per install, is not timed). Peak memory is the largest
resident set of the demo's process tree, sampled every 0.2 s. Prints a table and writes
experiments/results/bench_demo.md and .json.

The demo trains quickly by default (the main model's default parameters, 3 backtest folds);
``--trainings quick full`` also times ``--full-training`` (the search and 6 folds, as
``fengqiao train``), for comparison.

    python experiments/bench_demo.py [--scales 1 10] [--trainings quick full]
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from results_table import publish

TARGETS = {1.0: (180.0, None), 10.0: (1200.0, 12.0)}
STEP_LINE = re.compile(r"^== (\w+) \(([\d.]+) s")


def run_demo(scale: float, training: str, root: Path) -> dict:
    """Run `fengqiao demo --no-serve --scale S --{training}-training` on ``root``; wall seconds,
    peak GiB and each step's seconds."""
    env = {**os.environ, "FENGQIAO_DATA_ROOT": str(root / "var"), "PREFECT_HOME": str(root / "prefect")}
    argv = [sys.executable, "-m", "pipelines.cli", "demo", "--no-serve", "--scale", str(scale), f"--{training}-training"]
    started = time.perf_counter()
    proc = psutil.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    peak = 0
    output: list[str] = []
    while proc.poll() is None:
        try:
            tree = [proc, *proc.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.2)
    seconds = time.perf_counter() - started
    output = proc.stdout.read().splitlines()
    if proc.returncode != 0:
        raise SystemExit(f"demo --scale {scale} failed:\n" + "\n".join(output[-60:]))
    steps = {m.group(1): float(m.group(2)) for line in output if (m := STEP_LINE.match(line))}
    return {"scale": scale, "training": training, "seconds": seconds, "peak_gib": peak / 2**30, "steps": steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[1.0, 10.0])
    parser.add_argument("--trainings", nargs="+", choices=["quick", "full"], default=["quick"])
    args = parser.parse_args()
    warm = Path(tempfile.mkdtemp(prefix="fengqiao-bench-demo-warm-"))
    subprocess.run([sys.executable, "-m", "pipelines.cli", "simulate", "--scale", "0.02", "--years", "0.5",
                    "--out", str(warm / "raw")], check=True, capture_output=True)
    shutil.rmtree(warm, ignore_errors=True)
    rows, record = [], []
    for scale, training in [(s, t) for t in args.trainings for s in args.scales]:
        root = Path(tempfile.mkdtemp(prefix=f"fengqiao-bench-demo-{scale:g}-"))
        try:
            result = run_demo(scale, training, root)
        finally:
            shutil.rmtree(root, ignore_errors=True)
        record.append(result)
        limit_s, limit_gib = TARGETS.get(scale, (None, None)) if training == "quick" else (None, None)
        rows.append({"scale": f"{scale:g}", "training": training, "wall (s)": f"{result['seconds']:.0f}",
                     "target (s)": f"{limit_s:.0f}" if limit_s else "—",
                     "peak (GiB)": f"{result['peak_gib']:.1f}", "target (GiB)": f"{limit_gib:g}" if limit_gib else "—",
                     "steps (s)": ", ".join(f"{k} {v:.0f}" for k, v in result["steps"].items())})
    preamble = [f"# bench_demo — {time.strftime('%Y-%m-%d')}", "",
                f"`fengqiao demo --no-serve` on a fresh data root, numba cache warm; {os.cpu_count()} cores, "
                f"{psutil.virtual_memory().total / 2**30:.0f} GiB, {platform.python_version()}. Peak: the demo's "
                f"process tree (Prefect's local server included), sampled every 0.2 s.", ""]
    publish("bench_demo", preamble, ["scale", "training", "wall (s)", "target (s)", "peak (GiB)", "target (GiB)", "steps (s)"],
            rows, record)


if __name__ == "__main__":
    main()
