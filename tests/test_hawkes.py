"""The Hawkes model: its kernels against obvious sums, and recovery of known parameters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.hawkes import EventHistory, HawkesRisk, cumulative_decay, decayed_before, fit_hawkes, hawkes_probability


def simulate_hawkes(mu: np.ndarray, alpha: float, gamma: float, beta: float, neighbours: list[list[tuple[int, float]]],
                    end: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Events of the process on [0, end) by its branching structure: background events are
    Poisson(μ_i) per day; each event has Poisson(α) children in its own place and
    Poisson(γ w_ik) in each neighbour k that has it as neighbour, each after an Exp(β) delay."""
    excites: list[list[tuple[int, float]]] = [[] for _ in mu]  # k → places i whose intensity k's events raise
    for i, nbrs in enumerate(neighbours):
        for k, w in nbrs:
            excites[k].append((i, w))
    queue = [(i, t) for i in range(len(mu)) for t in rng.uniform(0, end, rng.poisson(mu[i] * end))]
    events = []
    while queue:
        i, t = queue.pop()
        events.append((i, t))
        targets = [(i, alpha)] + [(k, gamma * w) for k, w in excites[i]]
        for k, ratio in targets:
            for delay in rng.exponential(1 / beta, rng.poisson(ratio)):
                if t + delay < end:
                    queue.append((k, t + delay))
    arr = np.array(events)
    return arr[:, 0].astype(np.int64), arr[:, 1]


def ring(n: int) -> list[list[tuple[int, float]]]:
    return [[((i - 1) % n, 0.5), ((i + 1) % n, 0.5)] for i in range(n)]


def test_the_decay_kernels_agree_with_the_naive_sum():
    rng = np.random.default_rng(0)
    entity = rng.integers(0, 5, 200)
    days = np.round(rng.uniform(0, 100, 200))  # whole days: many ties
    history = EventHistory.from_events(entity, days, 5, ring(5), np.zeros((5, 0)))
    cum = cumulative_decay(history.offsets, history.times, 0.1)
    q_entity = rng.integers(0, 5, 50)
    q_day = np.round(rng.uniform(0, 110, 50))
    fast = decayed_before(history.offsets, history.times, cum, 0.1, q_entity, q_day)
    slow = [np.exp(-0.1 * (t - days[(entity == e) & (days < t)])).sum() for e, t in zip(q_entity, q_day)]
    assert fast == pytest.approx(slow, rel=1e-12, abs=1e-12)


def test_the_fit_recovers_known_parameters_of_a_simulated_process():
    """Tolerance: α and γ within ±0.08, β within ±35%, θ within ±0.25 (about three standard
    errors at ~6,000 events)."""
    rng = np.random.default_rng(42)
    n, end = 80, 3000.0
    z = rng.normal(size=(n, 1))
    theta = np.array([np.log(0.01), 0.5])
    mu = np.exp(theta[0] + theta[1] * z[:, 0])
    alpha, gamma, beta = 0.4, 0.25, 0.08
    entity, days = simulate_hawkes(mu, alpha, gamma, beta, ring(n), end, rng)
    history = EventHistory.from_events(entity, days, n, ring(n), z)
    fitted = fit_hawkes(history, np.column_stack([np.ones(n), z]), start=0.0, end=end)
    assert fitted["alpha"] == pytest.approx(alpha, abs=0.08)
    assert fitted["gamma"] == pytest.approx(gamma, abs=0.08)
    assert fitted["beta"] == pytest.approx(beta, rel=0.35)
    assert fitted["theta"] == pytest.approx(theta, abs=0.25)


def test_the_probability_uses_only_events_before_t_and_rises_after_an_incident():
    n = 3
    history = EventHistory.from_events(np.array([0, 0, 1]), np.array([10.0, 50.0, 20.0]), n, ring(n), np.zeros((n, 0)))
    design = np.ones((n, 1))
    params = {"theta": np.array([np.log(0.001)]), "alpha": 0.5, "gamma": 0.2, "beta": 0.1}
    p = hawkes_probability(history, design, params, np.array([0, 0, 0, 2]), np.array([50.0, 50.001, 10.0, 50.0]), 30.0)
    assert p[1] > p[0]  # the incident at day 50 counts from just after 50, not at 50
    assert p[2] == pytest.approx(1 - np.exp(-0.001 * 30))  # nothing before day 10
    later = history.before(30.0)
    assert len(later.times) == 2 and later.offsets.tolist() == [0, 1, 2, 2]


def test_hawkes_risk_fits_only_on_incidents_known_when_its_rows_labels_closed():
    rng = np.random.default_rng(5)
    n = 20
    entity, days = simulate_hawkes(np.full(n, 0.01), 0.3, 0.1, 0.1, ring(n), 1500.0, rng)
    history = EventHistory.from_events(entity, days, n, ring(n), np.zeros((n, 0)))
    weeks = np.arange(400, 1500, 7.0)
    row_entity = np.tile(np.arange(n), len(weeks))
    row_day = np.repeat(weeks, n)
    X = pd.DataFrame(index=np.arange(len(row_day)))
    train = row_day < 1000
    model = HawkesRisk(history, row_entity, row_day, horizon_days=30).fit(X[train])
    assert model.known_until_ == pytest.approx(row_day[train].max() + 30)
    p = model.predict_proba(X[~train])[:, 1]
    assert ((p > 0) & (p < 1)).all()
