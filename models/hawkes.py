"""A self-exciting (Hawkes) model of incidents, fitted by maximum likelihood with numba.

Entity i's intensity (incidents per day) is

    λ_i(t) = μ_i + α Σ_{own t_j < t} β e^{−β(t − t_j)} + γ Σ_k w_ik Σ_{t_j ∈ k, t_j < t} β e^{−β(t − t_j)}

with a background rate per entity from covariates, μ_i = exp(θ · z_i), an own branching ratio α
(expected incidents one incident triggers in its own place), a neighbour branching ratio γ
spread over the neighbours by the weights w_ik, and a decay rate β (per day). The
probability of at least one incident in [t, t + h) given everything before t is exact for
the first event, 1 − exp(−∫_t^{t+h} λ), because until that event the intensity depends only
on the past:

    Λ = μ_i h + (1 − e^{−βh}) (α S_i(t) + γ Σ_k w_ik S_k(t)),   S_i(t) = Σ_{own t_j < t} e^{−β(t − t_j)}.

S is computed by the recursion A_j = 1 + e^{−β(t_j − t_{j−1})} A_{j−1} over each entity's sorted
events and one binary search per query: O(n + q log n).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numba import njit
from scipy.optimize import minimize
from sklearn.base import BaseEstimator, ClassifierMixin


@dataclass(frozen=True)
class EventHistory:
    """Events per entity (CSR: ``offsets``, ``times`` in days, sorted within each entity),
    the neighbour graph (CSR: ``nbr_offsets``, ``nbr_index``, ``nbr_weight``) and the
    background covariates (entities × d, a constant column included by the fitter)."""

    offsets: np.ndarray
    times: np.ndarray
    nbr_offsets: np.ndarray
    nbr_index: np.ndarray
    nbr_weight: np.ndarray
    covariates: np.ndarray

    @property
    def entities(self) -> int:
        return len(self.offsets) - 1

    @staticmethod
    def from_events(entity: np.ndarray, days: np.ndarray, n_entities: int, neighbours: list[list[tuple[int, float]]],
                    covariates: np.ndarray) -> EventHistory:
        """Build from event (entity, day) pairs and per-entity neighbour lists of (index, weight)."""
        order = np.lexsort((days, entity))
        counts = np.bincount(entity, minlength=n_entities)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        nbr_counts = np.array([len(n) for n in neighbours], dtype=np.int64)
        nbr_offsets = np.concatenate([[0], np.cumsum(nbr_counts)]).astype(np.int64)
        flat = [pair for n in neighbours for pair in n]
        nbr_index = np.array([k for k, _ in flat], dtype=np.int64)
        nbr_weight = np.array([w for _, w in flat], dtype=np.float64)
        return EventHistory(offsets, np.ascontiguousarray(days[order], dtype=np.float64), nbr_offsets, nbr_index,
                            nbr_weight, np.ascontiguousarray(covariates, dtype=np.float64))

    def before(self, moment: float) -> EventHistory:
        """The same history with only the events before ``moment`` (days)."""
        keep = self.times < moment
        owner = np.repeat(np.arange(self.entities), np.diff(self.offsets))
        counts = np.bincount(owner[keep], minlength=self.entities)
        offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        return EventHistory(offsets, self.times[keep], self.nbr_offsets, self.nbr_index, self.nbr_weight, self.covariates)


@njit(cache=True)
def cumulative_decay(offsets: np.ndarray, times: np.ndarray, beta: float) -> np.ndarray:
    """A_j = Σ_{m ≤ j, same entity} e^{−β(t_j − t_m)} by the O(n) recursion."""
    out = np.empty(len(times))
    for e in range(len(offsets) - 1):
        for j in range(offsets[e], offsets[e + 1]):
            if j == offsets[e]:
                out[j] = 1.0
            else:
                out[j] = 1.0 + np.exp(-beta * (times[j] - times[j - 1])) * out[j - 1]
    return out


@njit(cache=True)
def decayed_before(offsets: np.ndarray, times: np.ndarray, cumulative: np.ndarray, beta: float,
                   entity: np.ndarray, moment: np.ndarray) -> np.ndarray:
    """S = Σ_{t_j < moment} e^{−β(moment − t_j)} over each query's entity's events."""
    out = np.zeros(len(entity))
    for q in range(len(entity)):
        lo, hi = offsets[entity[q]], offsets[entity[q] + 1]
        j = lo + np.searchsorted(times[lo:hi], moment[q]) - 1  # last event strictly before
        if j >= lo:
            out[q] = cumulative[j] * np.exp(-beta * (moment[q] - times[j]))
    return out


@njit(cache=True)
def neighbour_decayed(nbr_offsets: np.ndarray, nbr_index: np.ndarray, nbr_weight: np.ndarray, offsets: np.ndarray,
                      times: np.ndarray, cumulative: np.ndarray, beta: float, entity: np.ndarray,
                      moment: np.ndarray) -> np.ndarray:
    """Σ_k w_ik S_k(moment) for each query (entity i, moment)."""
    out = np.zeros(len(entity))
    one = np.zeros(1, dtype=np.int64)
    when = np.zeros(1)
    for q in range(len(entity)):
        i = entity[q]
        when[0] = moment[q]
        for n in range(nbr_offsets[i], nbr_offsets[i + 1]):
            one[0] = nbr_index[n]
            out[q] += nbr_weight[n] * decayed_before(offsets, times, cumulative, beta, one, when)[0]
    return out


@njit(cache=True)
def neg_log_likelihood(mu: np.ndarray, alpha: float, gamma: float, beta: float, offsets: np.ndarray,
                       times: np.ndarray, nbr_offsets: np.ndarray, nbr_index: np.ndarray, nbr_weight: np.ndarray,
                       start: float, end: float) -> float:
    """−log L of the events in [start, end) (earlier events only excite). Events at one
    timestamp do not excite each other."""
    cumulative = cumulative_decay(offsets, times, beta)
    n = len(times)
    entity = np.empty(n, dtype=np.int64)
    for e in range(len(offsets) - 1):
        for j in range(offsets[e], offsets[e + 1]):
            entity[j] = e
    own = decayed_before(offsets, times, cumulative, beta, entity, times)
    near = neighbour_decayed(nbr_offsets, nbr_index, nbr_weight, offsets, times, cumulative, beta, entity, times)
    # outgoing weight of each entity's events onto its neighbours (who they excite)
    out_weight = np.zeros(len(offsets) - 1)
    for i in range(len(offsets) - 1):
        for m in range(nbr_offsets[i], nbr_offsets[i + 1]):
            out_weight[nbr_index[m]] += nbr_weight[m]
    total = 0.0
    for i in range(len(offsets) - 1):
        total += mu[i] * (end - start)
    for j in range(n):
        t = times[j]
        if t >= end:
            continue
        lo = max(t, start)
        mass = np.exp(-beta * (lo - t)) - np.exp(-beta * (end - t))  # kernel mass inside [start, end)
        total += (alpha + gamma * out_weight[entity[j]]) * mass
        if t >= start:
            total -= np.log(mu[entity[j]] + beta * (alpha * own[j] + gamma * near[j]))
    return total


class HawkesRisk(ClassifierMixin, BaseEstimator):
    """The Hawkes model as a risk estimator over the rows of a training table.

    ``history`` holds every incident; ``row_entity`` and ``row_day`` give, for each row of
    the table (by its position, the index of ``X``), the entity and the snapshot in days.
    ``fit`` uses only incidents before the moment every training row's label closed
    (latest training snapshot + horizon) — what is known when the rows are used — and
    ``predict_proba`` at (i, t) only incidents before t."""

    def __init__(self, history: EventHistory | None = None, row_entity: np.ndarray | None = None,
                 row_day: np.ndarray | None = None, horizon_days: int = 30, fit_days: float = 730.0):
        self.history = history
        self.row_entity = row_entity
        self.row_day = row_day
        self.horizon_days = horizon_days
        self.fit_days = fit_days

    def _design(self) -> np.ndarray:
        z = self.history.covariates
        return np.column_stack([np.ones(len(z)), z])

    def fit(self, X: pd.DataFrame, y: np.ndarray | None = None, snapshot: np.ndarray | None = None) -> HawkesRisk:
        rows = X.index.to_numpy()
        end = float(self.row_day[rows].max() + self.horizon_days)
        self.params_ = fit_hawkes(self.history.before(end), self._design(), start=max(end - self.fit_days, 0.0), end=end)
        self.known_until_ = end
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        rows = X.index.to_numpy()
        p = hawkes_probability(self.history, self._design(), self.params_, self.row_entity[rows],
                               self.row_day[rows].astype(np.float64), float(self.horizon_days))
        return np.column_stack([1 - p, p])


def fit_hawkes(history: EventHistory, design: np.ndarray, start: float, end: float) -> dict[str, np.ndarray | float]:
    """Maximum-likelihood θ, α, γ, β over [start, end) (L-BFGS-B on log α, log γ, log β)."""
    d = design.shape[1]
    n_events = max(len(history.times), 1)
    base = np.log(max(n_events / (history.entities * max(end - start, 1.0)), 1e-6))
    x0 = np.concatenate([[base], np.zeros(d - 1), [np.log(0.2), np.log(0.1), np.log(0.05)]])

    def objective(x: np.ndarray) -> float:
        mu = np.exp(np.clip(design @ x[:d], -30, 10))
        alpha, gamma, beta = np.exp(x[d:])
        return float(neg_log_likelihood(mu, alpha, gamma, beta, history.offsets, history.times, history.nbr_offsets,
                                        history.nbr_index, history.nbr_weight, start, end)) / n_events

    bounds = [(None, None)] * d + [(np.log(1e-4), np.log(5.0))] * 2 + [(np.log(1e-3), np.log(5.0))]
    found = minimize(objective, x0, method="L-BFGS-B", bounds=bounds)
    alpha, gamma, beta = np.exp(found.x[d:])
    return {"theta": found.x[:d], "alpha": float(alpha), "gamma": float(gamma), "beta": float(beta),
            "neg_log_likelihood": float(found.fun * n_events)}


def hawkes_probability(history: EventHistory, design: np.ndarray, params: dict, entity: np.ndarray, day: np.ndarray,
                       horizon_days: float) -> np.ndarray:
    """P(at least one incident in [t, t + h)) for each (entity, t), from the incidents before t."""
    beta = params["beta"]
    cumulative = cumulative_decay(history.offsets, history.times, beta)
    entity = entity.astype(np.int64)
    own = decayed_before(history.offsets, history.times, cumulative, beta, entity, day)
    near = neighbour_decayed(history.nbr_offsets, history.nbr_index, history.nbr_weight, history.offsets,
                             history.times, cumulative, beta, entity, day)
    mu = np.exp(design @ params["theta"])[entity]
    expected = mu * horizon_days + (1 - np.exp(-beta * horizon_days)) * (params["alpha"] * own + params["gamma"] * near)
    return 1 - np.exp(-expected)


HAWKES_COLUMN = "hawkes_p_incident"


class LightGBMWithHawkes(ClassifierMixin, BaseEstimator):
    """LightGBM with the Hawkes probability as one more feature (``hawkes_p_incident``).
    The Hawkes model is fitted on the same rows first (on the incidents known when their
    labels closed), then its probability at each row — from incidents before that row's
    snapshot — joins the features."""

    def __init__(self, lightgbm: BaseEstimator, hawkes: HawkesRisk):
        self.lightgbm = lightgbm
        self.hawkes = hawkes

    def _with_hawkes(self, X: pd.DataFrame) -> pd.DataFrame:
        return X.assign(**{HAWKES_COLUMN: self.hawkes_.predict_proba(X)[:, 1]})

    def fit(self, X: pd.DataFrame, y: np.ndarray, snapshot: np.ndarray | None = None) -> LightGBMWithHawkes:
        from sklearn.base import clone

        self.hawkes_ = clone(self.hawkes).fit(X, y, snapshot)
        self.lightgbm_ = clone(self.lightgbm).fit(self._with_hawkes(X), y, snapshot=snapshot)
        self.classes_ = np.array([0, 1])
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self.lightgbm_.predict_proba(self._with_hawkes(X))

    def feature_importance(self) -> pd.Series:
        return self.lightgbm_.feature_importance()

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        return self.lightgbm_.contributions(self._with_hawkes(X))


def for_rows(model: BaseEstimator, history: EventHistory, row_entity: np.ndarray, row_day: np.ndarray) -> BaseEstimator:
    """A copy of a fitted model (plain, calibrated, or with the Hawkes feature) whose Hawkes
    part reads another table's rows; the fitted parameters are kept. Other models are
    returned as they are."""
    import copy

    core = getattr(model, "model_", model)
    if not isinstance(core, (HawkesRisk, LightGBMWithHawkes)):
        return model
    moved = copy.deepcopy(model)
    core = getattr(moved, "model_", moved)
    process = core.hawkes_ if isinstance(core, LightGBMWithHawkes) else core
    process.set_params(history=history, row_entity=row_entity, row_day=row_day)
    return moved
