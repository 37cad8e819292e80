"""Model quality against the issue's targets: every model, the baselines and the oracle.

On the default world (fixed seed) with 30-day labels — villages and projects — and on its
incidents-only version (a warehouse of `regions` + `incidents`) at 7- and 30-day horizons
(the 7-day world is the same seed simulated with a 7-day oracle). Each setting is one
rolling-origin backtest (`models.training.train_and_backtest`: the last months in monthly
folds, every model fitted per fold on rows whose labels closed before it) with 90% bootstrap
intervals over snapshots. Targets checked (issue 8):

- villages: the champion's PR-AUC ≥ 1.05 × plain LightGBM's and ≥ 1.25 × the best simple
  baseline's; ROC-AUC ≥ plain + 0.005; ECE ≤ 0.01;
- projects: the same table, and ROC-AUC above the prior assessment level's;
- incidents only: the champion beats LightGBM on 5 weekly lags by ≥ 0.01 ROC-AUC and ≥ 5%
  relative PR-AUC, at 7 and 30 days.

Beside each table: the ECE a perfectly calibrated predictor gets on the same rows (labels drawn
from the oracle's probabilities, many times) — the noise floor below which no model's ECE can be
told apart from perfect calibration.

Writes experiments/results/quality.md and .json.

    python experiments/quality.py [--root DIR] [--months 6] [--trials 6] [--draws 100] [--workers 2]
                                  [--settings villages projects incidents_30d incidents_7d]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from features.engine import build_and_write
from models.data import load_training_table
from models.metrics import expected_calibration_error
from models.training import TrainingOptions, train_and_backtest

RESULTS = Path(__file__).resolve().parent / "results"
SEED_NOTE = "the default world (the demo's seed)"
SIMPLE_BASELINES = ("recent_incidents", "incident_lags")
SETTINGS = ("villages", "projects", "incidents_30d", "incidents_7d")
"""The settings of the study, by the name ``--settings`` takes."""
FLOOR_DRAWS = 2000


def ece_noise_floor(p: np.ndarray, draws: int = FLOOR_DRAWS, seed: int = 0, level: float = 0.9) -> dict[str, float]:
    """The ECE (10 equal-count bins) of a perfectly calibrated predictor on rows whose true
    probabilities are ``p``: labels drawn from ``p`` itself, ``draws`` times; the mean and the
    ``level`` interval. A model's ECE below the interval's top cannot be told from perfect
    calibration on these rows; a target below the mean is below what the rows can show."""
    rng = np.random.default_rng(seed)
    p = np.asarray(p, dtype=float)
    values = np.array([expected_calibration_error(rng.random(len(p)) < p, p) for _ in range(draws)])
    tail = (1 - level) / 2
    return {"mean": float(values.mean()), "low": float(np.quantile(values, tail)),
            "high": float(np.quantile(values, 1 - tail)), "draws": draws}


def fengqiao(argv: list[str], data_root: Path, horizon_days: int) -> None:
    """Run one `fengqiao` command in its own process; stop with its output if it fails."""
    env = {**os.environ, "FENGQIAO_DATA_ROOT": str(data_root), "FENGQIAO_PSEUDONYM_KEY": "quality",
           "FENGQIAO_HORIZON_DAYS": str(horizon_days)}
    proc = subprocess.run([sys.executable, "-c", "from pipelines.cli import app; app()", *argv], env=env,
                          capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"fengqiao {' '.join(argv)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def world(root: Path, horizon_days: int) -> Path:
    """The default world with a ``horizon_days`` oracle and labels, built once under ``root``."""
    base = root / f"h{horizon_days}"
    warehouse = base / "var" / "warehouse"
    if not (warehouse / "features_village.parquet").exists():
        fengqiao(["simulate", "--out", str(base / "raw")], base / "var", horizon_days)
        fengqiao(["ingest", str(base / "raw")], base / "var", horizon_days)
        fengqiao(["features"], base / "var", horizon_days)
    return warehouse


def incidents_only(warehouse: Path, horizon_days: int) -> Path:
    """The same world as a city holding only `regions` and `incidents` (and the oracle)."""
    out = warehouse.parent.parent / "incidents_only" / "warehouse"
    if not (out / "features_village.parquet").exists():
        out.mkdir(parents=True, exist_ok=True)
        for name in ("regions.parquet", "incidents.parquet", "oracle.parquet"):
            shutil.copy(warehouse / name, out / name)
        build_and_write(out, entities=("village",), horizon_days=horizon_days)
    return out


MODELS = ("blend", "lightgbm", "lightgbm_hawkes", "hawkes", "logistic", "recent_incidents", "incident_lags",
          "plain_lightgbm")
"""Each backtested in its own job (the same folds and the same bootstrap draws, so the figures
are paired)."""
CHAMPION = "blend"
"""The champion candidate, whose figures the targets check (the default ``FENGQIAO_MODEL``)."""
TREES_OF = {"blend": "lightgbm"}
"""A model whose trees are another model's: it takes that model's tuned parameters from
``--params`` (the tuner tunes the trees alone, on the same rows, with the same seed)."""


def evaluate(job: tuple) -> dict:
    """One model's backtest in one setting (the oracle rides along)."""
    name, warehouse, entity, model, options, params = job
    started = time.perf_counter()
    print(f"== {name}, {entity}s, {options.horizon_days} days: {model}", file=sys.stderr, flush=True)
    table = load_training_table(warehouse, entity, options.horizon_days)
    result = train_and_backtest(table, dataclasses.replace(options, model=model), params=params)
    rows = json.loads(result.summary.to_json(orient="records"))
    floor = ece_noise_floor(result.predictions["oracle"].to_numpy()) if "oracle" in result.predictions else None
    print(f"   done {name}, {entity}s, {options.horizon_days} days: {model} in {time.perf_counter() - started:.0f} s",
          file=sys.stderr, flush=True)
    return {"setting": name, "entity": entity, "horizon_days": options.horizon_days, "model": model,
            "rows": len(table.frame), "features": len(table.features), "sources": table.sources,
            "scored_rows": len(result.predictions), "folds": [str(f.test_start)[:10] for f in result.folds],
            "tuned_params": result.params, "assessment": result.assessment, "models": rows, "ece_floor": floor,
            "seconds": round(time.perf_counter() - started, 1)}


