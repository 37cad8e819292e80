"""Choosing options under budgets: a multiple-choice knapsack with several budgets, solved as an
integer programme by HiGHS through ``scipy.optimize.milp``.

Variables: one 0/1 per candidate (an option for one entity). Maximise the sum of the chosen
candidates' benefits subject to: each budget's draws at most its amount; at most one candidate
per entity (its *group*). HiGHS stops when the relative gap between the best plan found and its
bound on the best possible is at most ``mip_rel_gap``; the gap it reached is returned, so a
plan says how far from optimal (under the model's what-if) it can be. HiGHS's presolve is
off: on the whole city's programme (20,000 candidates) it took twice as long as the solve and
removed almost nothing (measured: 2.3 s of 3.1 s on a loaded 2-core machine).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.sparse import csr_array, vstack

from fengqiao.errors import FengqiaoError

MIP_REL_GAP = 1e-4
"""Relative optimality gap at which the solver stops (HiGHS's default): 0.01% of the incidents
averted. At 1e-6, one week of the closed loop took 54 s to plan (the others 2–4 s): the pooled
reading gives many near-equal candidates, and proving optimality among them is what costs. The
objective is scaled to a largest benefit of 1: HiGHS's absolute gap (1e-6) and tolerances would
otherwise stop a programme of tiny benefits at the empty plan."""
TIME_LIMIT_S = 10.0
"""The solver returns its best plan after this long, with the gap it reached (``Selection.gap``):
a plan is asked for interactively (``POST /v1/plans``)."""


def undominated(benefit: np.ndarray, cost: np.ndarray) -> np.ndarray:
    """(entities, options) mask of the options worth offering the solver. Option ``o`` of an
    entity is dominated when another of its options ``o'`` costs no more in every budget and
    averts at least as much (on a tie in both, the later option is the dominated one): any plan
    using ``o`` is matched by the same plan using ``o'``, so removing ``o`` never lowers the
    optimum. Trees are piecewise constant, so many larger amounts and combinations predict no
    more than a cheaper option, and the integer programme shrinks several-fold.

    ``benefit`` is (entities, options); ``cost`` (options, budgets) is the same for every entity."""
    benefit, cost = np.asarray(benefit, dtype=float), np.asarray(cost, dtype=float)
    m = cost.shape[0]
    cheaper = np.all(cost[:, None, :] <= cost[None, :, :], axis=2)  # [o', o]: o' costs no more than o
    same_cost = np.all(cost[:, None, :] == cost[None, :, :], axis=2)
    earlier = np.arange(m)[:, None] < np.arange(m)[None, :]
    at_least = benefit[:, :, None] >= benefit[:, None, :]  # [e, o', o]
    more = benefit[:, :, None] > benefit[:, None, :]
    dominates = cheaper & ~np.eye(m, dtype=bool) & (at_least & (~same_cost | earlier) | more)
    return ~np.any(dominates, axis=1)


def most_chosen(cost: np.ndarray, budgets: np.ndarray) -> float:
    """An upper bound on how many candidates any plan within ``budgets`` can hold, given every
    option's ``cost`` (options, budgets): each chosen option draws at least the smallest
    positive cost of some budget, so at most Σ ⌊budget ÷ that smallest cost⌋. Infinite if an
    option costs nothing."""
    cost, budgets = np.asarray(cost, dtype=float), np.asarray(budgets, dtype=float)
    if len(cost) and not np.all(np.any(cost > 0, axis=1)):
        return np.inf
    total = 0.0
    for column, amount in zip(cost.T, budgets):
        paid = column[column > 0]
        if len(paid):
            total += np.floor(amount / paid.min() + 1e-9)
    return total


def within_reach(benefit: np.ndarray, reach: float) -> np.ndarray:
    """(entities, options) mask: each option's ``reach`` best entities (ties to the earlier).
    Exact: if a plan gives option ``o`` to an entity with ``reach`` better ones for ``o`` above
    it, at most ``reach − 1`` of those hold an option (a plan holds at most ``reach``,
    ``most_chosen``), so one is free, and moving ``o`` to it costs the same and averts at least
    as much. At the default budgets (50 actions) this keeps 1,625 of the city's 36,204
    candidates, and the integer programme takes milliseconds instead of seconds."""
    benefit = np.asarray(benefit, dtype=float)
    n = benefit.shape[0]
    if reach >= n:
        return np.ones(benefit.shape, dtype=bool)
    order = np.argsort(-benefit, axis=0, kind="stable")
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(n)[:, None], axis=0)
    return rank < reach


@dataclass(frozen=True)
class Selection:
    """The chosen candidates (indices, ascending), their total benefit, the solver's bound on
    the best total possible and the relative gap between the two (0: proven optimal)."""

    chosen: np.ndarray
    total: float
    bound: float
    gap: float


def choose(benefit: np.ndarray, cost: np.ndarray, group: np.ndarray, budgets: np.ndarray,
           time_limit_s: float = TIME_LIMIT_S) -> Selection:
    """Candidates maximising total ``benefit`` (k,) with ``cost`` (k, budgets) ≤ ``budgets`` in
    every budget and at most one candidate per value of ``group`` (k,). Candidates with no
    benefit or that no budget could pay are never chosen. Deterministic: the same arrays give
    the same selection."""
    budgets = np.asarray(budgets, dtype=float)
    benefit = np.asarray(benefit, dtype=float)
    cost = np.asarray(cost, dtype=float).reshape(len(benefit), len(budgets))
    useful = np.flatnonzero((benefit > 0) & np.all(cost <= budgets + 1e-9, axis=1))
    if len(useful) == 0:
        return Selection(np.array([], dtype=np.int64), 0.0, 0.0, 0.0)
    k = len(useful)
    _, member, size = np.unique(np.asarray(group)[useful], return_inverse=True, return_counts=True)
    shared = np.flatnonzero(size[member] > 1)  # a group of one needs no row: its variable's bound is 1
    rows = np.unique(member[shared], return_inverse=True)[1]
    one_per_group = csr_array((np.ones(len(shared)), (rows, shared)), shape=(int(rows.max(initial=-1)) + 1, k))
    A = vstack([csr_array(cost[useful].T), one_per_group]).tocsr()
    upper = np.concatenate([budgets, np.ones(one_per_group.shape[0])])
    scale = float(benefit[useful].max())
    result = milp(-benefit[useful] / scale, integrality=np.ones(k), bounds=Bounds(0, 1),
                  constraints=LinearConstraint(A, -np.inf, upper),
                  options={"mip_rel_gap": MIP_REL_GAP, "time_limit": time_limit_s, "presolve": False})
    if result.x is None:
        raise FengqiaoError(f"the planner's integer programme found no plan: {result.message}")
    chosen = useful[np.flatnonzero(result.x > 0.5)]
    total = float(benefit[chosen].sum())
    bound = float(-result.mip_dual_bound) * scale if result.mip_dual_bound is not None else total
    gap = float(result.mip_gap) if result.mip_gap is not None else 0.0
    return Selection(chosen, total, max(bound, total), max(gap, 0.0))
