"""What the planner may do to one entity: an *option* is a set of actions, at most one of each
kind, each at one amount.

Options are whole combinations (a mediation team AND a legal adviser on one village is one
option, scored by one what-if of both changes together), so interactions between kinds on the
same entity are exact, and an entity gets at most one option. Kinds whose changes scale with
the amount (mediation teams, patrol hours) are offered at 1, 2, … ``amount_steps`` times their
default amount as mutually exclusive alternatives, so diminishing returns are what the model
predicts for the larger amount, not a sum of blocks.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from fengqiao.interventions import Catalogue
from models.prevention.whatif import apply_changes, scales_with_amount


@dataclass(frozen=True)
class Option:
    """Actions ``(kind, amount)`` taken together on one entity, in catalogue order."""

    actions: tuple[tuple[str, float], ...]


def entity_options(catalogue: Catalogue, entity: str, budgets: Mapping[str, float], amount_steps: int) -> list[Option]:
    """Every option for an entity of kind ``entity`` whose actions draw on budgets with money
    left (> 0), in a fixed order (catalogue order of kinds, amounts ascending)."""
    levels = []
    for name, kind in catalogue.kinds.items():
        if kind.entity != entity or budgets.get(kind.budget, 0.0) <= 0:
            continue
        steps = range(1, amount_steps + 1) if scales_with_amount(kind.features) else range(1, 2)
        levels.append([None, *((name, kind.default_amount * k) for k in steps)])
    return [Option(tuple(a for a in combo if a is not None)) for combo in itertools.product(*levels)
            if any(a is not None for a in combo)]


def option_costs(catalogue: Catalogue, options: Sequence[Option], budget_names: Sequence[str]) -> np.ndarray:
    """(options, budgets): what each option draws from each budget (amount × unit cost)."""
    column = {b: k for k, b in enumerate(budget_names)}
    out = np.zeros((len(options), len(budget_names)))
    for o, option in enumerate(options):
        for name, amount in option.actions:
            kind = catalogue.kind(name)
            out[o, column[kind.budget]] += amount * kind.unit_cost
    return out


def option_rows(X: np.ndarray, feature_names: Sequence[str], catalogue: Catalogue, options: Sequence[Option],
                population: np.ndarray) -> np.ndarray:
    """(entities × options, features): row ``i × len(options) + o`` is entity ``i``'s features
    with option ``o``'s actions applied (each kind for its default weeks)."""
    n, m = len(X), len(options)
    out = np.empty((n, m, X.shape[1]))
    for o, option in enumerate(options):
        rows = X
        for name, amount in option.actions:
            kind = catalogue.kind(name)
            rows = apply_changes(rows, feature_names, kind.features, np.full(n, amount), kind.default_weeks, population)
        out[:, o] = rows
    return out.reshape(n * m, X.shape[1])
