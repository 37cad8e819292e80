"""Benchmark: the bundle's numba scorer against LightGBM's own predict and pred_contrib.

One run, fixed seed, same model, same thread count on both sides (1, then 2): a LightGBM
model of 300 trees (31 leaves) trained here on synthetic data with 100 features (NaNs, zeros,
coarse grids), exported to a bundle and loaded (numba compiled, or loaded from its cache,
before any timing). Measured:

1. single-row raw score, a different row in each call (median and p99 of the per-call time)
   — target: bundle ≤ 0.1× LightGBM;
2. batch raw scores of 100k rows (throughput) — target ≥ 2× LightGBM;
3. batch TreeSHAP contributions (time per row) — target ≥ 2× faster than ``pred_contrib``;
4. a single-row explanation (``explain_rows``: contributions, groups, top reasons, texts),
   a different row in each call — target median < 1 ms.

Outputs are checked equal (raw ≤ 1e-9, contributions ≤ 1e-9) in the same run. Results go to
``experiments/results/bench_scorer.md`` and ``.json``.

    python experiments/bench_scorer.py            # ~5 min on a quiet 2-core machine
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import lightgbm as lgb
import numba
import numpy as np
from results_table import publish

from models.bundle import ScoringBundle, explain_rows, load_bundle
from models.bundle.export import BundleFacts, export_booster

SEED = 7


def synthetic_data(rows: int, features: int, seed: int = SEED) -> tuple[np.ndarray, np.ndarray]:
    """Counts, rates and flags with NaNs and zeros; the label depends on a dozen of them."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(rows, features))
    X[:, ::4] = rng.poisson(1.5, size=(rows, len(range(0, features, 4))))
    X[:, 1::7] = np.round(X[:, 1::7], 1)
    X[rng.random((rows, features)) < 0.05] = np.nan
    z = np.nan_to_num(X[:, :12])
    signal = z[:, 0] + 0.5 * z[:, 1] ** 2 - z[:, 2] * z[:, 3] + np.sin(3 * z[:, 5]) + 0.3 * z[:, 8:12].sum(axis=1)
    y = (signal + rng.normal(size=rows) > 1.5).astype(int)
    return X, y


def per_call(fn, rows: np.ndarray) -> np.ndarray:
    """Seconds of each call ``fn(row)``, a different row each time."""
    out = np.empty(len(rows))
    for i in range(len(rows)):
        started = time.perf_counter()
        fn(rows[i:i + 1])
        out[i] = time.perf_counter() - started
    return out


