"""Prevention: the same budgets allocated four ways, and what each truly averts in the simulator.

On the default world, at several Mondays near its end, the budgets (the settings' defaults:
20 mediation teams, 10 legal advisers, 500 patrol hours, 5 hearings, 3 compensation raises)
are allocated by
- the planner (``models.prevention.make_plan``: the scorer's what-if, an integer programme),
  with each of its effect readings: ``planner`` (dose, the default), ``planner_pooled`` (one
  city-wide effect per option) and ``planner_entity`` (each entity's own what-if);
- top-risk-first: each kind's default action to the entities with the highest predicted
  probability (among those it can change: an adviser where there is none, a hearing where none
  was held, compensation where it is below the standard);
- population share: each kind's actions split among counties by population, within a county
  to its most populous villages (projects: the most households affected);
- at random among the eligible entities;
- and, as a ceiling rather than a policy, each kind's default action to the eligible entities
  where the simulator says it averts most: per kind, the action sent to every eligible entity,
  run forward, read entity by entity (other random numbers than the evaluation's). No one could
  run it — it reads the world's true response — but it bounds what knowing each place's
  effect is worth against top-risk-first (per kind: neither the overlap of kinds on one place
  nor what an action does to the neighbours is in its reading).
The models are trained only on rows whose labels closed before the first evaluated Monday
(no look-ahead). Each plan is run forward in the simulator against the same world without it,
200 replications with common random numbers (``pipelines.simulate.evaluate``); every policy at a
snapshot shares the seed, so differences between policies are paired replication by
replication. Also reported: what each planner reading predicted against what the simulator says
each kind of action truly averted.

    python experiments/prevention.py [--data var/prevention] [--snapshots 8] [--replications 200] [--model NAME]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
from results_table import publish
from scipy import stats

from fengqiao.interventions import Catalogue, Plan, load_catalogue
from fengqiao.settings import Settings
from models.bundle import load_bundle
from models.bundle.export import BundleFacts, export_model
from models.catalogue import build_model
from models.data import load_training_table
from models.prevention import make_plan, read_planning_inputs
from models.timesplit import as_datetime64, label_closed_before
from pipelines.jobs import features_job, ingest_job, simulate_job
from pipelines.simulate.config import SimulationConfig
from pipelines.simulate.evaluate import evaluate_plan, load_world

PLANNERS = {"planner": "dose", "planner_pooled": "pooled", "planner_entity": "entity"}
"""The planner's policies: name → effect reading."""
POLICIES = (*PLANNERS, "ceiling", "top_risk", "population", "random")
SEED = 20261129
CEILING_REPLICATIONS = 50
"""Replications of the evaluations that read each entity's true effect for the ceiling (on
other random numbers than the policies' evaluation, so that its choice does not fit their noise)."""


def prepared(data: Path) -> Settings:
    """A data root holding the default world, ingested, with its feature tables."""
    settings = Settings(data_root=data, pseudonym_key="prevention-experiment-key-0123456789")
    if not (settings.raw_dir / "world.json").exists():
        simulate_job(SimulationConfig(), settings.raw_dir)
    if not (settings.warehouse_dir / "regions.parquet").exists():
        ingest_job(settings, str(settings.raw_dir))
    if not (settings.warehouse_dir / "features_village.parquet").exists():
        features_job(settings)
    return settings


def evaluation_mondays(settings: Settings, count: int, every_weeks: int) -> list[pd.Timestamp]:
    """The last ``count`` labelled Mondays, ``every_weeks`` apart (the latest whose horizon the world covers last)."""
    table = load_training_table(settings.warehouse_dir, "village", settings.horizon_days)
    mondays = pd.DatetimeIndex(pd.unique(pd.Series(table.snapshots))).sort_values()  # in the city's zone
    return list(mondays[::-1][: count * every_weeks : every_weeks][::-1])


def trained_bundles(settings: Settings, model_name: str, before: pd.Timestamp, folder: Path) -> dict:
    """Model ``model_name`` of each entity, fitted on rows whose label closed before ``before``, as bundles."""
    bundles = {}
    for entity in ("village", "project"):
        table = load_training_table(settings.warehouse_dir, entity, settings.horizon_days)
        snaps = as_datetime64(table.snapshots)
        rows = label_closed_before(snaps, np.datetime64(before.to_datetime64()), settings.horizon_days)
        model = build_model(model_name, entity, table.features, settings.horizon_days, hawkes=table.hawkes)
        model.fit(table.X[rows], table.y[rows], snapshot=snaps[rows])
        facts = BundleFacts(entity, settings.horizon_days, settings.level_thresholds)
        bundles[entity] = load_bundle(export_model(model, folder / entity, facts))
    return bundles


