"""The planner: which actions, on which villages and projects, avert the most incidents for the
budgets (see docs/prevention.md).

For every entity in scope and every option (a combination of kinds and amounts, see
``models.prevention.options``) the bundle scores the entity's features as the option changes
them — in large batches (``BATCH_ROWS``). An option's benefit is the drop in expected incidents
over the model's horizon, reading the calibrated probability ``p`` of at least one incident as
a Poisson count with mean ``λ = −log(1 − p)``; the solver picks at most one option per entity
within every budget. Project kinds are valued by the project model alone: the changes they
make to the villages a project touches (``linked_village_features``) are not applied, because
the incidents the project model counts are also the villages' — adding both would count them
twice.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from fengqiao.interventions import Catalogue
from models.bundle import ScoringBundle, explain_rows
from models.prevention.inputs import EntityRows, PlanningInputs, check_budgets, scope_county
from models.prevention.options import Option, entity_options, option_costs, option_rows
from models.prevention.solver import choose, undominated

AMOUNT_STEPS = 3
"""Kinds whose effect grows with the amount are offered at 1, 2 and 3 times their default amount."""
BATCH_ROWS = 32_768
"""Candidate rows scored per batch: memory stays near 32,768 × features × 8 bytes (70 MB at 270
features) whatever the city's size, and a batch is large enough for numba's threads."""
REASONS = 3
"""Top risk reasons shown with each action."""


MAX_PROBABILITY = 0.99
"""Probabilities are read at most this high: a calibration's top bin can reach 1, where the
Poisson reading is infinite, and a what-if from 0.999999 to 0.99 would count as 9 incidents."""


def expected_incidents(p: np.ndarray) -> np.ndarray:
    """Expected incidents over the horizon of a Poisson count with P(at least one) = ``p``
    (``p`` read at most ``MAX_PROBABILITY``: at most 4.6 incidents)."""
    return -np.log1p(-np.clip(np.asarray(p, dtype=float), 0.0, MAX_PROBABILITY))


@dataclass(frozen=True)
class Candidates:
    """Every (entity, option) of one entity kind in scope: ``rows`` index ``inputs.rows``;
    ``after`` and ``averted`` are (entities, options)."""

    rows: EntityRows
    inside: np.ndarray
    options: list[Option]
    cost: np.ndarray
    before: np.ndarray
    after: np.ndarray
    averted: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "averted", expected_incidents(self.before)[:, None] - expected_incidents(self.after))


def score_candidates(rows: EntityRows, bundle: ScoringBundle, catalogue: Catalogue, budgets: Mapping[str, float],
                     county: str | None, amount_steps: int = AMOUNT_STEPS) -> Candidates:
    """The options of every entity of ``rows`` in ``county`` (None: the city), scored in
    batches of about ``BATCH_ROWS`` candidate rows."""
    inside = np.flatnonzero(rows.in_county(county))
    options = entity_options(catalogue, rows.entity, budgets, amount_steps)
    X = rows.X[inside]
    before = bundle.probability(X) if len(inside) else np.zeros(0)
    if not options or not len(inside):
        return Candidates(rows, inside, options, np.zeros((len(options), len(catalogue.budgets()))), before,
                          np.zeros((len(inside), len(options))))
    after = np.empty((len(inside), len(options)))
    step = max(1, BATCH_ROWS // len(options))
    for start in range(0, len(inside), step):
        part = slice(start, start + step)
        changed = option_rows(X[part], bundle.feature_names, catalogue, options, rows.population[inside][part])
        after[part] = bundle.probability(changed).reshape(-1, len(options))
    return Candidates(rows, inside, options, option_costs(catalogue, options, catalogue.budgets()), before, after)


def candidate_arrays(scored: Sequence[Candidates], n_budgets: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The solver's view of every candidate of every entity kind, entity by entity and option
    by option: benefit (expected incidents averted), cost (candidates, budgets) and group (one
    per entity: at most one option each)."""
    benefit = np.concatenate([c.averted.ravel() for c in scored])
    cost = np.concatenate([np.tile(c.cost, (len(c.inside), 1)) for c in scored]).reshape(-1, n_budgets)
    offsets = np.cumsum([0, *(len(c.inside) for c in scored)])
    group = np.concatenate([np.repeat(offsets[k] + np.arange(len(c.inside)), len(c.options))
                            for k, c in enumerate(scored)]).astype(np.int64)
    return benefit, cost, group


