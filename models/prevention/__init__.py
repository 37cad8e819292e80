"""Prevention: the planner that says where to send mediation teams, legal advisers, patrols,
hearings and compensation (see docs/prevention.md). Pure array code over the bundles' what-if;
``read_planning_inputs`` is its I/O edge."""

from models.prevention.inputs import (
    EntityRows,
    PlanningInputs,
    check_budgets,
    parse_budgets,
    read_planning_inputs,
    scope_county,
)
from models.prevention.planner import expected_incidents, make_plan

__all__ = ["EntityRows", "PlanningInputs", "check_budgets", "expected_incidents", "make_plan", "parse_budgets",
           "read_planning_inputs", "scope_county"]