def _column(rows, bundle, name: str) -> np.ndarray:
    names = list(bundle.feature_names)
    return rows.X[:, names.index(name)] if name in names else np.full(len(rows.ids), np.nan)


def eligible(catalogue: Catalogue, kind: str, rows, bundle) -> np.ndarray:
    """Entities a rule-of-thumb action of ``kind`` can change at all (same rule for every baseline)."""
    lever = catalogue.kind(kind).lever
    if lever == "legal_adviser":
        return _column(rows, bundle, "legal_adviser") < 0.5
    if lever == "hearing":
        return _column(rows, bundle, "hearing_held") < 0.5
    if lever == "compensation":
        return _column(rows, bundle, "compensation_gap") > 0
    return np.ones(len(rows.ids), dtype=bool)


def _apportion(total: int, weights: np.ndarray) -> np.ndarray:
    """``total`` split in proportion to ``weights`` by largest remainders."""
    share = total * weights / weights.sum()
    out = np.floor(share).astype(int)
    out[np.argsort(-(share - out), kind="stable")[: total - out.sum()]] += 1
    return out


def rule_plan(policy: str, inputs, bundles: dict, catalogue: Catalogue, budgets: dict, rng: np.random.Generator,
              snapshot: pd.Timestamp, horizon: int, regions: pd.DataFrame, projects: pd.DataFrame,
              world=None, seed: int = 0) -> dict:
    """The plan of a baseline policy, or of the ceiling (which reads ``world`` with ``seed``):
    each kind's default action, as many as its budget pays for (``regions`` and ``projects``
    indexed by their ids)."""
    actions = []
    for name, kind in catalogue.kinds.items():
        rows, bundle = inputs.rows[kind.entity], bundles[kind.entity]
        n = int(budgets.get(kind.budget, 0) // (kind.default_amount * kind.unit_cost))
        ok = np.flatnonzero(eligible(catalogue, name, rows, bundle))
        if policy == "top_risk":
            p = bundle.probability(rows.X[ok])
            chosen = ok[np.lexsort((rows.ids[ok], -p))][:n]
        elif policy == "ceiling":
            effect = true_effects(world, catalogue, name, kind.entity, rows.ids[ok], snapshot, horizon, seed)
            chosen = ok[np.lexsort((rows.ids[ok], -effect))][:n]
        elif policy == "random":
            chosen = rng.permutation(ok)[:n]
        elif kind.entity == "village":
            population = regions["population"].reindex(rows.ids[ok]).to_numpy(float)
            county = rows.home_county[ok]
            counties = np.unique(county)
            quota = _apportion(min(n, len(ok)), np.array([population[county == c].sum() for c in counties]))
            chosen = np.concatenate([ok[county == c][np.argsort(-population[county == c], kind="stable")][:q]
                                     for c, q in zip(counties, quota)])
        else:
            households = projects["affected_households"].reindex(rows.ids[ok]).to_numpy(float)
            chosen = ok[np.argsort(-households, kind="stable")][:n]
        actions += [{"kind": name, "entity": kind.entity, "id": str(rows.ids[i])} for i in chosen]
    return {"snapshot": snapshot.date().isoformat(), "horizon_days": horizon, "actions": actions}


def true_effects(world, catalogue: Catalogue, kind: str, entity: str, ids: np.ndarray, snapshot: pd.Timestamp,
                 horizon: int, seed: int) -> np.ndarray:
    """What ``kind``'s default action truly averts at each of ``ids``, sent to all of them at
    once and run forward in the simulator (the ceiling's reading, see the module)."""
    everywhere = Plan.model_validate({"snapshot": snapshot.date().isoformat(), "horizon_days": horizon, "actions": [
        {"kind": kind, "entity": entity, "id": str(i)} for i in ids]})
    return evaluate_plan(world, everywhere, catalogue, CEILING_REPLICATIONS, seed=seed).by_action["averted"].to_numpy()


def predicted_by_kind(plan: dict) -> dict[str, float]:
    """The planner's own expected incidents averted, by kind of action."""
    out: dict[str, float] = {}
    for a in plan["actions"]:
        out[a["kind"]] = out.get(a["kind"], 0.0) + a["expected_incidents_averted"]
    return out


def markdown(frame: pd.DataFrame) -> list[str]:
    """A small frame as markdown table lines (index first)."""
    header = [frame.index.name or "", *map(str, frame.columns)]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join([str(i), *(f"{v:g}" if isinstance(v, float) else str(v) for v in row)]) + " |"
                    for i, row in zip(frame.index, frame.itertuples(index=False))]