def merge(parts: list[dict]) -> list[dict]:
    """One setting per (setting, entity, horizon) with every model's row (and the oracle once)."""
    settings: dict[tuple, dict] = {}
    for part in parts:
        key = (part["setting"], part["entity"], part["horizon_days"])
        s = settings.setdefault(key, {**{k: v for k, v in part.items() if k not in ("model", "models", "seconds",
                                                                                     "tuned_params", "assessment",
                                                                                     "ece_floor")},
                                      "models": [], "seconds": {}, "tuned_params": {}, "assessment": {}})
        if any(r["model"] == part["model"] for r in s["models"]):
            continue  # the same backtest finished in two runs: keep the first
        s["models"] += [r for r in part["models"] if r["model"] == part["model"]]
        s["seconds"][part["model"]] = part["seconds"]
        if part["tuned_params"]:
            s["tuned_params"][part["model"]] = part["tuned_params"]
        if part["model"] == CHAMPION:
            s["assessment"] = part["assessment"]
        if part.get("ece_floor") and not s.get("ece_floor"):
            s["ece_floor"] = part["ece_floor"]  # the same rows and oracle in every model's backtest
        oracle = [r for r in part["models"] if r["model"] == "oracle"]
        if oracle and not any(r["model"] == "oracle" for r in s["models"]):
            s["oracle"] = oracle[0]
    for s in settings.values():
        order = {m: i for i, m in enumerate(MODELS)}
        s["models"].sort(key=lambda r: order.get(r["model"], 99))
        if "oracle" in s:
            s["models"].append(s.pop("oracle"))
    return list(settings.values())


def _m(setting: dict, model: str) -> dict:
    """A model's figures in a setting; NaN figures when its backtest did not finish."""
    found = [r for r in setting["models"] if r["model"] == model]
    return found[0] if found else {"roc_auc": float("nan"), "pr_auc": float("nan"), "ece": float("nan")}


