"""Time-respecting search for the main model's parameters (Optuna, TPE sampler, fixed seed).

Each trial is judged by PR-AUC on inner folds cut from the training rows the way the backtest
cuts its folds: validation on the last weeks, fitting on rows whose label closed before them.
Nothing after the training rows is ever seen.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import optuna
import pandas as pd
from joblib import Parallel, delayed
from sklearn.metrics import average_precision_score

from models.estimators import DEFAULT_LIGHTGBM, LightGBMRisk
from models.timesplit import as_datetime64, label_closed_before, take_rows


def inner_folds(snapshots: np.ndarray, horizon_days: int, folds: int = 2, weeks: int = 8) -> list[tuple[np.ndarray, np.ndarray]]:
    """(fit rows, validation rows) pairs: validation = consecutive blocks of ``weeks``
    snapshots at the end of the rows; fit = rows whose label closed before the block."""
    snaps = as_datetime64(snapshots)
    distinct = np.unique(snaps)
    out = []
    for i in range(folds):
        end = len(distinct) - i * weeks
        start = end - weeks
        if start <= 0:
            break
        valid = (snaps >= distinct[start]) & (snaps <= distinct[end - 1])
        fit = label_closed_before(snaps, distinct[start], horizon_days)
        if fit.any() and valid.any():
            out.append((fit, valid))
    if not out:
        raise ValueError("too few snapshots to tune: need at least one validation block after a gap of one horizon")
    return out


def tune_lightgbm(X: pd.DataFrame, y: np.ndarray, snapshots: np.ndarray, horizon_days: int,
                  monotone: Mapping[str, int], trials: int = 20, seed: int = 7, n_jobs: int = 1,
                  progress: Callable[[str, int, int], None] | None = None) -> tuple[dict, pd.DataFrame]:
    """The best parameters found in ``trials`` trials, and every trial (parameters, mean
    inner-fold PR-AUC). A trial's inner folds are fitted ``n_jobs`` at a time, in threads."""
    y = np.asarray(y, dtype=int)
    folds = inner_folds(snapshots, horizon_days)
    snaps = as_datetime64(snapshots)
    report = progress or (lambda step, done, total: None)

    def objective(trial: optuna.Trial) -> float:
        params = dict(
            num_leaves=trial.suggest_int("num_leaves", 7, 63, log=True),
            learning_rate=trial.suggest_float("learning_rate", 0.02, 0.15, log=True),
            min_child_samples=trial.suggest_int("min_child_samples", 20, 400, log=True),
            colsample_bytree=trial.suggest_float("colsample_bytree", 0.2, 1.0),
            subsample=trial.suggest_float("subsample", 0.5, 1.0),
            reg_lambda=trial.suggest_float("reg_lambda", 1e-3, 30.0, log=True),
        )
        def judge(fit: np.ndarray, valid: np.ndarray) -> tuple[float, int]:
            model = LightGBMRisk(params=params, monotone=monotone, horizon_days=horizon_days, early_stopping_weeks=4,
                                 refit=False)  # a trial judges parameters: no refit, half the time
            model.fit(take_rows(X, fit), y[fit], snapshot=snaps[fit])
            return average_precision_score(y[valid], model.predict_proba(take_rows(X, valid))[:, 1]), model.best_iteration_

        judged = Parallel(n_jobs=n_jobs, prefer="threads")(delayed(judge)(fit, valid) for fit, valid in folds)
        trial.set_user_attr("trees", judged[-1][1])
        report("tuning", trial.number + 1, trials)
        return float(np.mean([score for score, _ in judged]))

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.enqueue_trial({k: v for k, v in DEFAULT_LIGHTGBM.items() if k != "subsample_freq"})
    report("tuning", 0, trials)
    study.optimize(objective, n_trials=trials)
    table = study.trials_dataframe(attrs=("number", "value", "params", "user_attrs"))
    return {**DEFAULT_LIGHTGBM, **study.best_params}, table
