"""The what-if rows of an action: an entity's feature row as the catalogue says the action changes it.

Pure numpy over rows in a bundle's feature order. A change to a feature the model does not use
is left out (the model cannot see it, so it predicts no effect). Missing values (NaN) stay
missing under ``add``-type changes — the model cannot say what adding to an unknown count
does — while ``set``, ``at_most`` and ``at_least`` establish the value (a patrol makes the days
since the last patrol at most 3.5 even where no patrol was ever recorded).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fengqiao.interventions import FeatureChange

PER_PEOPLE = 10_000.0
"""``add_per_10k_people`` counts per this many residents."""


def change_delta(change: FeatureChange, amount: np.ndarray, weeks: int, population: np.ndarray) -> np.ndarray:
    """What an additive change adds to the feature, per row: ``value × amount`` (``add``),
    ``value × amount / weeks`` (``add_per_week``), ``value × amount × 10,000 / population``
    (``add_per_10k_people``; NaN where the population is unknown or zero)."""
    amount = np.asarray(amount, dtype=np.float64)
    if change.how == "add":
        return change.value * amount
    if change.how == "add_per_week":
        return change.value * amount / weeks
    if change.how == "add_per_10k_people":
        people = np.asarray(population, dtype=np.float64)
        safe = np.where(people > 0, people, np.nan)
        return change.value * amount * PER_PEOPLE / safe
    raise ValueError(f"{change.how} is not an additive change")


def apply_changes(X: np.ndarray, feature_names: Sequence[str], changes: Sequence[FeatureChange],
                  amount: np.ndarray, weeks: int, population: np.ndarray) -> np.ndarray:
    """A copy of rows ``X`` (n, features) with ``changes`` applied, row ``r`` with
    ``amount[r]`` units for ``weeks`` weeks and ``population[r]`` residents (see
    ``FeatureChange`` for each ``how`` and ``per_feature``, read from ``X`` as it was)."""
    out = np.array(X, dtype=np.float64, copy=True)
    position = {name: j for j, name in enumerate(feature_names)}
    for change in changes:
        j = position.get(change.feature)
        if j is None:
            continue
        if change.how == "set":
            out[:, j] = change.value
        elif change.how == "at_most":
            out[:, j] = np.fmin(out[:, j], change.value)
        elif change.how == "at_least":
            out[:, j] = np.fmax(out[:, j], change.value)
        else:
            delta = change_delta(change, amount, weeks, population)
            if change.per_feature is not None:
                k = position.get(change.per_feature)
                size = X[:, k].astype(np.float64) if k is not None else np.full(len(out), np.nan)
                delta = delta / np.where(size > 0, size, np.nan)
            out[:, j] = out[:, j] + delta
    return out


def scales_with_amount(changes: Sequence[FeatureChange]) -> bool:
    """Whether more units change the features more (an additive change): only then is more
    than one amount worth considering."""
    return any(c.how in ("add", "add_per_week", "add_per_10k_people") for c in changes)