def best_of(fn, repeats: int = 3) -> float:
    """The fastest of ``repeats`` timed calls (seconds)."""
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def measure(booster: lgb.Booster, bundle: ScoringBundle, batch: np.ndarray, reference: np.ndarray, threads: int,
            args: argparse.Namespace) -> list[tuple[str, float, float, str, bool | None]]:
    """(measure, LightGBM, bundle, target, met) of every measure at ``threads`` threads."""
    singles = batch[: args.single_calls]
    shap_rows = batch[: args.shap_rows]
    single_lgb = per_call(lambda r: booster.predict(r, raw_score=True, num_threads=threads), singles)
    single_me = per_call(bundle.raw_score, singles)
    batch_lgb = best_of(lambda: booster.predict(batch, raw_score=True, num_threads=threads))
    batch_me = best_of(lambda: bundle.raw_score(batch))
    shap_lgb = best_of(lambda: booster.predict(shap_rows, pred_contrib=True, num_threads=threads), 2)
    shap_me = best_of(lambda: bundle.contributions(shap_rows), 2)
    explain_lgb = per_call(lambda r: booster.predict(r, pred_contrib=True, num_threads=threads), singles[:500])
    explain_me = per_call(lambda r: explain_rows(bundle, r, reference), singles[:500])
    us = 1e6
    return [
        ("single-row raw score, median µs", np.median(single_lgb) * us, np.median(single_me) * us, "≤ 0.1×",
         np.median(single_me) <= 0.1 * np.median(single_lgb)),
        ("single-row raw score, p99 µs", np.quantile(single_lgb, 0.99) * us, np.quantile(single_me, 0.99) * us,
         "", None),
        (f"batch raw scores, {args.batch:,} rows, rows/s", args.batch / batch_lgb, args.batch / batch_me, "≥ 2×",
         batch_lgb >= 2 * batch_me),
        (f"batch TreeSHAP, {args.shap_rows:,} rows, µs/row", shap_lgb / args.shap_rows * us,
         shap_me / args.shap_rows * us, "≥ 2× faster", shap_lgb >= 2 * shap_me),
        ("single-row explanation, median µs (LightGBM: pred_contrib only)", np.median(explain_lgb) * us,
         np.median(explain_me) * us, "< 1000 µs", np.median(explain_me) < 1e-3),
        ("single-row explanation, p99 µs", np.quantile(explain_lgb, 0.99) * us,
         np.quantile(explain_me, 0.99) * us, "", None),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trees", type=int, default=300)
    parser.add_argument("--features", type=int, default=100)
    parser.add_argument("--batch", type=int, default=100_000)
    parser.add_argument("--shap-rows", type=int, default=2_000)
    parser.add_argument("--single-calls", type=int, default=2_000)
    args = parser.parse_args()

    X, y = synthetic_data(30_000, args.features)
    booster = lgb.train({"objective": "binary", "verbose": -1, "num_leaves": 31, "learning_rate": 0.05,
                         "min_data_in_leaf": 20, "num_threads": 2, "seed": SEED},
                        lgb.Dataset(X, y), num_boost_round=args.trees)
    with tempfile.TemporaryDirectory() as tmp:
        folder = export_booster(booster, Path(tmp) / "bundle", BundleFacts("village", 30, (0.3, 0.15, 0.05)))
        started = time.perf_counter()
        bundle = load_bundle(folder)
        load_seconds = time.perf_counter() - started
    batch, _ = synthetic_data(args.batch, args.features, seed=SEED + 1)
    reference = np.nanmedian(batch, axis=0)[None, :]
    # compile (or load from numba's cache) every kernel before timing
    bundle.raw_score(batch[:100]), bundle.raw_score(batch[:1]), bundle.contributions(batch[:100])
    explain_rows(bundle, batch[:1], reference)
    checks = {
        "raw_max_diff": float(np.abs(bundle.raw_score(batch[:5000]) - booster.predict(batch[:5000], raw_score=True)).max()),
        "contrib_max_diff": float(np.abs(bundle.contributions(batch[:500])
                                         - booster.predict(batch[:500], pred_contrib=True)).max()),
    }
    depth = len(bundle._layout.active)

    rows, record = [], {"checks": checks, "load_seconds": load_seconds, "max_path_length": depth,
                        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
                        "args": vars(args), "load_before": os.getloadavg()[0], "results": []}
    for threads in (1, 2):
        numba.set_num_threads(threads)
        for name, theirs, ours, target, met in measure(booster, bundle, batch, reference, threads, args):
            ratio = ours / theirs if "rows/s" in name else theirs / ours
            rows.append({"measure": name, "threads": threads, "LightGBM": f"{theirs:,.1f}", "bundle": f"{ours:,.1f}",
                         "speed-up": f"{ratio:.1f}×", "target": target,
                         "met": "" if met is None else ("yes" if met else "NO")})
            record["results"].append({"measure": name, "threads": threads, "lightgbm": float(theirs), "bundle": float(ours),
                                      "speedup": float(ratio), "target": target,
                                      "met": None if met is None else bool(met)})
    preamble = [
        "# Bundle scorer vs LightGBM",
        "",
        (f"Model: {args.trees} trees, 31 leaves (longest path {depth} splits), {args.features} features, trained on "
         f"30,000 synthetic rows (seed {SEED}); LightGBM {lgb.__version__}, numba {numba.__version__}; "
         f"{record['machine']}. Same thread count on both sides. Bundle load (checks, walk layout, path precomputation) "
         f"{load_seconds:.2f} s. Equal outputs in this run: raw max |Δ| {checks['raw_max_diff']:.1e}, "
         f"contributions max |Δ| {checks['contrib_max_diff']:.1e}. Speed-up = how many times faster the bundle is, "
         f"both sides timed in this one run. Load average (1 min) {record['load_before']:.1f} before, "
         f"{os.getloadavg()[0]:.1f} after: the machine is shared, so the absolute times carry its noise; the "
         "speed-ups are the figures to compare."),
        "",
    ]
    publish("bench_scorer", preamble, ["measure", "threads", "LightGBM", "bundle", "speed-up", "target", "met"], rows,
            record)


if __name__ == "__main__":
    main()
