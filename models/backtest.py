"""Rolling-origin backtest: the last months of labelled snapshots in monthly folds.

Fold i tests the snapshots in [start_i, start_i + 1 month); its models train only on rows whose
label window [s, s + horizon) closed at or before start_i — never on a label the fold's own
weeks could have revealed. Every model is fitted per fold on the same rows and scored on the
same rows, so that models (and a challenger and its champion) are compared on equal terms.
"""

from __future__ import annotations

from collections.abc import Mapping
from concurrent.futures import Executor, ThreadPoolExecutor, as_completed
from contextlib import ExitStack
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone

from fengqiao.progress import Progress
from models.timesplit import as_datetime64, label_closed_before, take_rows


@dataclass(frozen=True)
class Fold:
    """One test month: snapshots in [test_start, test_end)."""

    number: int
    test_start: np.datetime64
    test_end: np.datetime64

    def test_rows(self, snapshots: np.ndarray) -> np.ndarray:
        snaps = as_datetime64(snapshots)
        return (snaps >= self.test_start) & (snaps < self.test_end)

    def training_rows(self, snapshots: np.ndarray, horizon_days: int) -> np.ndarray:
        """Rows whose label window closed at or before the fold starts."""
        return label_closed_before(snapshots, self.test_start, horizon_days)


def rolling_folds(snapshots: np.ndarray, months: int = 6, fold_months: int = 1) -> list[Fold]:
    """Monthly folds covering the last ``months`` months up to the latest snapshot given (pass
    the labelled snapshots only)."""
    last = pd.Timestamp(np.max(as_datetime64(snapshots)))
    end = last + pd.Timedelta(days=1)
    starts = [end - pd.DateOffset(months=m) for m in range(months, 0, -fold_months)]
    bounds = [*starts, end]
    return [Fold(i + 1, np.datetime64(bounds[i].to_datetime64()), np.datetime64(bounds[i + 1].to_datetime64()))
            for i in range(len(starts))]


def run_backtest(
    X: pd.DataFrame, y: np.ndarray, snapshots: np.ndarray, models: Mapping[str, BaseEstimator], folds: list[Fold],
    horizon_days: int, progress: Progress | None = None, n_jobs: int = 1, pool: Executor | None = None,
) -> pd.DataFrame:
    """Fit every model on each fold's training rows and score the fold's rows.

    The (fold, model) fits are independent: ``n_jobs`` of them run at once, in threads (the
    fits release the GIL in LightGBM's C++ and in numpy, and threads share ``X`` instead of
    copying it to other processes) — or in ``pool``, a thread pool the caller shares with
    other fits (training's final fit). The result does not depend on ``n_jobs``.

    Returns one row per scored row: ``row`` (position in ``X``), ``fold``, ``snapshot``,
    ``label``, ``train_last_snapshot`` (the latest snapshot trained on) and one probability
    column per model."""
    y = np.asarray(y, dtype=int)
    snaps = as_datetime64(snapshots)
    report = progress or (lambda step, done, total: None)
    parts = []
    for fold in folds:
        train, test = fold.training_rows(snaps, horizon_days), fold.test_rows(snaps)
        if not train.any() or not test.any():
            raise ValueError(f"fold {fold.number} ({fold.test_start}) has no training or no test rows: "
                             "the history is too short for this backtest; use fewer months")
        parts.append(pd.DataFrame({"row": np.flatnonzero(test), "fold": fold.number, "snapshot": snaps[test],
                                   "label": y[test], "train_last_snapshot": snaps[train].max()}))

    def fit_and_score(f: int, name: str) -> tuple[int, str, np.ndarray]:
        fold = folds[f]
        train, test = fold.training_rows(snaps, horizon_days), fold.test_rows(snaps)
        fitted = clone(models[name]).fit(take_rows(X, train), y[train], snapshot=snaps[train])
        return f, name, fitted.predict_proba(take_rows(X, test))[:, 1]

    # the largest fits first, so that none is left to run alone at the end: the first model
    # (the main one, the costliest) before the others, the latest folds (the most rows) first
    tasks = [(f, name) for name in models for f in reversed(range(len(folds)))]
    step = f"backtest: {len(folds)} folds × {len(models)} models"
    report(step, 0, len(tasks))
    with ExitStack() as stack:
        executor = pool or stack.enter_context(ThreadPoolExecutor(max_workers=max(n_jobs, 1)))
        runs = [executor.submit(fit_and_score, f, name) for f, name in tasks]
        try:
            for done, run in enumerate(as_completed(runs), start=1):
                f, name, p = run.result()
                parts[f][name] = p
                report(step, done, len(tasks))
        except BaseException:
            for run in runs:  # a failed fit fails the backtest now, not after the queued ones
                run.cancel()
            raise
    return pd.concat([part[[*part.columns[:5], *models]] for part in parts], ignore_index=True)
