"""Benchmark: time and peak memory of `fengqiao ingest`, the default world and --scale 10,
clean and with 25% of one table's rows bad.

Targets (issue 7): a scale-10 source with 25% of one table's rows bad is ingested, or refused,
in under 2 minutes and 4 GiB. Each ingest runs the CLI in a child process, as an operator
would; its peak resident memory (the process and its children) is sampled with psutil every
50 ms. Fixed seed; prints a table and writes experiments/results/bench_ingest.md and .json.

The scale-10 export takes about 6 minutes (quiet machine) and 5.2 GiB to simulate, so it is made once and kept:

    python experiments/bench_ingest.py [--export-dir var/bench/scale10] [--default-dir var/bench/default]
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

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
from results_table import publish

from pipelines.simulate.csv_text import frame_as_text

SEED = 20261128
BAD_SHARE = 0.25
BAD_TABLE = "patrols"
"""The largest table: the worst case for rejects."""
BAD_CELLS = (("patrolled_at", "31/02/2024"), ("escalated", "perhaps"), ("village_id", "999999999999"))
"""Three defects, each given to a third of the bad rows: bad_date, bad_value, unknown_village."""
TARGET_S, TARGET_GIB = 120.0, 4.0


def fengqiao(argv: list[str], env: dict[str, str]) -> tuple[int, float, float, str]:
    """Run the CLI in a child process: exit code, wall seconds, peak RSS in GiB, last output."""
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "pipelines.cli", *argv], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    watched = psutil.Process(proc.pid)
    peak = 0
    while proc.poll() is None:
        try:
            rss = watched.memory_info().rss + sum(c.memory_info().rss for c in watched.children(recursive=True))
        except psutil.Error:
            rss = 0
        peak = max(peak, rss)
        time.sleep(0.05)
    output = proc.stdout.read()
    return proc.returncode, time.perf_counter() - started, peak / 2**30, output


def damaged_source(export: Path, out: Path, rng: np.random.Generator) -> int:
    """``export`` with ``BAD_SHARE`` of ``BAD_TABLE``'s rows damaged (as a CSV text dump); the
    other tables are linked as they are. Returns the number of damaged rows."""
    out.mkdir(parents=True, exist_ok=True)
    for path in export.glob("*.parquet"):
        if path.stem != BAD_TABLE:
            (out / path.name).symlink_to(path.resolve())
    table = frame_as_text(pq.read_table(export / f"{BAD_TABLE}.parquet").to_pandas())
    n = table.num_rows
    bad = rng.random(n) < BAD_SHARE
    kind = rng.integers(0, len(BAD_CELLS), n)
    for k, (column, value) in enumerate(BAD_CELLS):
        mask = pa.array(bad & (kind == k))
        index = table.schema.get_field_index(column)
        table = table.set_column(index, column, pc.if_else(mask, pa.scalar(value), table.column(column)))
    pa_csv.write_csv(table, str(out / f"{BAD_TABLE}.csv"), pa_csv.WriteOptions(quoting_style="needed"))
    return int(bad.sum())


def ensure_export(folder: Path, scale: float, env: dict[str, str]) -> None:
    """Simulate the export once (kept between runs of this script)."""
    if (folder / "world.json").exists():
        return
    code, seconds, gib, output = fengqiao(["simulate", "--seed", str(SEED), "--scale", str(scale),
                                           "--out", str(folder)], env)
    if code:
        raise SystemExit(f"simulate failed:\n{output[-3000:]}")
    print(f"simulated scale {scale:g} in {seconds:.0f} s, {gib:.1f} GiB", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--export-dir", type=Path, default=Path("var/bench/scale10"))
    parser.add_argument("--default-dir", type=Path, default=Path("var/bench/default"))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="fengqiao-bench-ingest-"))
    env = {**os.environ, "FENGQIAO_DATA_ROOT": str(work / "var"), "FENGQIAO_PSEUDONYM_KEY": "bench-key"}
    ensure_export(args.default_dir, 1.0, env)
    ensure_export(args.export_dir, 10.0, env)
    bad_rows = damaged_source(args.export_dir, work / "bad", np.random.default_rng(SEED))
    cases = [
        ("default world", args.default_dir, {}),
        ("scale 10", args.export_dir, {}),
        (f"scale 10, {BAD_SHARE:.0%} of {BAD_TABLE} bad", work / "bad", {}),
        (f"scale 10, {BAD_SHARE:.0%} of {BAD_TABLE} bad, max column share 5%", work / "bad",
         {"FENGQIAO_MAX_COLUMN_REJECT_SHARE": "0.05"}),
    ]
    rows = []
    for name, source, extra in cases:
        shutil.rmtree(work / "var", ignore_errors=True)
        code, seconds, gib, output = fengqiao(["ingest", str(source), "--allow-shrink"], {**env, **extra})
        report = work / "var" / "warehouse" / "ingest_report.json"
        tables = json.loads(report.read_text())["tables"] if code == 0 else {}
        rows.append({
            "case": name,
            "outcome": "ingested" if code == 0 else "refused" if code == 2 else f"failed ({code})",
            "rows_read": sum(t["read"] for t in tables.values()),
            "rejected": sum(t["rejected"] for t in tables.values()),
            "seconds": round(seconds, 1),
            "peak_gib": round(gib, 2),
            "meets_target": seconds < TARGET_S and gib < TARGET_GIB if name.startswith("scale 10,") else None,
            "load_average": round(os.getloadavg()[0], 1),
        })
        if code not in (0, 2):
            print(output[-3000:], file=sys.stderr)
        elif code == 2:
            rows[-1]["message"] = next((line for line in output.splitlines() if line.startswith("error:")), "")
        print(rows[-1], flush=True)
    shutil.rmtree(work, ignore_errors=True)
    header = ["case", "outcome", "rows_read", "rejected", "seconds", "peak_gib", "meets_target", "load_average"]
    lines = [f"# bench_ingest — {time.strftime('%Y-%m-%d')} on {os.cpu_count()} cores, "
             f"Python {platform.python_version()}", "",
             f"Target: a scale-10 source with {BAD_SHARE:.0%} of one table's rows bad ({bad_rows:,} {BAD_TABLE} rows "
             f"here) ingested or refused in under {TARGET_S:.0f} s and {TARGET_GIB:g} GiB. `load_average`: the "
             f"machine's one-minute load when the case ended (above the core count, other jobs shared the machine "
             f"and the seconds are inflated).", ""]
    publish("bench_ingest", lines, header, rows, rows)


if __name__ == "__main__":
    main()
