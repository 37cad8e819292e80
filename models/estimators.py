"""The risk models, each a scikit-learn estimator: ``fit(X, y, snapshot=…)`` learns and
returns self, learned state ends in ``_``, ``predict_proba`` returns P(incident within the
horizon) in its second column.

``X`` is a DataFrame of feature columns; ``snapshot`` (one date per row) is what lets a model
hold out the latest weeks for early stopping without looking ahead. A model's ``columns``
picks the features it may use (None: all), so that a baseline is the same class on fewer
columns.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.impute import SimpleImputer
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler

from models.timesplit import held_out_split

DEFAULT_LIGHTGBM: dict[str, float | int] = dict(
    learning_rate=0.05, num_leaves=31, min_child_samples=50, subsample=0.8, subsample_freq=1,
    colsample_bytree=0.8, reg_lambda=1.0,
)
"""Starting parameters of the main model (the tuner replaces them)."""


def _select(X: pd.DataFrame, columns: Sequence[str] | None) -> pd.DataFrame:
    return X if columns is None else X[list(columns)]


def _two_columns(p: np.ndarray) -> np.ndarray:
    p = np.asarray(p, dtype=float)
    return np.column_stack([1 - p, p])


class LightGBMRisk(ClassifierMixin, BaseEstimator):
    """Gradient-boosted trees, the main model. Monotone constraints (+1) on the features
    named in ``monotone`` (more unresolved disputes, petitions or incidents never lowers the
    score); the number of trees is chosen by early stopping on the last
    ``early_stopping_weeks`` snapshots, held out after a gap of one horizon, and then (with
    ``refit``) the model is fitted again on all its rows with that many trees, so that the most
    recent weeks — the ones that tell most about next month — are not left out of the trees. ``n_jobs`` is
    LightGBM's thread count: 1 by default, because on a small machine shared with other work
    its OpenMP threads wait on each other (measured: 100 trees on 18k rows × 271 features took
    2.8 s with 1 thread and 9.7 s with 2 on a loaded 2-core machine).

    Every LightGBM call here names that thread count, predictions included. LightGBM keeps it in
    one process-wide variable that each call sets (a call that names none sets "all cores"), and
    a booster being built while another thread's call changes it sizes its per-thread buffers
    for one count and then runs with the other: the backtest's fits and predictions, side by side
    in threads, crashed the process that way (SIGSEGV in ``LGBM_BoosterCreate``). So models fitted
    and scored side by side in threads must share one ``n_jobs``.

    With ``distributed``, the trees of the final fit (the refit, or the only fit) are grown by
    ``lightgbm.dask`` on the current Dask client's workers, the rows split among them; the
    early-stopping fit that chooses their number stays in this process, because LightGBM's Dask
    interface has no early stopping. The result is a plain booster like any other."""

    def __init__(self, params: Mapping | None = None, columns: Sequence[str] | None = None,
                 monotone: Mapping[str, int] | None = None, max_trees: int = 1000,
                 early_stopping_weeks: int = 4, horizon_days: int = 30, random_state: int = 7, n_jobs: int = 1,
                 refit: bool = True, distributed: bool = False):
        self.params = params
        self.columns = columns
        self.monotone = monotone
        self.max_trees = max_trees
        self.early_stopping_weeks = early_stopping_weeks
        self.horizon_days = horizon_days
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.refit = refit
        self.distributed = distributed

    def _params(self, signs: list[int]) -> dict:
        """LightGBM's parameters (the scikit-learn names are LightGBM aliases)."""
        return {"objective": "binary", "metric": "binary_logloss", "random_state": self.random_state, "verbose": -1,
                "monotone_constraints": signs, "monotone_constraints_method": "intermediate",
                **DEFAULT_LIGHTGBM, **(self.params or {})}

    def _distributed_fit(self, X: pd.DataFrame, y: np.ndarray, trees: int, signs: list[int]) -> lgb.Booster:
        """The kept trees grown on the current Dask client's workers, the rows split among them."""
        from dask import dataframe as dd
        from distributed import default_client

        params = {k: v for k, v in self._params(signs).items() if k != "metric"}
        parts = max(1, len(default_client().scheduler_info()["workers"]))
        model = lgb.DaskLGBMClassifier(n_estimators=trees, **params)
        model.fit(dd.from_pandas(X, npartitions=parts), dd.from_pandas(pd.Series(y, index=X.index), npartitions=parts))
        return model.to_local().booster_

    def fit(self, X: pd.DataFrame, y: np.ndarray, snapshot: np.ndarray | None = None) -> LightGBMRisk:
        """One LightGBM dataset of all the rows, binned once: the early-stopping fit and its
        held-out weeks are subsets of it (no copy of the features, no second binning), and the
        refit trains on it whole. At ``--scale 10`` binning the village rows takes about a
        minute and a copy of them 2 GB."""
        X = _select(X, self.columns)
        y = np.asarray(y, dtype=int)
        self.feature_names_in_ = np.array(X.columns, dtype=object)
        signs = [int((self.monotone or {}).get(c, 0)) for c in X.columns]
        params = {**self._params(signs), "num_threads": self.n_jobs}
        rows = lgb.Dataset(X.to_numpy(), label=y, feature_name=[str(c) for c in X.columns], params=params,
                           free_raw_data=True)
        trees, stopped = self.max_trees, None
        if snapshot is not None and self.early_stopping_weeks > 0:
            fit_rows, held = held_out_split(snapshot, self.early_stopping_weeks, self.horizon_days)
            rows.construct()
            stopped = lgb.train(params, rows.subset(np.flatnonzero(fit_rows)), num_boost_round=self.max_trees,
                                valid_sets=[rows.subset(np.flatnonzero(held))],
                                callbacks=[lgb.early_stopping(50, verbose=False)])
            trees = int(stopped.best_iteration or self.max_trees)
        if self.distributed:
            self.booster_ = self._distributed_fit(X, y, trees, signs)
        elif stopped is not None and not self.refit:
            self.booster_ = stopped
        else:
            self.booster_ = lgb.train(params, rows, num_boost_round=trees)
        self.best_iteration_ = trees
        self.monotone_constraints_ = dict(zip(X.columns, signs))
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        X = X[list(self.feature_names_in_)]
        return _two_columns(self.booster_.predict(X, num_iteration=self.best_iteration_, num_threads=self.n_jobs))

    def feature_importance(self) -> pd.Series:
        """Total gain of each feature's splits."""
        return pd.Series(self.booster_.feature_importance("gain"), index=list(self.feature_names_in_))

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """TreeSHAP contributions to the raw score (log-odds), one column per feature."""
        X = X[list(self.feature_names_in_)]
        contrib = self.booster_.predict(X, num_iteration=self.best_iteration_, pred_contrib=True,
                                        num_threads=self.n_jobs)
        return pd.DataFrame(contrib[:, :-1], columns=list(self.feature_names_in_), index=X.index)


