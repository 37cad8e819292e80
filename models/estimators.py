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
from sklearn.base import BaseEstimator, ClassifierMixin, clone
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


class LogOddsRisk(ClassifierMixin, BaseEstimator):
    """A model that scores in log-odds (``raw_score``); its probability is their logistic."""

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return _two_columns(1 / (1 + np.exp(-self.raw_score(X))))


class LightGBMRisk(LogOddsRisk):
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

    def raw_score(self, X: pd.DataFrame) -> np.ndarray:
        """The trees' log-odds."""
        X = X[list(self.feature_names_in_)]
        return self.booster_.predict(X, num_iteration=self.best_iteration_, raw_score=True, num_threads=self.n_jobs)

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


class LogisticRisk(LogOddsRisk):
    """L2 logistic regression on log-scaled, median-imputed, standardised features: the
    transparent model whose coefficients a reviewer can read. Fitted by Newton's method (many
    rows, a few hundred features: on the default world's 204k village rows it converges in 6
    steps and 23 s, where L-BFGS stopped after 38 s up to 0.14 log-odds short of the optimum).

    A feature named in ``monotone`` with a known sign (+1: more never lowers the risk, −1: a
    lever, more never raises it) whose coefficient comes out against that sign is left out and
    the rest refitted, until every coefficient has its sign: without it, a correlated lever can
    take a harmful weight, and a what-if on it would read more help as more risk. Should every
    feature be left out, the model is the base rate.

    The fitted model is kept as plain arrays (``fill_``, ``center_``, ``coef_``, ``intercept_``,
    one entry per feature, zero coefficients for those left out), from which it scores:
    t = sign(x)·log(1 + |x|), NaN → ``fill_``; log-odds = Σ ``coef_``·(t − ``center_``) +
    ``intercept_``. The scoring bundle stores the same arrays (``models.bundle.linear``)."""

    def __init__(self, columns: Sequence[str] | None = None, C: float = 0.1, max_iter: int = 500,
                 monotone: Mapping[str, int] | None = None):
        self.columns = columns
        self.C = C
        self.max_iter = max_iter
        self.monotone = monotone

    def fit(self, X: pd.DataFrame, y: np.ndarray, snapshot: np.ndarray | None = None) -> LogisticRisk:
        X = _select(X, self.columns)
        self.feature_names_in_ = np.array(X.columns, dtype=object)
        signs = np.array([int((self.monotone or {}).get(c, 0)) for c in X.columns])
        values, y = X.to_numpy(dtype=float), np.asarray(y, dtype=int)
        used = np.ones(len(signs), dtype=bool)
        self.fill_, self.center_, self.scale_ = np.zeros(len(signs)), np.zeros(len(signs)), np.ones(len(signs))
        self.coef_ = np.zeros(len(signs))
        self.intercept_ = float(np.log(max(y.mean(), 1e-12) / max(1 - y.mean(), 1e-12)))
        while used.any():
            pipeline = make_pipeline(
                FunctionTransformer(signed_log1p), SimpleImputer(strategy="median", keep_empty_features=True),
                StandardScaler(), LogisticRegression(C=self.C, max_iter=self.max_iter, solver="newton-cholesky"),
            ).fit(values[:, used], y)
            coef = np.zeros(len(signs))
            coef[used] = pipeline[-1].coef_[0] / pipeline[2].scale_
            against = signs * coef < 0
            if not against.any():
                self.fill_[used], self.center_[used], self.scale_[used] = (pipeline[1].statistics_, pipeline[2].mean_,
                                                                           pipeline[2].scale_)
                self.coef_, self.intercept_ = coef, float(pipeline[-1].intercept_[0])
                break
            used &= ~against
        self.left_out_ = list(self.feature_names_in_[~used])
        self.classes_ = np.array([0, 1])
        return self

    def _terms(self, X: pd.DataFrame) -> np.ndarray:
        """Each feature's term coef·(t − center) of the log-odds, (n, features)."""
        t = signed_log1p(X[list(self.feature_names_in_)].to_numpy(dtype=float))
        return (np.where(np.isnan(t), self.fill_, t) - self.center_) * self.coef_

    def raw_score(self, X: pd.DataFrame) -> np.ndarray:
        """The log-odds."""
        return self._terms(X).sum(axis=1) + self.intercept_

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """Each feature's term of the log-odds: its exact Shapley value (a linear model's terms
        are centred on the training rows' mean, as TreeSHAP's are on the trees' expectation)."""
        return pd.DataFrame(self._terms(X), columns=list(self.feature_names_in_), index=X.index)

    def feature_importance(self) -> pd.Series:
        """|coefficient| on the standardised scale."""
        return pd.Series(np.abs(self.coef_) * self.scale_, index=list(self.feature_names_in_))


class BlendRisk(LogOddsRisk):
    """The main model's trees and a logistic regression on the same features, fitted on the
    same rows, their log-odds averaged: ``tree_weight`` · trees + (1 − ``tree_weight``) ·
    linear. The trees find interactions and thresholds; the linear part extrapolates smoothly
    where the trees have few rows (the rare high counts that precede most escalations). The
    blend is still exactly additive per feature (TreeSHAP plus the linear terms), so it exports
    to a scoring bundle and explains like the trees alone."""

    def __init__(self, trees: LightGBMRisk, linear: LogisticRisk, tree_weight: float = 0.5):
        self.trees = trees
        self.linear = linear
        self.tree_weight = tree_weight

    def fit(self, X: pd.DataFrame, y: np.ndarray, snapshot: np.ndarray | None = None) -> BlendRisk:
        self.trees_ = clone(self.trees).fit(X, y, snapshot=snapshot)
        self.linear_ = clone(self.linear).fit(X, y, snapshot=snapshot)
        if list(self.trees_.feature_names_in_) != list(self.linear_.feature_names_in_):
            raise ValueError("the blend's trees and linear part must use the same features, in the same order")
        self.feature_names_in_ = self.trees_.feature_names_in_
        self.classes_ = np.array([0, 1])
        return self

    def raw_score(self, X: pd.DataFrame) -> np.ndarray:
        """The blend's log-odds."""
        return self.tree_weight * self.trees_.raw_score(X) + (1 - self.tree_weight) * self.linear_.raw_score(X)

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """Each feature's share of the log-odds: the weighted sum of its TreeSHAP value and its
        linear term."""
        return self.tree_weight * self.trees_.contributions(X) + (1 - self.tree_weight) * self.linear_.contributions(X)

    def feature_importance(self) -> pd.Series:
        """The trees' gain shares and the linear part's |standardised coefficient| shares, weighted."""
        trees, linear = self.trees_.feature_importance(), self.linear_.feature_importance()
        return (self.tree_weight * trees / (trees.sum() or 1.0)
                + (1 - self.tree_weight) * linear / (linear.sum() or 1.0))


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
