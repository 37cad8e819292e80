"""Explanations for people: a score as factor groups and top reasons that add up.

Contributions are exact TreeSHAP values in log-odds. A reader sees probabilities, so each
group's log-odds is also shown as the probability change it causes, allocated so that the
changes add up to the score: the groups are taken in the order shown (largest |log-odds|
first) and each is given the step in calibrated probability that adding its log-odds to the
running total makes, starting from the bias. The steps telescope, so
``base_probability + Σ changes == probability`` (to rounding). A reason's probability change is
what its feature alone adds: P(raw score) − P(raw score − its contribution).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit

from features.engine.registry import format_feature_value
from models.bundle.scoring import ScoringBundle


@dataclass(frozen=True)
class GroupContribution:
    """One factor group's share of a score."""

    group: str
    title_zh: str
    title_en: str
    log_odds: float
    probability_change: float


@dataclass(frozen=True)
class Reason:
    """A feature that raises the risk, with the place's value and its county's median."""

    feature: str
    group: str
    value: float
    county_median: float
    log_odds: float
    probability_change: float
    text_zh: str
    text_en: str


@dataclass(frozen=True)
class Explanation:
    """Why one row scores what it does."""

    raw_score: float
    probability: float
    level: str
    base_probability: float
    groups: list[GroupContribution]
    reasons: list[Reason]


def reason_texts(bundle: ScoringBundle, feature: int, value: float, median: float) -> tuple[str, str]:
    """The zh and en reason of a feature with its value and the county median filled in."""
    name = bundle.feature_names[feature]
    template = bundle.meta["reason_templates"][name]
    unit = bundle.meta["features"][feature]["unit"]
    shown, county = format_feature_value(value, unit), format_feature_value(median, unit)
    return (f"{template['zh'].format(value=shown)}(县中位数 {county})",
            f"{template['en'].format(value=shown)} (county median {county})")


@njit(cache=True)
def _ranked(contrib: np.ndarray, raw: np.ndarray, group_of: np.ndarray, n_groups: int, bias: float,
            top: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per row of ``contrib`` (n, features + 1): its groups' log-odds (n, groups), their order
    as shown (largest |log-odds| first, ties by group index), the running log-odds from the
    bias in that order, the ``top`` features that raise the score most (ties by index) and the
    raw score without each of them. One compiled pass: a request's row spent more time in
    the dozen NumPy calls this replaces than in Python's own work."""
    n, features = contrib.shape[0], contrib.shape[1] - 1
    group_log_odds = np.zeros((n, n_groups))
    order = np.empty((n, n_groups), np.int64)
    running = np.empty((n, n_groups))
    raising = np.empty((n, top), np.int64)
    without = np.empty((n, top))
    for i in range(n):
        for f in range(features):
            group_log_odds[i, group_of[f]] += contrib[i, f]
        order[i] = np.argsort(-np.abs(group_log_odds[i]), kind="mergesort")
        total = bias
        for j in range(n_groups):
            total += group_log_odds[i, order[i, j]]
            running[i, j] = total
        raising[i] = np.argsort(-contrib[i, :features], kind="mergesort")[:top]
        for j in range(top):
            without[i, j] = raw[i] - contrib[i, raising[i, j]]
    return group_log_odds, order, running, raising, without


@njit(cache=True)
def _group_steps(base: float, levels: np.ndarray, probability: np.ndarray) -> np.ndarray:
    """The telescoping probability steps (n, groups) of the groups in the order shown, from the
    probabilities ``levels`` (n, groups) at each running total (see the module); the last step
    absorbs the rounding of the others."""
    n, groups = levels.shape
    steps = np.empty_like(levels)
    for i in range(n):
        previous = base
        for j in range(groups):
            steps[i, j] = levels[i, j] - previous
            previous = levels[i, j]
        if groups:
            steps[i, groups - 1] = probability[i] - base - steps[i, :groups - 1].sum()
    return steps


def explain_rows(bundle: ScoringBundle, X: np.ndarray, reference: np.ndarray, top: int = 3,
                 contributions: np.ndarray | None = None) -> list[Explanation]:
    """One ``Explanation`` per row of ``X``; ``reference`` holds each row's county medians
    (NaN where unknown). ``reasons`` are the ``top`` features with the largest positive
    contributions. ``contributions``: the rows' ``bundle.contributions``, when the caller
    needs them too and has them already (TreeSHAP is most of an explanation's time). Every
    probability the rows need is calibrated in one call (a batch of 3,000 village rows: 0.4 s
    instead of 1.2 s when each row was calibrated on its own)."""
    X = np.asarray(X, dtype=float).reshape(-1, len(bundle.feature_names))
    reference = np.asarray(reference, dtype=float).reshape(X.shape)
    contrib = bundle.contributions(X) if contributions is None else contributions
    n, features = contrib[:, :-1].shape
    bias = float(contrib[0, -1]) if n else bundle.bias
    raw = contrib.sum(axis=1)
    group_log_odds, order, running, raising, without = _ranked(
        contrib, raw, bundle.group_index, len(bundle.group_names), bias, min(top, features))
    p = bundle.probability_from_raw(np.concatenate([[bias], raw, running.ravel(), without.ravel()]))
    base, probability = float(p[0]), p[1:n + 1]
    steps = _group_steps(base, p[n + 1:n + 1 + running.size].reshape(running.shape), probability)
    p_without = p[n + 1 + running.size:].reshape(without.shape)
    levels = bundle.levels(probability)
    group_names, titles = bundle.group_names, bundle.meta["groups"]
    out = []
    for i in range(n):
        groups = [GroupContribution(group_names[g], titles[group_names[g]]["zh"], titles[group_names[g]]["en"],
                                    float(group_log_odds[i, g]), float(step))
                  for g, step in zip(order[i], steps[i])]
        reasons = []
        for f, p_f in zip(raising[i], p_without[i]):
            if contrib[i, f] <= 0:
                break
            zh, en = reason_texts(bundle, int(f), float(X[i, f]), float(reference[i, f]))
            reasons.append(Reason(bundle.feature_names[f], bundle.feature_groups[f], float(X[i, f]),
                                  float(reference[i, f]), float(contrib[i, f]), float(probability[i] - p_f), zh, en))
        out.append(Explanation(float(raw[i]), float(probability[i]), str(levels[i]), base, groups, reasons))
    return out
