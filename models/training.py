"""Training and backtesting of one entity kind, as one pure-ish function over a
``TrainingTable``: tune the main model on the rows before the backtest, backtest it with the
baselines on the same folds, judge, and fit the final model on every labelled row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import pandas as pd
from sklearn.base import BaseEstimator

from fengqiao.progress import Progress
from models.backtest import Fold, rolling_folds, run_backtest
from models.catalogue import BASELINES, TUNED_MODELS, build_model
from models.data import TrainingTable
from models.evaluation import assessment_comparison, coverage_by_county, fold_metrics, summary_with_intervals
from models.featuremeta import feature_group, monotone_sign
from models.timesplit import as_datetime64, take_rows
from models.tuning import tune_lightgbm


@dataclass
class TrainingOptions:
    """What a training run does; the entry points fill it from Settings."""

    model: str = "blend"
    horizon_days: int = 30
    backtest_months: int = 6
    alert_budget: float = 0.05
    tuning_trials: int = 4
    untuned_learning_rates: Mapping[str, float] = field(default_factory=dict)
    """The main model's learning rate per entity when it is not tuned (absent: DEFAULT_LIGHTGBM's)."""
    bootstrap_draws: int = 200
    calibration: str = "auto"
    calibration_weeks: int = 8
    compare_with: Sequence[str] = (*BASELINES, "plain_lightgbm")
    seed: int = 7
    n_jobs: int = 2
    distributed: bool = False
    """Grow the final model's trees on the current Dask client's workers (``lightgbm.dask``)."""
    """Model fits at once (backtest folds × models, tuning folds), each LightGBM single-threaded."""
    final_fit: bool = True
    level_thresholds: tuple[float, float, float] = (0.30, 0.15, 0.05)


@dataclass
class TrainingResult:
    """Everything a run records: the final model, the backtest and how it was judged."""

    entity: str
    model_name: str
    model: BaseEstimator
    params: dict
    tuning_trials: pd.DataFrame
    folds: list[Fold]
    predictions: pd.DataFrame
    per_fold: pd.DataFrame
    summary: pd.DataFrame
    coverage: pd.DataFrame
    importance: pd.DataFrame
    assessment: dict = field(default_factory=dict)

    def figure(self, metric: str, model: str | None = None) -> float:
        """A metric of the whole backtest (default: the trained model's)."""
        row = self.summary[self.summary["model"] == (model or self.model_name)]
        return float(row[metric].iloc[0])


def grouped_importance(model: BaseEstimator, entity: str) -> pd.DataFrame:
    """Feature importance (share of the total) by feature and factor group."""
    core = getattr(model, "model_", model)
    if not hasattr(core, "feature_importance"):
        return pd.DataFrame(columns=["feature", "group", "importance"])
    importance = core.feature_importance()
    total = importance.sum() or 1.0
    return pd.DataFrame({"feature": importance.index, "group": [feature_group(entity, f) for f in importance.index],
                         "importance": importance.to_numpy() / total}).sort_values("importance", ascending=False)


def train_and_backtest(table: TrainingTable, options: TrainingOptions, progress: Progress | None = None,
                       params: dict | None = None) -> TrainingResult:
    """Tune (unless ``params`` are given), backtest against the baselines and the oracle, and
    (with ``options.final_fit``) fit the final model on every labelled row."""
    report = progress or (lambda step, done, total: None)
    X, y, snaps = table.X, table.y, as_datetime64(table.snapshots)
    folds = rolling_folds(snaps, months=options.backtest_months)
    trials = pd.DataFrame()
    if params is None and options.model in TUNED_MODELS and options.tuning_trials > 0:
        before = folds[0].training_rows(snaps, options.horizon_days)
        monotone = {f: monotone_sign(table.entity, f) for f in table.features}
        params, trials = tune_lightgbm(take_rows(X, before), y[before], snaps[before], options.horizon_days, monotone,
                                       trials=options.tuning_trials, seed=options.seed, n_jobs=options.n_jobs,
                                       progress=report)
    if params is None and table.entity in options.untuned_learning_rates:
        params = {"learning_rate": options.untuned_learning_rates[table.entity]}
    params = dict(params or {})
    names = [options.model, *[m for m in options.compare_with if m != options.model]]

    def make(name: str, distributed: bool = False) -> BaseEstimator:
        return build_model(name, table.entity, table.features, options.horizon_days,
                           lightgbm_params=params if name == options.model else None, hawkes=table.hawkes,
                           calibration=options.calibration, calibration_weeks=options.calibration_weeks,
                           distributed=distributed)

    models = {name: make(name) for name in names}
    with ThreadPoolExecutor(max_workers=max(options.n_jobs, 1)) as pool:
        # the final model needs nothing of the backtest: it is the first of the fits that share
        # the pool (the largest first), so that none is left to run alone on one core at the end
        final_fit = (pool.submit(make(options.model, options.distributed).fit, X, y, snapshot=snaps)
                     if options.final_fit else None)
        predictions = run_backtest(X, y, snaps, models, folds, options.horizon_days, progress=report,
                                   n_jobs=options.n_jobs, pool=pool)
        judged = list(names)
        if table.oracle is not None:
            predictions["oracle"] = table.oracle[predictions["row"].to_numpy()]
            judged.append("oracle")
        report("judging", 0, 1)
        per_fold = fold_metrics(predictions, judged, options.alert_budget)
        summary = summary_with_intervals(predictions, judged, options.alert_budget, options.bootstrap_draws,
                                         options.seed, n_jobs=options.n_jobs)
        coverage = coverage_by_county(predictions, table.county, options.model, options.alert_budget)
        assessment = (assessment_comparison(predictions, table.assessment, options.model)
                      if table.assessment is not None else {})
        final = None
        if final_fit is not None:
            report("final fit", 0, 1)
            final = final_fit.result()
            report("final fit", 1, 1)
    importance = grouped_importance(final, table.entity) if final is not None else pd.DataFrame()
    return TrainingResult(table.entity, options.model, final, params, trials, folds, predictions, per_fold, summary,
                          coverage, importance, assessment)
