"""``POST /v1/plans``: the planner over the live models and the rows they score.

The planning inputs are built from the live state — the latest snapshot's feature rows the
service already holds, each entity's counties by the API's scope rule, and the villages'
population from the warehouse's ``regions`` — once per live state, so a plan always matches the
scores the other routes show. Plans are kept per live state, scope, budgets and plans in force:
asking again (the dashboard does on every load) costs nothing until a reload. Plans in force
(``in_force``: earlier plans whose actions are running) are applied to the rows of each request
(``models.prevention.in_force``), after the adopted plans the settings name
(FENGQIAO_PLANS_IN_FORCE: read again when their files change); an action of an unknown kind in a
request is a 422 naming it.

Scope: a county token plans within its county only (its default scope); another county or the
city is the routes' one 403 answer, as is a county the data does not know.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from features.warehouse import read_table
from fengqiao.errors import ConfigurationError
from fengqiao.interventions import Catalogue, Plan, plan_paths, read_plan
from models.prevention import EntityRows, PlanningInputs, make_plan
from models.prevention.in_force import unresolved
from serving import schemas
from serving.errors import NOT_VISIBLE, ApiError
from serving.scored import ScoredEntities
from serving.service import RiskService
from serving.tokens import Principal

log = logging.getLogger("fengqiao.api")
PLANS_IN_FORCE_UNREADABLE = ApiError(
    503, "plans_in_force_unreadable", "The adopted plans (FENGQIAO_PLANS_IN_FORCE) cannot be read; the operators' log "
    "names the file and field. Plans resume once it is mended or removed.")


def planning_inputs(live: Mapping[str, ScoredEntities], population: Mapping[str, float]) -> PlanningInputs:
    """The latest snapshot's rows of each live entity kind, ids ascending (``places.ids`` are)."""
    rows = {}
    for entity, scored in live.items():
        present = np.flatnonzero(scored.present[scored.latest])
        ids = scored.places.ids[present]
        people = (np.array([population.get(v, np.nan) for v in ids], dtype=float) if entity == "village"
                  else np.full(len(ids), np.nan))
        rows[entity] = EntityRows(entity, ids, scored.features[scored.latest, present],
                                  tuple(scored.places.counties[i] for i in present),
                                  scored.places.county_id[present], people)
    return PlanningInputs(max(s.snapshots[-1] for s in live.values()), rows)


class Planner:
    """Plans for principals over the service's live state (see the module docstring)."""

    def __init__(self, service: RiskService, catalogue: Catalogue, default_budgets: Mapping[str, float],
                 effect: str, adopted: Path | None = None) -> None:
        self.service = service
        self.catalogue = catalogue
        self.default_budgets = dict(default_budgets)
        self.effect = effect
        self.adopted = adopted
        self._lock = threading.Lock()
        self._state: tuple[Mapping[str, ScoredEntities], PlanningInputs] | None = None
        self._plans: dict[tuple, schemas.PlanResult] = {}
        self._adopted: tuple[tuple, list[Plan]] = ((), [])

    def _adopted_plans(self) -> tuple[tuple, list[Plan]]:
        """The adopted plans (FENGQIAO_PLANS_IN_FORCE) and a key that changes when their files
        do, read again only then. One that cannot be read is a 503 that tells the operators to
        look at the log, where the file and field are named; plans resume once it is mended."""
        if self.adopted is None:
            return (), []
        try:
            files = plan_paths([self.adopted])
            key = tuple((str(f), (s := f.stat()).st_mtime_ns, s.st_size) for f in files)
            with self._lock:
                if self._adopted[0] == key:
                    return self._adopted
            plans = [read_plan(f) for f in files]
            bad = unresolved(plans, self.catalogue)
            if bad is not None:
                raise ConfigurationError(f"{files[bad[0]]}: action {bad[1] + 1}: {bad[2]}")
        except (ConfigurationError, OSError) as err:
            log.warning("adopted plans unreadable", extra={"reason": str(err)})
            raise PLANS_IN_FORCE_UNREADABLE from None
        with self._lock:
            self._adopted = (key, plans)
        return key, plans

    def _inputs(self, live: Mapping[str, ScoredEntities]) -> PlanningInputs:
        with self._lock:
            if self._state is None or self._state[0] is not live:
                regions = read_table(self.service.warehouse, "regions")
                population = ({} if regions is None or "population" not in regions.columns else
                              dict(zip(regions["village_id"].astype("str"), regions["population"].astype(float))))
                self._state = (live, planning_inputs(live, population))
                self._plans = {}
            return self._state[1]

    def plan(self, principal: Principal, request: schemas.PlanRequest) -> schemas.PlanResult:
        """The plan for ``request`` as ``principal`` may ask it."""
        own = f"county:{principal.county}" if principal.county is not None else "city"
        scope = request.scope or own
        if principal.county is not None and scope != own:
            raise NOT_VISIBLE
        for name in request.budgets:
            if name not in self.catalogue.budgets():
                raise ApiError(422, "unknown_budget", f"Not a budget of the intervention kinds; known: "
                               f"{', '.join(self.catalogue.budgets())}.", f"body.budgets.{name}")
        bad = unresolved(request.in_force, self.catalogue)
        if bad is not None:
            raise ApiError(422, "invalid_request", f"{bad[2]}.", f"body.in_force.{bad[0]}.actions.{bad[1]}.kind")
        budgets = {**self.default_budgets, **request.budgets}
        live = self.service.live
        inputs = self._inputs(live)
        if scope != "city" and scope.removeprefix("county:") not in inputs.counties():
            raise NOT_VISIBLE
        adopted_key, adopted = self._adopted_plans()
        key = (scope, tuple(sorted(budgets.items())), tuple(p.model_dump_json() for p in request.in_force), adopted_key)
        with self._lock:
            kept = self._plans.get(key) if self._state is not None and self._state[0] is live else None
        if kept is not None:
            return kept
        try:
            plan = make_plan(inputs, {e: s.bundle for e, s in live.items()}, self.catalogue, budgets, scope,
                             effect=self.effect, in_force=[*adopted, *request.in_force])
        except ConfigurationError as err:
            raise ApiError(422, "invalid_request", str(err), "body") from None
        result = schemas.PlanResult.model_validate(plan)
        with self._lock:
            if self._state is not None and self._state[0] is live:
                self._plans[key] = result
        return result
