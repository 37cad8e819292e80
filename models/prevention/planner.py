"""The planner: which actions, on which villages and projects, avert the most incidents for the
budgets (see docs/prevention.md).

For every entity in scope and every option (a combination of kinds and amounts, see
``models.prevention.options``) the bundle scores the entity's features as the option changes
them — in large batches (``BATCH_ROWS``). An option's benefit is the drop in expected incidents
over the model's horizon, reading the calibrated probability ``p`` of at least one incident as
a Poisson count with mean ``λ = −log(1 − p)``; the solver picks at most one option per entity
within every budget.

How the what-ifs become benefits is the planner's *effect reading* (``EFFECTS``):
- ``entity``: each entity's own what-if, as it is. A tree model's what-if for one entity is a
  step function of the changed feature: where no split lies between the entity's value and the
  changed one it predicts nothing, and where one does it may predict a large drop — and an
  optimiser that picks the largest predicted drops picks that noise too (the optimiser's curse:
  the chosen actions' predicted effects are biased upward).
- ``pooled``: the option's relative effect over every entity it applies to (each of its
  actions changes the entity's features) — one minus the ratio of the expected incidents after
  to before, summed over those entities — applied to each entity's own expected incidents.
  The model still says how much each option works, from the whole city's what-ifs; the
  entity's risk says where it pays (a proportional effect, as rate reductions are usually read).
- ``dose``: pooled as above, but the relative effect may vary with the *dose*, how much the
  option changes each entity's features (the same patrol hours raise the rounds per grid cell
  of a village with few cells more than of one with many; a mediation team adds more mediators
  per 10,000 people to a small village). The log of each entity's what-if ratio (expected
  incidents after ÷ before) is regressed on its feature changes over every entity the option
  applies to, weighted by the expected incidents before, and the fitted ratios are scaled so
  that their city total is the pooled one. Where every entity gets the same dose it is the
  pooled reading; the regression smooths away the trees' steps, as pooling does, but keeps the
  part of the effect that follows the dose.

What the chosen actions leave of a budget — a kind the model sees no effect of, or amounts too
small for any option — goes to the highest-risk entities that kind applies to (``basis``
``risk`` in the plan, against ``model``), so no team or hour sits idle for want of a
measurable prediction.

Project kinds are valued by the project model alone: the changes they
make to the villages a project touches (``linked_village_features``) are not applied, because
the incidents the project model counts are also the villages' — adding both would count them
twice.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import get_args

import numpy as np

from fengqiao.interventions import Catalogue, Plan, PlanEffect
from models.bundle import ScoringBundle, explain_rows
from models.prevention.in_force import with_plans_in_force
from models.prevention.inputs import EntityRows, PlanningInputs, check_budgets, scope_county
from models.prevention.options import Option, entity_options, option_costs, option_rows
from models.prevention.solver import choose, most_chosen, undominated, within_reach

AMOUNT_STEPS = 3
"""Kinds whose effect grows with the amount are offered at 1, 2 and 3 times their default amount."""
BATCH_ROWS = 32_768
"""Candidate rows scored per batch: memory stays near 32,768 × features × 8 bytes (70 MB at 270
features) whatever the city's size, and a batch is large enough for numba's threads."""
REASONS = 3
"""Top risk reasons shown with each action."""
BY_RISK_ZH = "模型未见此措施的可测效果，按风险高低安排"
BY_RISK_EN = "the model sees no measurable effect of this action here; placed by risk rank"
EFFECTS: tuple[str, ...] = get_args(PlanEffect)
"""The effect readings (see above); the first is the default."""


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
    ``what_if`` (the model's probability for the entity as the option changes it), ``moved``
    (whether each of the option's actions changes the entity's features), and ``after`` and ``averted``
    (the probability after and the expected incidents averted under the ``effect`` reading)
    are (entities, options)."""

    rows: EntityRows
    inside: np.ndarray
    options: list[Option]
    cost: np.ndarray
    before: np.ndarray
    what_if: np.ndarray
    moved: np.ndarray
    dose: np.ndarray
    """(entities, options, levers): how much the option changes each feature a kind of the
    catalogue may change (0 where unchanged or unknown), for the ``dose`` reading."""
    effect: str = EFFECTS[0]
    after: np.ndarray = field(init=False)
    averted: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        if self.effect not in EFFECTS:
            raise ValueError(f"unknown effect reading {self.effect!r}: use one of {', '.join(EFFECTS)}")
        before, what_if = expected_incidents(self.before)[:, None], expected_incidents(self.what_if)
        if self.effect == "entity":
            object.__setattr__(self, "after", self.what_if)
            object.__setattr__(self, "averted", before - what_if)
            return
        if self.effect == "dose":
            ratio = np.ones(what_if.shape)
            for o in range(what_if.shape[1]):
                ratio[:, o] = _dose_ratio(before[:, 0], what_if[:, o], self.moved[:, o], self.dose[:, o])
        else:
            total_before = np.where(self.moved, before, 0.0).sum(axis=0)
            total_after = np.where(self.moved, what_if, 0.0).sum(axis=0)
            ratio = np.divide(total_after, total_before, out=np.ones_like(total_before), where=total_before > 0)
        after = np.where(self.moved, before * ratio, before)
        object.__setattr__(self, "after", -np.expm1(-after))
        object.__setattr__(self, "averted", before - after)