def interval(values: np.ndarray) -> tuple[float, float, float]:
    """Mean and 95% Student-t interval over replications."""
    mean = float(values.mean())
    half = float(stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values)))
    return mean, mean - half, mean + half


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("var/prevention"))
    parser.add_argument("--snapshots", type=int, default=8)
    parser.add_argument("--every-weeks", type=int, default=2)
    parser.add_argument("--replications", type=int, default=200)
    parser.add_argument("--model", default=None, help="the model the planner reads (default: FENGQIAO_MODEL's)")
    args = parser.parse_args()
    started = time.perf_counter()
    settings = prepared(args.data)
    catalogue = load_catalogue(settings.interventions_config)
    budgets = dict(settings.plan_budgets)
    mondays = evaluation_mondays(settings, args.snapshots, args.every_weeks)
    model_name = args.model or settings.model
    bundles = trained_bundles(settings, model_name, mondays[0], args.data / "bundles")
    world = load_world(settings.raw_dir)
    regions = pd.read_parquet(settings.warehouse_dir / "regions.parquet").set_index("village_id")
    projects = pd.read_parquet(settings.warehouse_dir / "projects.parquet").set_index("project_id")
    averted = {p: [] for p in POLICIES}       # per snapshot: per-replication averted incidents
    county_rows, kind_rows, snapshot_rows, alone_rows = [], [], [], []
    plan_seconds = []
    for s, monday in enumerate(mondays):
        inputs = read_planning_inputs(settings.warehouse_dir, bundles, snapshot=monday.date())
        rng = np.random.default_rng([SEED, s])
        plans = {}
        for policy, effect in PLANNERS.items():
            t0 = time.perf_counter()
            plans[policy] = make_plan(inputs, bundles, catalogue, budgets, effect=effect)
            plan_seconds.append(time.perf_counter() - t0)
        for policy in POLICIES[len(PLANNERS):]:
            plans[policy] = rule_plan(policy, inputs, bundles, catalogue, budgets, rng, monday,
                                      settings.horizon_days, regions, projects, world, seed=SEED + 1000 + s)
        row = {"snapshot": monday.date().isoformat()}
        for policy, plan in plans.items():
            result = evaluate_plan(world, Plan.model_validate(plan), catalogue, args.replications, seed=SEED + s)
            averted[policy].append(result.totals_without - result.totals_with)
            row[policy] = f"{result.averted:.2f} [{result.low:.2f}, {result.high:.2f}]"
            for c in result.by_county.itertuples():
                county_rows.append({"snapshot": s, "policy": policy, "county": c.county_name, "averted": c.averted})
            truth = result.by_action.groupby("kind")["averted"].sum().to_dict()
            predicted = predicted_by_kind(plan) if policy in PLANNERS else {}
            for kind in sorted({a["kind"] for a in plan["actions"]}):
                kind_rows.append({"snapshot": s, "policy": policy, "kind": kind,
                                  "predicted": predicted.get(kind, np.nan), "true": truth.get(kind, 0.0),
                                  "actions": sum(a["kind"] == kind for a in plan["actions"])})
        row["baseline_expected"] = f"{result.expected_without:.1f}"
        snapshot_rows.append(row)
        for kind in catalogue.kinds:  # each kind alone, as the planner, top-risk-first and the ceiling place it
            for policy in ("planner", "top_risk", "ceiling"):
                alone = {**plans[policy], "actions": [a for a in plans[policy]["actions"] if a["kind"] == kind]}
                result = evaluate_plan(world, Plan.model_validate(alone), catalogue, args.replications, seed=SEED + s)
                alone_rows.append({"snapshot": s, "kind": kind, "policy": policy, "averted": result.averted})
        print(f"{monday.date()}: " + ", ".join(f"{p} {row[p]}" for p in POLICIES), flush=True)

    totals = {p: np.sum(averted[p], axis=0) for p in POLICIES}  # per replication, summed over snapshots
    summary = []
    for policy in POLICIES:
        mean, low, high = interval(totals[policy])
        vs_top = interval(totals[policy] - totals["top_risk"])
        summary.append({"policy": policy, "averted_total": f"{mean:.2f} [{low:.2f}, {high:.2f}]",
                        "per_snapshot": f"{mean / len(mondays):.2f}",
                        "minus_top_risk": f"{vs_top[0]:+.2f} [{vs_top[1]:+.2f}, {vs_top[2]:+.2f}]"})
    ratio_top = {p: totals[p].mean() / totals["top_risk"].mean() for p in (*PLANNERS, "ceiling")}
    ratio_random = {p: totals[p].mean() / totals["random"].mean() for p in PLANNERS}
    counties = (pd.DataFrame(county_rows).groupby(["county", "policy"])["averted"].sum().unstack("policy")
                [list(POLICIES)].round(2))
    kinds = pd.DataFrame(kind_rows).groupby(["policy", "kind"])[["actions", "predicted", "true"]].sum(min_count=1)
    kinds["true/predicted"] = (kinds["true"] / kinds["predicted"]).round(2)
    alone = pd.DataFrame(alone_rows).groupby(["kind", "policy"])["averted"].sum().unstack("policy")
    alone["planner predicted"] = kinds.loc["planner", "predicted"].reindex(alone.index)
    alone["planner ÷ top_risk"] = alone["planner"] / alone["top_risk"]
    alone["ceiling ÷ top_risk"] = alone["ceiling"] / alone["top_risk"]
    alone = alone[["planner predicted", "planner", "top_risk", "ceiling", "planner ÷ top_risk",
                   "ceiling ÷ top_risk"]].round(2)
    preamble = [
        "# prevention — the same budgets allocated five ways and a ceiling, judged in the simulator", "",
        (f"Default world; {len(mondays)} Mondays {mondays[0].date()} … {mondays[-1].date()} ({args.every_weeks} weeks "
        f"apart); budgets {budgets}; models (`{model_name}`) trained on labels closed before {mondays[0].date()}; "
        f"{args.replications} replications with common random numbers per snapshot; horizon {settings.horizon_days} "
        f"days. Figures are expected incidents averted over the horizon, summed over the snapshots, with 95% "
        f"intervals over replications (policies paired)."), "",
        *(f"{p} ({PLANNERS[p]} effects) ÷ top-risk-first: {ratio_top[p]:.2f} (target ≥ 1.20); ÷ random: "
          f"{ratio_random[p]:.2f} (target ≥ 2)." for p in PLANNERS), "",
        (f"The ceiling (each kind to the places where the simulator says it averts most) ÷ top-risk-first: "
         f"{ratio_top['ceiling']:.2f}: what knowing each place's true effect per kind would be worth."), "",
        f"Planner time per city plan: median {np.median(plan_seconds):.2f} s.", "",
        "## Per snapshot (averted [95% interval])", "",
        "| " + " | ".join(["snapshot", *POLICIES, "baseline_expected"]) + " |",
        "|" + "---|" * (len(POLICIES) + 2),
        *["| " + " | ".join(str(r[h]) for h in ["snapshot", *POLICIES, "baseline_expected"]) + " |"
          for r in snapshot_rows], "",
        "## By county (averted, summed over snapshots)", "", *markdown(counties), "",
        ("## Incidents averted at the places each kind went to, in the whole plan (a place's count includes "
         "what the plan's other actions there and nearby did; see the next table for each kind alone)"), "",
        *markdown(kinds.reset_index(level="kind").round(2)), "",
        ("## Each kind alone: the planner's, top-risk-first's and the ceiling's places (averted, summed over "
         "snapshots; each plan's actions of that kind only, same random numbers as above; the planner's own "
         "prediction beside it)"), "", *markdown(alone), "",
        f"(seconds in all: {time.perf_counter() - started:.0f})", "",
        "## Totals", "",
    ]
    publish("prevention", preamble, ["policy", "averted_total", "per_snapshot", "minus_top_risk"], summary,
            {"mondays": [m.date().isoformat() for m in mondays], "budgets": budgets, "snapshots": snapshot_rows,
             "totals": summary, "ratio_planner_top_risk": ratio_top, "ratio_planner_random": ratio_random,
             "by_county": counties.reset_index().to_dict("records"),
             "by_kind": kinds.reset_index().to_dict("records"), "alone": alone.reset_index().to_dict("records"),
             "plan_seconds": plan_seconds})


if __name__ == "__main__":
    main()
