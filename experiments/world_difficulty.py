"""How hard is the synthetic world? The oracle against plain models, table by table.

The yardstick every later model is judged on: on the default world (fixed seed), the last six
months of weekly snapshots with known labels are the test set; models train on every earlier
snapshot whose label window [s, s + h) closes before the first test snapshot. Compared:

- the oracle (the true probability given everything at t, latents included);
- a plain LightGBM (fixed, untuned parameters) on all features;
- the same model on the features of each single event table (the columns a table adds to a
  warehouse of `regions` + `incidents`), and on `regions` + `incidents` alone;
- a recent-incidents baseline (incidents — of the project, for projects — in the last 365 days,
  ties broken by the last 90).

Per model: ROC-AUC, PR-AUC and the share of the oracle's lift over the base rate,
(PR-AUC − base) / (oracle PR-AUC − base). Villages and projects. The world and the feature
tables are made by the `fengqiao` CLI, each step in its own process. Writes
experiments/results/world_difficulty.md and .json.

    python experiments/world_difficulty.py [--seed N] [--keep DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from features.truth import read_oracle

RESULTS = Path(__file__).resolve().parent / "results"
HORIZON_DAYS = 30
TEST_DAYS = 182
PLAIN_LIGHTGBM = dict(
    objective="binary", n_estimators=300, learning_rate=0.05, num_leaves=31, min_child_samples=50,
    subsample=0.8, subsample_freq=1, colsample_bytree=0.8, random_state=7, n_jobs=2, verbose=-1,
)
"""Fixed, untuned parameters: the plain model the models issue must beat."""
EVENT_TABLES = ("disputes", "petitions", "patrols", "projects")
ID = {"village": "village_id", "project": "project_id"}
RECENT_INCIDENTS = {"village": ("incidents_365d", "incidents_90d"),
                    "project": ("linked_incidents_365d", "linked_incidents_90d")}
"""The baseline's score: incidents (of the project) in the last 365 days, ties broken by the last 90."""