def targets(setting: dict) -> list[dict]:
    """The issue's targets for one setting, each with the figures it compares and pass/fail."""
    champ = _m(setting, CHAMPION)
    checks = []

    def check(what: str, value: float, bound: float, higher: bool = True) -> None:
        if value != value or bound != bound:  # a model's backtest did not finish: not measured
            checks.append({"target": what, "value": None, "bound": None, "met": None})
            return
        checks.append({"target": what, "value": round(value, 4), "bound": round(bound, 4),
                       "met": bool(value >= bound if higher else value <= bound)})

    if setting["setting"].startswith("incidents only"):
        lags = _m(setting, "incident_lags")
        check("ROC-AUC ≥ lags + 0.01", champ["roc_auc"], lags["roc_auc"] + 0.01)
        check("PR-AUC ≥ 1.05 × lags", champ["pr_auc"], 1.05 * lags["pr_auc"])
        return checks
    plain = _m(setting, "plain_lightgbm")
    simple = [_m(setting, b)["pr_auc"] for b in SIMPLE_BASELINES]
    best_simple = float("nan") if any(v != v for v in simple) else max(simple)
    check("PR-AUC ≥ 1.05 × plain LightGBM", champ["pr_auc"], 1.05 * plain["pr_auc"])
    check("PR-AUC ≥ 1.25 × best simple baseline", champ["pr_auc"], 1.25 * best_simple)
    check("ROC-AUC ≥ plain + 0.005", champ["roc_auc"], plain["roc_auc"] + 0.005)
    check("ECE ≤ 0.01", champ["ece"], 0.01, higher=False)
    if setting.get("ece_floor"):
        check("ECE ≤ top of the noise floor's 90% interval", champ["ece"], setting["ece_floor"]["high"], higher=False)
    if setting["assessment"]:
        check("ROC-AUC > prior assessment's", setting["assessment"]["model_roc_auc"],
              setting["assessment"]["assessment_roc_auc"] + 1e-9)
    return checks


