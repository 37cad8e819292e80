"""The plan job: the champions, the latest snapshot and the catalogue in; ``plan.json`` out."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from fengqiao.errors import ConfigurationError
from fengqiao.interventions import Plan, load_catalogue, plan_paths, read_plan
from fengqiao.publish import write_atomic
from fengqiao.settings import Settings
from models.bundle import ScoringBundle
from models.bundle.cache import load_cached_bundle
from models.prevention import check_budgets, make_plan, read_planning_inputs, scope_county
from pipelines.result import JobResult

SHOWN = 10
"""Actions listed in the job's summary (the file holds them all)."""


def load_champions(settings: Settings) -> dict[str, ScoringBundle]:
    """The bundle of each entity kind the settings serve (FENGQIAO_API_<ENTITY>_MODEL, else the
    registry's champion), from the local copy while it is current (``models.bundle.cache``)."""
    return {e: load_cached_bundle(settings.model_source(e), settings.tracking_uri, settings.bundle_cache_dir)
            for e in settings.api_entities}


def read_plans(paths: Sequence[Path], named: str) -> list[Plan]:
    """The plans in ``paths`` (files or folders of them); a ConfigurationError names the option
    or setting they came from (``named``) and the file."""
    try:
        return [read_plan(path) for path in plan_paths(paths)]
    except ConfigurationError as err:
        raise ConfigurationError(f"{named}: {err}") from None


def plan_job(settings: Settings, budgets: Mapping[str, float], scope: str, out: Path,
             in_force: Sequence[Path] = ()) -> JobResult:
    """Plan for ``scope`` with the settings' default budgets, ``budgets`` replacing them by name,
    from the rows as they are with the running actions of the adopted plans
    (FENGQIAO_PLANS_IN_FORCE) and of the plans ``in_force`` (files or folders of them), and write
    the plan to ``out``. A bad budget, scope or plan in force is a ConfigurationError naming the
    command-line option (and the file)."""
    started = time.perf_counter()
    catalogue = load_catalogue(settings.interventions_config)
    adopted = [settings.plans_in_force] if settings.plans_in_force is not None else []
    plans = read_plans(adopted, "FENGQIAO_PLANS_IN_FORCE") + read_plans(in_force, "--in-force")
    try:
        chosen = check_budgets({**settings.plan_budgets, **budgets}, catalogue)
    except ConfigurationError as err:
        raise ConfigurationError(f"--budget: {err}") from None
    bundles = load_champions(settings)
    inputs = read_planning_inputs(settings.warehouse_dir, bundles)
    try:
        scope_county(scope, inputs.counties())
    except ConfigurationError as err:
        raise ConfigurationError(f"--scope: {err}") from None
    try:
        plan = make_plan(inputs, bundles, catalogue, chosen, scope, effect=settings.plan_effect, in_force=plans)
    except ConfigurationError as err:
        raise ConfigurationError(f"plans in force (FENGQIAO_PLANS_IN_FORCE, then --in-force): {err}") from None
    write_atomic(out, lambda path: path.write_text(json.dumps(plan, ensure_ascii=False, indent=1), encoding="utf-8"))
    return JobResult("plan", time.perf_counter() - started, summary(plan, out))


def summary(plan: dict, out: Path) -> list[str]:
    """The plan in a few lines: totals, budgets used, the first actions."""
    used = ", ".join(f"{b} {plan['budget_used'][b]:g}/{amount:g}" for b, amount in plan["budgets"].items())
    lines = [(f"{len(plan['actions'])} actions for {plan['scope']} at snapshot {plan['snapshot']}: "
             f"{plan['expected_incidents_averted']:.2f} incidents averted expected within {plan['horizon_days']} days "
             f"(optimality gap {plan['solver']['optimality_gap']:.1e})"), f"budgets used: {used}"]
    if plan["in_force"]["plans"]:
        counts = plan["in_force"]
        lines.append(f"plans in force: {counts['plans']}; their actions applied {counts['applied']}, already in the "
                     f"data {counts['recorded']}, not running {counts['not_running']}, on unknown entities "
                     f"{counts['unknown_entity']}")
    if "note" in plan:
        lines.append(plan["note"])
    lines += [f"  {a['kind']:<15} {a['entity']:<8} {a['id']:<12} p {a['probability_before']:.3f} → "
              f"{a['probability_after']:.3f}  averts {a['expected_incidents_averted']:.3f}"
              for a in plan["actions"][:SHOWN]]
    if len(plan["actions"]) > SHOWN:
        lines.append(f"  … and {len(plan['actions']) - SHOWN} more")
    return [*lines, f"written to {out}"]