def fengqiao(argv: list[str], data_root: Path) -> None:
    """Run one `fengqiao` command in its own process; stop with its error output if it fails."""
    env = {**os.environ, "FENGQIAO_DATA_ROOT": str(data_root), "FENGQIAO_PSEUDONYM_KEY": "world-difficulty",
           "FENGQIAO_HORIZON_DAYS": str(HORIZON_DAYS)}
    proc = subprocess.run([sys.executable, "-c", "from pipelines.cli import app; app()", *argv], env=env,
                          capture_output=True, text=True)  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(f"fengqiao {' '.join(argv)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def build_world(root: Path, seed: int | None) -> Path:
    """Simulate, ingest and build features into ``root/var``; returns its warehouse."""
    simulate = ["simulate", "--out", str(root / "raw")] + ([] if seed is None else ["--seed", str(seed)])
    fengqiao(simulate, root / "var")
    fengqiao(["ingest", str(root / "raw")], root / "var")
    fengqiao(["features"], root / "var")
    return root / "var" / "warehouse"


def feature_columns(warehouse: Path, tables: tuple[str, ...], root: Path) -> dict[str, list[str]]:
    """The feature columns of each entity that a warehouse holding only ``tables`` yields."""
    data_root = root / ("only_" + "_".join(tables))
    sub = data_root / "warehouse"
    sub.mkdir(parents=True, exist_ok=True)
    for name in tables:
        shutil.copy(warehouse / f"{name}.parquet", sub / f"{name}.parquet")
    fengqiao(["features"], data_root)
    out = {}
    for entity in ID:
        path = sub / f"features_{entity}.parquet"
        if path.exists():
            out[entity] = [c for c in pd.read_parquet(path).columns if c not in (ID[entity], "snapshot", "label")]
    return out


def feature_sets(warehouse: Path, root: Path, all_columns: dict[str, list[str]]) -> dict[str, dict[str, list[str]]]:
    """Named feature sets per entity: all, regions + incidents, and each event table's own."""
    base = feature_columns(warehouse, ("regions", "incidents"), root)
    sets = {entity: {"all features": cols} for entity, cols in all_columns.items()}
    for entity in sets:
        if entity in base:
            sets[entity]["regions + incidents"] = base[entity]
    for table in EVENT_TABLES:
        with_table = feature_columns(warehouse, ("regions", "incidents", table), root)
        for entity, cols in with_table.items():
            own = [c for c in cols if c not in set(base.get(entity, []))]
            if own and entity in sets:
                sets[entity][f"{table} only"] = own
    return sets


def split(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training rows (label window closed before the test period) and test rows (the last
    ``TEST_DAYS`` of snapshots with a known label)."""
    known = frame[frame["label"].notna()]
    test_start = known["snapshot"].max() - pd.Timedelta(days=TEST_DAYS - 1)
    train = known[known["snapshot"] + pd.Timedelta(days=HORIZON_DAYS) <= test_start]
    return train, known[known["snapshot"] >= test_start]


def scores(name: str, y: np.ndarray, p: np.ndarray, base: float, oracle_ap: float | None) -> dict:
    ap = float(average_precision_score(y, p))
    return {"model": name, "roc_auc": round(float(roc_auc_score(y, p)), 4), "pr_auc": round(ap, 4),
            "share_of_oracle_lift": None if oracle_ap is None else round((ap - base) / (oracle_ap - base), 3)}


def evaluate(entity: str, frame: pd.DataFrame, oracle: pd.DataFrame, sets: dict[str, list[str]]) -> dict:
    """The difficulty table of one entity type."""
    train, test = split(frame)
    test = test.merge(oracle, on=[ID[entity], "snapshot"], how="left", validate="one_to_one")
    y = test["label"].to_numpy(dtype=int)
    base = float(y.mean())
    oracle_p = test[f"p_incident_{HORIZON_DAYS}d"].to_numpy()
    assert not np.isnan(oracle_p).any(), "every test row has its oracle probability"
    oracle_ap = float(average_precision_score(y, oracle_p))
    rows = [scores("oracle", y, oracle_p, base, oracle_ap)]
    for name, columns in sets.items():
        started = time.perf_counter()
        model = lgb.LGBMClassifier(**PLAIN_LIGHTGBM).fit(train[columns], train["label"].astype(int))
        rows.append({**scores(f"plain LightGBM, {name}", y, model.predict_proba(test[columns])[:, 1], base, oracle_ap),
                     "features": len(columns), "fit_s": round(time.perf_counter() - started, 1)})
    recent, tie = RECENT_INCIDENTS[entity]
    p = test[recent].to_numpy(dtype=float) + 0.001 * test[tie].to_numpy(dtype=float)
    rows.append(scores(f"recent incidents ({recent}, then {tie})", y, p, base, oracle_ap))
    return {"entity": entity, "train_rows": len(train), "test_rows": len(test), "test_snapshots": test["snapshot"].nunique(),
            "test_from": str(test["snapshot"].min().date()), "test_to": str(test["snapshot"].max().date()),
            "base_rate": round(base, 4), "rows": rows}


def render(results: list[dict], how: str) -> str:
    lines = [f"# world_difficulty — {time.strftime('%Y-%m-%d')}", "", how, ""]
    for r in results:
        lines += [f"## {r['entity']}s: test {r['test_from']} … {r['test_to']} ({r['test_snapshots']} snapshots, "
                  f"{r['test_rows']:,} rows, base rate {r['base_rate']:.4f}); {r['train_rows']:,} training rows", "",
                  "| model | features | ROC-AUC | PR-AUC | share of oracle lift |", "|---|---|---|---|---|"]
        for row in r["rows"]:
            lines.append(f"| {row['model']} | {row.get('features', '')} | {row['roc_auc']:.3f} | {row['pr_auc']:.3f} | "
                         f"{row['share_of_oracle_lift']:.2f} |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=None, help="simulator seed (default: the demo world's)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the generated data in this folder")
    args = parser.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="fengqiao-difficulty-"))
    warehouse = build_world(root, args.seed)
    frames = {e: pd.read_parquet(warehouse / f"features_{e}.parquet") for e in ID}
    all_columns = {e: [c for c in f.columns if c not in (ID[e], "snapshot", "label")] for e, f in frames.items()}
    sets = feature_sets(warehouse, root, all_columns)
    results = [evaluate(e, frames[e], read_oracle(warehouse, e, HORIZON_DAYS), sets[e]) for e in ID]
    how = (f"Default world{'' if args.seed is None else f' (seed {args.seed})'}, horizon {HORIZON_DAYS} days; "
           f"plain LightGBM = {PLAIN_LIGHTGBM['n_estimators']} trees, {PLAIN_LIGHTGBM['num_leaves']} leaves, "
           f"learning rate {PLAIN_LIGHTGBM['learning_rate']}, untuned. A table's features are the columns it adds "
           "to a `regions` + `incidents` warehouse.")
    table = render(results, how)
    print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "world_difficulty.md").write_text(table + "\n")
    (RESULTS / "world_difficulty.json").write_text(json.dumps(results, indent=2) + "\n")
    if args.keep is None:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
