"""Risk levels 红/橙/黄/蓝 (red, orange, yellow, blue) from calibrated probabilities."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def top_k_mask(scores: np.ndarray, groups: np.ndarray, budget: float) -> np.ndarray:
    """True for the ceil(budget × n) highest scores within each group (snapshot); ties at
    the cut are broken by position so that exactly that many rows are alerted."""
    scores = np.asarray(scores, dtype=float)
    groups = np.asarray(groups)
    mask = np.zeros(len(scores), dtype=bool)
    order = np.lexsort((-scores, groups))
    sorted_groups = groups[order]
    starts = np.flatnonzero(np.r_[True, sorted_groups[1:] != sorted_groups[:-1]])
    ends = np.r_[starts[1:], len(order)]
    for start, end in zip(starts, ends):
        k = int(np.ceil(budget * (end - start)))
        mask[order[start:start + k]] = True
    return mask


LEVELS: tuple[str, ...] = ("红", "橙", "黄", "蓝")
LEVEL_NAMES: tuple[str, ...] = ("red", "orange", "yellow", "blue")
"""The levels as the API and the scoring bundle name them, in the order of ``LEVELS``."""
LEVEL_NAMES_EN: dict[str, str] = dict(zip(LEVELS, LEVEL_NAMES))


def levels_by_threshold(p: np.ndarray, thresholds: Sequence[float], names: Sequence[str] = LEVELS) -> np.ndarray:
    """红 where p ≥ thresholds[0], 橙 where p ≥ thresholds[1], 黄 where p ≥ thresholds[2],
    else 蓝. Thresholds are probabilities of an incident within the horizon, descending;
    ``names`` spells the four levels (``LEVEL_NAMES``: red, orange, yellow, blue)."""
    red, orange, yellow = (float(t) for t in thresholds)
    if not 1 >= red >= orange >= yellow >= 0:
        raise ValueError(f"level thresholds must descend within [0, 1] (red ≥ orange ≥ yellow), got {thresholds}")
    p = np.asarray(p, dtype=float)
    below = np.searchsorted(np.array([yellow, orange, red], dtype=float), p, side="right")  # 0 blue … 3 red
    below[np.isnan(p)] = 0
    return np.array(names[3::-1], dtype=object)[below]


def levels_by_budget(p: np.ndarray, snapshots: np.ndarray, budgets: Sequence[float]) -> np.ndarray:
    """Levels by alert budget per snapshot: the top budgets[0] share of entities are 红, the
    top budgets[1] (cumulative) 橙 or higher, the top budgets[2] 黄 or higher, the rest 蓝."""
    red, orange, yellow = (float(b) for b in budgets)
    if not 0 <= red <= orange <= yellow <= 1:
        raise ValueError(f"level budgets must be cumulative shares ascending within [0, 1], got {budgets}")
    out = np.full(len(p), "蓝", dtype=object)
    for level, budget in (("黄", yellow), ("橙", orange), ("红", red)):
        out[top_k_mask(p, snapshots, budget)] = level
    return out