def _dose_ratio(before: np.ndarray, what_if: np.ndarray, moved: np.ndarray, dose: np.ndarray) -> np.ndarray:
    """Each entity's ratio of expected incidents after ÷ before one option under the ``dose``
    reading (see the module): log ratio ~ intercept + dose, weighted least squares over the
    entities the option moves, rescaled to the pooled total, at most 1 (the levers' signs)."""
    ratio = np.ones(len(before))
    fit = moved & (before > 0) & (what_if > 0)
    if not fit.any():
        return ratio
    design = np.column_stack([np.ones(len(before)), dose])
    root = np.sqrt(before[fit])
    beta = np.linalg.lstsq(design[fit] * root[:, None], np.log(what_if[fit] / before[fit]) * root, rcond=None)[0]
    fitted = np.exp(design[moved] @ beta)
    scale = what_if[moved].sum() / (before[moved] * fitted).sum()
    ratio[moved] = np.minimum(fitted * scale, 1.0)
    return ratio


def score_candidates(rows: EntityRows, bundle: ScoringBundle, catalogue: Catalogue, budgets: Mapping[str, float],
                     county: str | None, amount_steps: int = AMOUNT_STEPS, effect: str = EFFECTS[0]) -> Candidates:
    """The options of every entity of ``rows`` in ``county`` (None: the city), scored in
    batches of about ``BATCH_ROWS`` candidate rows, their benefits read by ``effect``."""
    inside = np.flatnonzero(rows.in_county(county))
    options = entity_options(catalogue, rows.entity, budgets, amount_steps)
    X = rows.X[inside]
    before = bundle.probability(X) if len(inside) else np.zeros(0)
    changeable = {c.feature for kind in catalogue.kinds.values() if kind.entity == rows.entity for c in kind.features}
    levers = [j for j, name in enumerate(bundle.feature_names) if name in changeable]
    if not options or not len(inside):
        empty = np.zeros((len(inside), len(options)))
        return Candidates(rows, inside, options, np.zeros((len(options), len(catalogue.budgets()))), before,
                          empty, empty.astype(bool), np.zeros((*empty.shape, len(levers))), effect)
    what_if = np.empty((len(inside), len(options)))
    moved = np.empty((len(inside), len(options)), dtype=bool)
    dose = np.empty((len(inside), len(options), len(levers)))
    step = max(1, BATCH_ROWS // len(options))
    for start in range(0, len(inside), step):
        part = slice(start, start + step)
        changed = option_rows(X[part], bundle.feature_names, catalogue, options, rows.population[inside][part])
        what_if[part] = bundle.probability(changed).reshape(-1, len(options))
        moved[part] = _moved_by_every_action(X[part], changed, options)
        change = changed.reshape(-1, len(options), X.shape[1])[:, :, levers] - X[part][:, None, levers]
        dose[part] = np.nan_to_num(change, nan=0.0, posinf=0.0, neginf=0.0)
    return Candidates(rows, inside, options, option_costs(catalogue, options, catalogue.budgets()), before, what_if,
                      moved, dose, effect)


def _moved_by_every_action(X: np.ndarray, changed: np.ndarray, options: Sequence[Option]) -> np.ndarray:
    """(entities, options): whether each of the option's actions, alone, changes the entity's
    features (an adviser where there is none, compensation below the standard), read from the
    what-if rows ``changed`` (``option_rows`` of ``X``), where every single action is an option
    of its own. Where one does not, the option does what a cheaper one does, and pooling it with
    the entities it fully applies to would dilute its effect."""
    changed = changed.reshape(len(X), len(options), X.shape[1])
    moves = ~np.all((changed == X[:, None, :]) | (np.isnan(changed) & np.isnan(X)[:, None, :]), axis=2)
    alone = {option.actions[0]: o for o, option in enumerate(options) if len(option.actions) == 1}
    return np.column_stack([np.logical_and.reduce([moves[:, alone[a]] for a in option.actions]) for option in options])


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
              budgets: Mapping[str, float], scope: str = "city", amount_steps: int = AMOUNT_STEPS,
              effect: str = EFFECTS[0], in_force: Sequence[Plan] = ()) -> dict:
    """The plan (``plan.json``'s content) that maximises the expected incidents averted over
    the models' horizon within ``budgets`` (name → amount; a budget not named is 0) and
    ``scope`` (``city`` or ``county:ID``), the what-ifs read by ``effect`` (``EFFECTS``), from
    the rows as they are with the actions of the plans ``in_force`` still running
    (``models.prevention.in_force``). Same inputs, same plan."""
    started = time.perf_counter()
    budgets = check_budgets(budgets, catalogue)
    inputs, running = with_plans_in_force(inputs, bundles, in_force, catalogue)
    county = scope_county(scope, inputs.counties())
    budget_names = catalogue.budgets()
    scored = [score_candidates(inputs.rows[e], bundles[e], catalogue, budgets, county, amount_steps, effect)
              for e in inputs.rows]
    benefit, cost, group = candidate_arrays(scored, len(budget_names))
    amounts = np.array([budgets.get(b, 0.0) for b in budget_names])
    reach = most_chosen(np.concatenate([c.cost for c in scored]), amounts)
    offered = np.concatenate([(undominated(c.averted, c.cost) & within_reach(c.averted, reach)).ravel()
                              for c in scored])
    selection = choose(np.where(offered, benefit, 0.0), cost, group, amounts)
    ends = np.cumsum([len(c.inside) * len(c.options) for c in scored])
    starts = ends - [len(c.inside) * len(c.options) for c in scored]
    picked = [selection.chosen[(selection.chosen >= start) & (selection.chosen < end)] - start
              for start, end in zip(starts, ends)]
    left = {b: budgets.get(b, 0.0) - float(cost[selection.chosen, j].sum()) for j, b in enumerate(budget_names)}
    actions = []
    for c, mine in zip(scored, picked):
        width = max(len(c.options), 1)
        actions += _actions(c, bundles[c.rows.entity], catalogue, mine // width, mine % width, "model")
        actions += _actions(c, bundles[c.rows.entity], catalogue, *_by_risk(c, catalogue, left, mine // width), "risk")
    actions.sort(key=lambda a: (a["basis"] != "model", -a["expected_incidents_averted"], -a["probability_before"],
                                a["entity"], a["id"], a["kind"]))
    used = {b: 0.0 for b in budget_names}
    for action in actions:
        used[action["budget"]] += action["cost"]
    by_risk = {(a["entity"], a["id"]): a["expected_incidents_averted"] for a in actions if a["basis"] == "risk"}
    horizon = {int(b.meta["horizon_days"]) for b in bundles.values()}
    plan = {
        "snapshot": inputs.snapshot.isoformat(), "horizon_days": min(horizon), "scope": scope,
        "expected_incidents_averted": selection.total + sum(by_risk.values()),
        "budgets": {b: budgets.get(b, 0.0) for b in budget_names}, "budget_used": used,
        "model_versions": {e: b.version for e, b in bundles.items()},
        "effect": effect, "in_force": asdict(running),
        "solver": {"method": "integer programme (HiGHS via scipy.optimize.milp)", "candidates": len(benefit),
                   "offered": int(np.count_nonzero(offered & (benefit > 0))),
                   "optimality_gap": selection.gap, "bound": selection.bound,
                   "seconds": round(time.perf_counter() - started, 3)},
        "actions": actions}
    if not actions:
        plan["note"] = ("no action fits the budgets or is predicted to avert an incident"
                        if benefit.size else "no action can be taken in this scope with these budgets")
    return plan


def _by_risk(c: Candidates, catalogue: Catalogue, left: dict[str, float], taken: np.ndarray
             ) -> tuple[np.ndarray, np.ndarray]:
    """(entities, options) that spend what the model-valued actions left of each budget
    (``left``, reduced here): each kind's default action, in catalogue order, to the
    highest-risk entities of ``c`` it applies to that the plan has not ``taken``. Where the
    model sees no effect of a kind (or none left to buy), its teams and hours would otherwise
    sit idle; the committee's own rule — highest risk first — places them, and the plan says so."""
    free = np.ones(len(c.inside), dtype=bool)
    free[taken] = False
    entities, options = [np.zeros(0, dtype=np.int64)], [np.zeros(0, dtype=np.int64)]
    for name, kind in catalogue.kinds.items():
        single = ((name, kind.default_amount),)
        o = next((k for k, option in enumerate(c.options) if option.actions == single), None)
        unit = kind.default_amount * kind.unit_cost
        if o is None or unit <= 0 or left.get(kind.budget, 0.0) < unit - 1e-9:
            continue
        who = np.flatnonzero(free & c.moved[:, o])
        who = who[np.lexsort((c.rows.ids[c.inside[who]].astype(str), -c.before[who]))]
        who = who[: int((left[kind.budget] + 1e-9) // unit)]
        free[who] = False
        left[kind.budget] -= len(who) * unit
        entities.append(who)
        options.append(np.full(len(who), o, dtype=np.int64))
    return np.concatenate(entities), np.concatenate(options)


def _actions(c: Candidates, bundle: ScoringBundle, catalogue: Catalogue, entities: np.ndarray,
             options: np.ndarray, basis: str) -> list[dict]:
    """The plan's actions for chosen (entity, option) pairs of one kind, with reasons; ``basis``
    says what chose them: the model's predicted effect (``model``) or the risk rank (``risk``)."""
    if not len(entities):
        return []
    X = c.rows.X[c.inside[entities]]
    explained = explain_rows(bundle, X, _county_medians(c.rows, c.inside[entities]), top=REASONS)
    out = []
    for e, o, why in zip(entities.tolist(), options.tolist(), explained):
        i = int(c.inside[e])
        before, after, what_if = float(c.before[e]), float(c.after[e, o]), float(c.what_if[e, o])
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
                "probability_what_if": what_if, "basis": basis,
                "together_with": [n for n, _ in option.actions if n != name],
                "reasons_zh": [*(r.text_zh for r in why.reasons),
                               f"{kind.zh.format(**words)}：{days} 天内发生事件的概率 {before:.1%} → {after:.1%}",
                               *([BY_RISK_ZH] if basis == "risk" else [])],
                "reasons_en": [*(r.text_en for r in why.reasons),
                               (f"{kind.en.format(**words)}: probability of an incident within {days} days "
                               f"{before:.1%} → {after:.1%}"), *([BY_RISK_EN] if basis == "risk" else [])]})
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