def render(settings: list[dict], how: str) -> str:
    lines = [f"# quality — {time.strftime('%Y-%m-%d')}", "", how, ""]
    for s in settings:
        lines += [f"## {s['setting']}: {s['entity']}s, {s['horizon_days']}-day horizon", "",
                  f"{s['scored_rows']:,} scored rows in {len(s['folds'])} monthly folds from {s['folds'][0]}; "
                  f"{s['features']} features from {', '.join(s['sources'])}; "
                  f"{sum(s['seconds'].values()):.0f} s of model fits in all.", "",
                  "| model | ROC-AUC | PR-AUC | precision@5% | recall@5% | PAI | Brier | ECE | log-loss | share of oracle lift |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for r in s["models"]:
            cells = []
            for m in ("roc_auc", "pr_auc", "precision_at_k", "recall_at_k", "pai", "brier", "ece", "log_loss",
                      "share_of_oracle_lift"):
                v, lo, hi = r.get(m), r.get(f"{m}_low"), r.get(f"{m}_high")
                cells.append("" if v is None else f"{v:.3f}" + ("" if lo is None else f" [{lo:.3f}, {hi:.3f}]"))
            lines.append(f"| {r['model']} | " + " | ".join(cells) + " |")
        if s["assessment"]:
            a = s["assessment"]
            lines += ["", f"Prior assessment level as a ranking on the same {a['rows']:,} rows: ROC-AUC "
                      f"{a['assessment_roc_auc']:.3f}, PR-AUC {a['assessment_pr_auc']:.3f} "
                      f"(model {a['model_roc_auc']:.3f}, {a['model_pr_auc']:.3f})."]
        if s.get("ece_floor"):
            f = s["ece_floor"]
            lines += ["", (f"Noise floor of ECE on these rows: a perfectly calibrated predictor (labels drawn from the "
                           f"oracle's probabilities, {f['draws']:,} draws) scores {f['mean']:.4f} on average, 90% "
                           f"interval [{f['low']:.4f}, {f['high']:.4f}].")]
        lines += ["", "| target | value | bound | met |", "|---|---|---|---|"]
        lines += [f"| {t['target']} | not measured | | — |" if t["met"] is None else
                  f"| {t['target']} | {t['value']:.4f} | {t['bound']:.4f} | {'yes' if t['met'] else '**no**'} |"
                  for t in s["targets"]]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path("var/quality"), help="where the worlds are built (reused)")
    parser.add_argument("--months", type=int, default=6, help="backtest months (monthly folds)")
    parser.add_argument("--trials", type=int, default=6, help="tuning trials of the main model")
    parser.add_argument("--draws", type=int, default=100, help="bootstrap resamples of snapshots")
    parser.add_argument("--n-jobs", type=int, default=1, help="LightGBM threads per worker")
    parser.add_argument("--workers", type=int, default=3, help="model backtests run at once (processes)")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS, help="models to backtest")
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=SETTINGS, help="settings to run")
    parser.add_argument("--params", type=Path, default=None,
                        help="a quality.json whose tuned parameters the main model reuses instead of tuning again "
                             "(they were chosen on the rows before the first fold, so reusing them sees nothing later)")
    parser.add_argument("--parts", type=Path, default=RESULTS / "quality_parts.json",
                        help="where each finished backtest is kept as it finishes")
    parser.add_argument("--render", type=Path, nargs="+", default=None,
                        help="only merge these parts files (from runs with --models) and write the tables")
    args = parser.parse_args()
    if args.render:
        parts = [p for path in args.render for p in json.loads(path.read_text())]
        write_results(parts, args)
        return
    plan = []
    for horizon in (30, 7):
        if not {f"incidents_{horizon}d", *(("villages", "projects") if horizon == 30 else ())} & set(args.settings):
            continue
        warehouse = world(args.root, horizon)
        for name, entity in (("villages", "village"), ("projects", "project")):
            if horizon == 30 and name in args.settings:
                plan.append(("default world", warehouse, entity, 30))
        if f"incidents_{horizon}d" in args.settings:
            plan.append(("incidents only", incidents_only(warehouse, horizon), "village", horizon))
    tuned = {}
    if args.params:
        tuned = {(s["setting"], s["entity"], s["horizon_days"], m): p
                 for s in json.loads(args.params.read_text()) for m, p in s["tuned_params"].items()}
    jobs = [(name, warehouse, entity, model,
             TrainingOptions(horizon_days=horizon, backtest_months=args.months, tuning_trials=args.trials,
                             bootstrap_draws=args.draws, compare_with=(), n_jobs=args.n_jobs, final_fit=False),
             tuned.get((name, entity, horizon, model)) or tuned.get((name, entity, horizon, TREES_OF.get(model))))
            for model in args.models for name, warehouse, entity, horizon in plan]
    parts = []
    RESULTS.mkdir(exist_ok=True)
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        for part in pool.imap_unordered(evaluate, jobs):
            parts.append(part)
            args.parts.write_text(json.dumps(parts, indent=1, ensure_ascii=False) + "\n")
    write_results(parts, args)


def write_results(parts: list[dict], args: argparse.Namespace) -> None:
    """Merge the finished backtests into one table per setting, check the targets, write
    quality.md and quality.json."""
    settings = merge(parts)
    for setting in settings:
        setting["targets"] = targets(setting)
    (RESULTS / "quality.json").write_text(json.dumps(settings, indent=1, ensure_ascii=False) + "\n")
    tuning = (f"tuned with {args.trials} Optuna trials on the rows before the first fold" if not args.params else
              f"with the parameters {args.trials} Optuna trials chose on the rows before the first fold in the run "
              f"recorded in {args.params.name}")
    months = "the last months" if args.render else f"the last {args.months} months"
    how = (f"{SEED_NOTE}; backtest over {months} in monthly folds (each section gives its folds); main model LightGBM "
           f"{tuning}, "
           "refitted on all its rows with the early-stopped number of trees and calibrated on a held-out slice; "
           f"90% intervals from {args.draws} bootstrap resamples of snapshots. `{CHAMPION}` is the champion candidate; "
           "`plain_lightgbm` is experiments/world_difficulty.py's untuned model on the feature table.")
    table = render(settings, how)
    print(table)
    (RESULTS / "quality.md").write_text(table + "\n")


if __name__ == "__main__":
    main()