def make_plan(inputs: PlanningInputs, bundles: Mapping[str, ScoringBundle], catalogue: Catalogue,
              budgets: Mapping[str, float], scope: str = "city", amount_steps: int = AMOUNT_STEPS) -> dict:
    """The plan (``plan.json``'s content) that maximises the expected incidents averted over
    the models' horizon within ``budgets`` (name → amount; a budget not named is 0) and
    ``scope`` (``city`` or ``county:ID``). Same inputs, same plan."""
    started = time.perf_counter()
    budgets = check_budgets(budgets, catalogue)
    county = scope_county(scope, inputs.counties())
    budget_names = catalogue.budgets()
    scored = [score_candidates(inputs.rows[e], bundles[e], catalogue, budgets, county, amount_steps)
              for e in inputs.rows]
    benefit, cost, group = candidate_arrays(scored, len(budget_names))
    offered = np.concatenate([undominated(c.averted, c.cost).ravel() for c in scored])
    selection = choose(np.where(offered, benefit, 0.0), cost, group,
                       np.array([budgets.get(b, 0.0) for b in budget_names]))
    actions, ends = [], np.cumsum([len(c.inside) * len(c.options) for c in scored])
    for k, c in enumerate(scored):
        start = ends[k] - len(c.inside) * len(c.options)
        mine = selection.chosen[(selection.chosen >= start) & (selection.chosen < ends[k])] - start
        actions += _actions(c, bundles[c.rows.entity], catalogue, mine // max(len(c.options), 1),
                            mine % max(len(c.options), 1))
    actions.sort(key=lambda a: (-a["expected_incidents_averted"], a["entity"], a["id"], a["kind"]))
    used = {b: 0.0 for b in budget_names}
    for action in actions:
        used[action["budget"]] += action["cost"]
    horizon = {int(b.meta["horizon_days"]) for b in bundles.values()}
    plan = {
        "snapshot": inputs.snapshot.isoformat(), "horizon_days": min(horizon), "scope": scope,
        "expected_incidents_averted": selection.total,
        "budgets": {b: budgets.get(b, 0.0) for b in budget_names}, "budget_used": used,
        "model_versions": {e: b.version for e, b in bundles.items()},
        "solver": {"method": "integer programme (HiGHS via scipy.optimize.milp)", "candidates": len(benefit),
                   "offered": int(np.count_nonzero(offered & (benefit > 0))),
                   "optimality_gap": selection.gap, "bound": selection.bound,
                   "seconds": round(time.perf_counter() - started, 3)},
        "actions": actions}
    if not actions:
        plan["note"] = ("no action fits the budgets or is predicted to avert an incident"
                        if benefit.size else "no action can be taken in this scope with these budgets")
    return plan


def _actions(c: Candidates, bundle: ScoringBundle, catalogue: Catalogue, entities: np.ndarray,
             options: np.ndarray) -> list[dict]:
    """The plan's actions for chosen (entity, option) pairs of one kind, with reasons."""
    if not len(entities):
        return []
    X = c.rows.X[c.inside[entities]]
    explained = explain_rows(bundle, X, _county_medians(c.rows, c.inside[entities]), top=REASONS)
    out = []
    for e, o, why in zip(entities.tolist(), options.tolist(), explained):
        i = int(c.inside[e])
        before, after = float(c.before[e]), float(c.after[e, o])
        averted = float(c.averted[e, o])
        option = c.options[o]
        for name, amount in option.actions:
            kind = catalogue.kind(name)
            words = {"amount": amount, "weeks": kind.default_weeks}
            days = int(bundle.meta["horizon_days"])
            out.append({
                "kind": name, "entity": c.rows.entity, "id": str(c.rows.ids[i]), "weeks": kind.default_weeks,
                "amount": amount, "county": c.rows.home_county[i], "budget": kind.budget,
                "cost": amount * kind.unit_cost, "probability_before": before, "probability_after": after,
                "probability_drop": before - after, "expected_incidents_averted": averted,
                "together_with": [n for n, _ in option.actions if n != name],
                "reasons_zh": [*(r.text_zh for r in why.reasons),
                               f"{kind.zh.format(**words)}：{days} 天内发生事件的概率 {before:.1%} → {after:.1%}"],
                "reasons_en": [*(r.text_en for r in why.reasons),
                               (f"{kind.en.format(**words)}: probability of an incident within {days} days "
                               f"{before:.1%} → {after:.1%}")]})
    return out


def _county_medians(rows: EntityRows, which: np.ndarray) -> np.ndarray:
    """Each entity's home-county medians of every feature (NaN without a county): the comparison
    beside a reason's value, as the API shows it."""
    out = np.full((len(which), rows.X.shape[1]), np.nan)
    for county in sorted({c for c in rows.home_county[which] if c is not None}):
        members = rows.home_county == county
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a feature missing in the whole county: NaN
            out[rows.home_county[which] == county] = np.nanmedian(rows.X[members], axis=0)
    return out
