"""Plans in force: the planner plans from each entity's row as it is with the actions still running.

A city's data records some actions once taken and not others. Patrol rounds are in the patrol
records, so the coverage features already count the hours bought. A mediation team or a legal
adviser sent for some weeks changes no register, so the features do not show it, and a planner
reading them would send a second adviser where one already works. The committee knows what it
sent: given its plans in force, each action of a kind the catalogue marks unrecorded
(``InterventionKind.recorded``) and still running at the planning snapshot is applied to its
entity's row as the what-if applies a planned one, before anything is scored. The plan's
probability before is then the risk with those actions, and an option's effect is what it adds
to them.

An action runs from its plan's snapshot for its weeks. Actions on entities the rows lack (a
project since finished, a village of another data set) are counted and left out.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from fengqiao.errors import ConfigurationError
from fengqiao.interventions import Catalogue, Plan, resolved
from models.bundle import ScoringBundle
from models.prevention.inputs import PlanningInputs
from models.prevention.whatif import apply_changes


@dataclass(frozen=True)
class InForce:
    """What the plans in force came to at the planning snapshot, counted by action (a plan's
    ``in_force``)."""

    plans: int = 0
    applied: int = 0
    recorded: int = 0
    not_running: int = 0
    unknown_entity: int = 0


def running(start: dt.date, weeks: int, snapshot: dt.date) -> bool:
    """Whether an action begun on ``start`` for ``weeks`` weeks is still running on ``snapshot``."""
    return start <= snapshot < start + dt.timedelta(weeks=weeks)


def unresolved(plans: Sequence[Plan], catalogue: Catalogue) -> tuple[int, int, ConfigurationError] | None:
    """The first action of ``plans`` of an unknown kind, or of a kind sent to the wrong entity:
    (plan, action, the error), counted from 0; None when every action resolves."""
    for p, plan in enumerate(plans):
        for a, action in enumerate(plan.actions):
            try:
                resolved(action, catalogue)
            except ConfigurationError as err:
                return p, a, err
    return None


def with_plans_in_force(inputs: PlanningInputs, bundles: Mapping[str, ScoringBundle], plans: Sequence[Plan],
                        catalogue: Catalogue) -> tuple[PlanningInputs, InForce]:
    """``inputs`` with every running unrecorded action of ``plans`` applied to its entity's row
    (features in ``bundles``' order), and the count of what was applied and why the rest was
    not. An action of an unknown kind, or of a kind sent to the wrong entity, is a
    ConfigurationError naming the plan and the action."""
    bad = unresolved(plans, catalogue)
    if bad is not None:
        raise ConfigurationError(f"plan in force {bad[0] + 1}, action {bad[1] + 1}: {bad[2]}")
    if not plans:
        return inputs, InForce()
    rows = {entity: replace(r, X=r.X.copy()) for entity, r in inputs.rows.items()}
    position = {entity: {str(i): k for k, i in enumerate(r.ids)} for entity, r in rows.items()}
    counts = {"applied": 0, "recorded": 0, "not_running": 0, "unknown_entity": 0}
    for plan in plans:
        for action in plan.actions:
            kind, amount, weeks = resolved(action, catalogue)
            k = position.get(action.entity, {}).get(action.id)
            if not running(plan.snapshot, weeks, inputs.snapshot):
                counts["not_running"] += 1
            elif kind.recorded:
                counts["recorded"] += 1
            elif k is None:
                counts["unknown_entity"] += 1
            else:
                entity = rows[action.entity]
                entity.X[k] = apply_changes(entity.X[k:k + 1], bundles[action.entity].feature_names, kind.features,
                                            np.array([amount]), weeks, entity.population[k:k + 1])[0]
                counts["applied"] += 1
    return replace(inputs, rows=rows), InForce(len(plans), **counts)
