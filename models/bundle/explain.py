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


def _group_steps(bundle: ScoringBundle, bias: float, order: list[str], log_odds: dict[str, float],
                 base: float, probability: float) -> list[float]:
    """The telescoping probability steps of the groups in ``order`` (see the module)."""
    cumulative = bias + np.cumsum([log_odds[g] for g in order])
    levels = bundle.probability_from_raw(cumulative)
    steps = np.diff(np.concatenate([[base], levels]))
    if len(steps):
        steps[-1] = probability - base - steps[:-1].sum()  # the last step absorbs the rounding of the others
    return steps.tolist()


def explain_rows(bundle: ScoringBundle, X: np.ndarray, reference: np.ndarray, top: int = 3,
                 contributions: np.ndarray | None = None) -> list[Explanation]:
    """One ``Explanation`` per row of ``X``; ``reference`` holds each row's county medians
    (NaN where unknown). ``reasons`` are the ``top`` features with the largest positive
    contributions. ``contributions``: the rows' ``bundle.contributions``, when the caller
    needs them too and has them already (TreeSHAP is most of an explanation's time)."""
    X = np.asarray(X, dtype=float).reshape(-1, len(bundle.feature_names))
    reference = np.asarray(reference, dtype=float).reshape(X.shape)
    contrib = bundle.contributions(X) if contributions is None else contributions
    raw = contrib.sum(axis=1)
    probability = bundle.probability_from_raw(raw)
    levels = bundle.levels(probability)
    bias = float(contrib[0, -1]) if len(X) else bundle.bias
    base = float(bundle.probability_from_raw(np.array([bias]))[0])
    group_names, member = bundle.group_names, bundle.group_members
    titles = bundle.meta["groups"]
    out = []
    for i in range(len(X)):
        log_odds = dict(zip(group_names, (member @ contrib[i, :-1]).tolist()))
        order = sorted(group_names, key=lambda g: -abs(log_odds[g]))
        steps = _group_steps(bundle, bias, order, log_odds, base, float(probability[i]))
        groups = [GroupContribution(g, titles[g]["zh"], titles[g]["en"], log_odds[g], step)
                  for g, step in zip(order, steps)]
        raising = [f for f in np.argsort(-contrib[i, :-1], kind="stable")[:top] if contrib[i, f] > 0]
        without = bundle.probability_from_raw(raw[i] - contrib[i, raising])  # the score without each reason
        reasons = []
        for f, p_without in zip(raising, without):
            zh, en = reason_texts(bundle, int(f), float(X[i, f]), float(reference[i, f]))
            reasons.append(Reason(bundle.feature_names[f], bundle.feature_groups[f], float(X[i, f]),
                                  float(reference[i, f]), float(contrib[i, f]),
                                  float(probability[i] - p_without), zh, en))
        out.append(Explanation(float(raw[i]), float(probability[i]), str(levels[i]), base, groups, reasons))
    return out