def signed_log1p(x: np.ndarray) -> np.ndarray:
    """sign(x)·log(1 + |x|): counts and money on a log scale, signs kept."""
    return np.sign(x) * np.log1p(np.abs(x))


class LogisticRisk(ClassifierMixin, BaseEstimator):
    """L2 logistic regression on log-scaled, median-imputed, standardised features: the
    transparent model whose coefficients a reviewer can read."""

    def __init__(self, columns: Sequence[str] | None = None, C: float = 0.1, max_iter: int = 500):
        self.columns = columns
        self.C = C
        self.max_iter = max_iter

    def fit(self, X: pd.DataFrame, y: np.ndarray, snapshot: np.ndarray | None = None) -> LogisticRisk:
        X = _select(X, self.columns)
        self.feature_names_in_ = np.array(X.columns, dtype=object)
        self.pipeline_ = make_pipeline(
            FunctionTransformer(signed_log1p), SimpleImputer(strategy="median", keep_empty_features=True),
            StandardScaler(), LogisticRegression(C=self.C, max_iter=self.max_iter),
        ).fit(X.to_numpy(dtype=float), np.asarray(y, dtype=int))
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self.pipeline_.predict_proba(X[list(self.feature_names_in_)].to_numpy(dtype=float))

    def feature_importance(self) -> pd.Series:
        """|coefficient| on the standardised scale."""
        return pd.Series(np.abs(self.pipeline_[-1].coef_[0]), index=list(self.feature_names_in_))


class RecentIncidentsRisk(ClassifierMixin, BaseEstimator):
    """The committee's rule of thumb: the more incidents lately, the higher the risk. The score
    is ``count`` plus a thousandth of ``tie_break``; ``fit`` learns the incident rate at each
    score (isotonic), so the baseline yields probabilities like every other model."""

    def __init__(self, count: str = "incidents_365d", tie_break: str = "incidents_90d"):
        self.count = count
        self.tie_break = tie_break

    def _score(self, X: pd.DataFrame) -> np.ndarray:
        return np.nan_to_num(X[self.count].to_numpy(dtype=float)) + 1e-3 * np.nan_to_num(X[self.tie_break].to_numpy(dtype=float))

    def fit(self, X: pd.DataFrame, y: np.ndarray, snapshot: np.ndarray | None = None) -> RecentIncidentsRisk:
        self.feature_names_in_ = np.array([self.count, self.tie_break], dtype=object)
        self.rate_ = IsotonicRegression(increasing=True, out_of_bounds="clip", y_min=0, y_max=1).fit(
            self._score(X), np.asarray(y, dtype=float))
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        score = self._score(X)
        # the isotonic steps tie many scores; a vanishing share of the raw score keeps the ranking
        return _two_columns(np.clip(self.rate_.predict(score) + 1e-9 * score, 0, 1))
