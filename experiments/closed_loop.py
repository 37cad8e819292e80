"""The closed loop: 26 weeks of weekly score → plan → simulate → ingest, against the same
world run without planning — does attention run away to where it already looks?

One default world (fixed seed) is continued from a Monday ``--weeks`` weeks before its end
twice, with the same seed (common random numbers, ``pipelines.simulate.live.LiveWorld``):

* **planning**: each Monday the world so far is exported and goes through the product's own
  pipeline — `ingest_job` (validate, pseudonymise), `features_job` (every snapshot rebuilt) —
  the latest snapshot is scored by the current bundles, `make_plan` chooses the actions, and
  the world runs 7 days on with them. The models (the calibrated model of `fengqiao train`,
  FENGQIAO_MODEL, default parameters, no tuning, no backtest) are fitted on the history before the
  loop and refitted every ``--retrain-every`` weeks on everything ingested so far — data the
  loop's own plans have shaped.
* **no planning**: the same world run on without plans. Its incidents are counted every week;
  at the ``--plain-checkpoints`` weeks it goes through the same pipeline and is scored by the
  planning arm's current bundles, so that its alerts can be set beside the planning arm's.

The budgets are the product's defaults (FENGQIAO_PLAN_BUDGETS), read by one of two rules
(``--budget-rule``): ``weekly`` (default, as `fengqiao plan` is run each Monday) sends the whole
budget again every week while earlier actions keep acting for their weeks, so that 8-week
mediation teams overlap eight deep; ``in-field`` treats a budget as what the committee has in
the field at once: an action holds its cost for its weeks and each week's plan spends only
what has come back (26-week legal advisers are sent once; patrol hours come back after 4
weeks, mediation teams after 8). The registers the model reads do not show a temporary team
or adviser (only the patrol rounds appear in the data), so each week's plan is given the earlier
plans as in force, as the committee would (``--no-in-force``: the planner sees only the data).

Recorded per week: incidents in both arms (recorded, and expected Σλ from the mechanism, the
low-noise measure); each county's share of alerts (the city's top ``alert_budget`` villages by
score), of the resources in the field (cost per budget, averaged over budgets) and of the
true expected incidents, beside its share of the population; concentration (the largest
county's share; how much of the week's alerts and new village actions go where they went
before). One world and one seed: the realised difference is one draw (its noise is shown by
the weekly spread); the expected-incidents difference is exact for this world.

    nice -n 5 python experiments/closed_loop.py [--weeks 26] [--budget-rule weekly] [--out var/closed_loop]

Writes experiments/results/closed_loop.md and .json (``closed_loop_in_field.*`` with the
in-field rule, ``…_no_in_force.*`` with ``--no-in-force``) after every week, so that a run cut short leaves what it measured
(``complete`` says whether it finished).
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from results_table import RESULTS

from fengqiao.interventions import Plan, load_catalogue
from fengqiao.settings import Settings
from models.bundle import ScoringBundle, load_bundle
from models.bundle.export import BundleFacts, export_model
from models.catalogue import build_model
from models.data import load_training_table
from models.featuremeta import ENTITIES
from models.prevention import EntityRows, make_plan, read_planning_inputs
from models.timesplit import as_datetime64
from pipelines.jobs import features_job, ingest_job
from pipelines.model_jobs import training_options
from pipelines.simulate.config import SimulationConfig
from pipelines.simulate.live import LiveWorld

WORLD_SEED = 0
LOOP_SEED = 1
BUDGET_RULES = {
    "weekly": "the whole budget is sent again every week; earlier actions keep acting for their weeks",
    "in-field": "what the committee has in the field at once; an action holds its cost for its weeks",
}


def loop_start(config: SimulationConfig, weeks: int) -> pd.Timestamp:
    """The last Monday from which ``weeks`` weeks still end within the world's years."""
    latest = config.start_ts + pd.Timedelta(days=config.n_days - 7 * weeks)
    return (latest - pd.Timedelta(days=latest.weekday())).normalize()


@dataclass
class Arm:
    """One continued world and the data root its pipeline writes to."""

    name: str
    live: LiveWorld
    settings: Settings
    seconds: dict[str, float] = field(default_factory=dict)

    def observe(self) -> None:
        """Export the world so far, ingest it and build the feature tables (the real jobs)."""
        raw = self.settings.data_root / "raw"
        for step, run in (("export", lambda: self.live.export(raw)),
                          ("ingest", lambda: ingest_job(self.settings, str(raw), create_key=True)),
                          ("features", lambda: features_job(self.settings, as_of=pd.Timestamp(self.live.today)))):
            started = time.perf_counter()
            run()
            self.seconds[step] = time.perf_counter() - started


def fit_bundles(settings: Settings, folder: Path, version: str) -> dict[str, ScoringBundle]:
    """The model of `fengqiao train` (FENGQIAO_MODEL, calibrated, default parameters: no tuning)
    fitted on every labelled row of the warehouse, exported as a scoring bundle per entity kind."""
    options = training_options(settings)
    bundles = {}
    for entity in ENTITIES:
        table = load_training_table(settings.warehouse_dir, entity, options.horizon_days)
        model = build_model(options.model, entity, table.features, options.horizon_days, lightgbm_params={},
                            calibration=options.calibration, calibration_weeks=options.calibration_weeks)
        model.fit(table.X, table.y, snapshot=as_datetime64(table.snapshots))
        facts = BundleFacts(entity, options.horizon_days, options.level_thresholds,
                            training_data_fingerprint=table.fingerprint, model_version=version)
        bundles[entity] = load_bundle(export_model(model, folder / f"{entity}-{version}", facts))
    return bundles


def alerts(bundle: ScoringBundle, rows: EntityRows, share: float) -> np.ndarray:
    """The ids of the ``share`` of entities with the highest scores (ties: lower id first)."""
    p = bundle.probability(rows.X)
    k = math.ceil(share * len(p))
    return rows.ids[np.lexsort((rows.ids, -p))[:k]]


def shares(values: pd.Series, counties: list[str]) -> dict[str, float]:
    """``values`` summed by county (the index) as shares of the total, every county listed."""
    by = values.groupby(level=0).sum().reindex(counties, fill_value=0.0)
    total = by.sum()
    return (by / total if total > 0 else by).round(4).to_dict()


def resource_shares(actions: list[dict], budgets: list[str], counties: list[str]) -> dict[str, float]:
    """Each county's share of the resources in ``actions``: per budget its share of the cost,
    averaged over the budgets drawn on."""
    frame = pd.DataFrame(actions, columns=["county", "budget", "cost"])
    per_budget = [shares(part.set_index("county")["cost"], counties) for b, part in frame.groupby("budget")
                  if b in budgets and part["cost"].sum() > 0]
    if not per_budget:
        return {c: 0.0 for c in counties}
    return {c: round(float(np.mean([s[c] for s in per_budget])), 4) for c in counties}


def repeat_share(actions: list[dict], before: set, key: Callable[[dict], object]) -> float | None:
    """Of this week's new village actions (cost, averaged over budgets), the share whose ``key``
    is among ``before`` (the village: it had an action before; the village and kind: the same
    kind is still running there); None when there are no new village actions."""
    frame = pd.DataFrame([a for a in actions if a["entity"] == "village"], columns=["id", "kind", "budget", "cost"])
    if frame.empty:
        return None
    frame["repeat"] = [key(a) in before for a in frame.to_dict("records")]
    parts = [(part["cost"] * part["repeat"]).sum() / part["cost"].sum() for _, part in frame.groupby("budget")
             if part["cost"].sum() > 0]
    return round(float(np.mean(parts)), 4)


def in_field(sent: list[tuple[int, dict]], week: int) -> list[dict]:
    """The actions sent in earlier weeks (and this one) still acting in ``week``."""
    return [a for w, a in sent if w <= week < w + int(a["weeks"])]


def available(budgets: dict[str, float], field_now: list[dict]) -> dict[str, float]:
    """What each budget has left after the actions still in the field."""
    used = {b: 0.0 for b in budgets}
    for action in field_now:
        used[action["budget"]] += action["cost"]
    return {b: max(0.0, amount - used[b]) for b, amount in budgets.items()}


def weekly_incidents(live: LiveWorld, county_of: np.ndarray) -> tuple[int, float, pd.Series]:
    """Incidents recorded and expected (Σλ) in the 7 days just simulated, and recorded by county."""
    log = live.incident_log()
    new = log[log[:, 0] >= live.day - 7]
    recorded = pd.Series(1.0, index=county_of[new[:, 1]])
    return len(new), float(live.daily_intensity[-7:].sum()), recorded


def expected_by_county(live: LiveWorld, county_of: np.ndarray) -> pd.Series:
    """Expected incidents (Σλ) of the 7 days just simulated, by county."""
    return pd.Series(live.daily_intensity[-7:].sum(axis=0), index=county_of)


def county_table(record: dict, week: int) -> list[str]:
    """The county shares at ``week`` as markdown lines."""
    w = record["weeks"][week - 1]
    counties = record["counties"]
    head = ["county", "population", "true expected incidents", "alerts (planning)", "resources in the field"]
    plain = w.get("plain_alert_share")
    if plain is not None:
        head.insert(4, "alerts (no planning)")
    lines = [f"**Week {week}** ({w['monday']})", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in counties:
        cells = [c, record["population_share"][c], w["true_share"][c], w["alert_share"][c]]
        if plain is not None:
            cells.append(plain[c])
        cells.append(w["resource_share"][c])
        lines.append("| " + " | ".join(f"{x:.3f}" if isinstance(x, float) else str(x) for x in cells) + " |")
    return [*lines, ""]


def by_county_totals(record: dict) -> list[str]:
    """Incidents by county over the weeks done, both arms, with the mean share of resources."""
    weeks = record["weeks"]
    head = ["county", "population", "incidents (planning)", "incidents (no planning)", "difference",
            "mean share of resources in the field", "mean share of alerts"]
    lines = ["**Over the whole run**", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for c in record["counties"]:
        planned = sum(w["incidents_by_county_planned"][c] for w in weeks)
        plain = sum(w["incidents_by_county_plain"][c] for w in weeks)
        lines.append(f"| {c} | {record['population_share'][c]:.3f} | {planned:.0f} | {plain:.0f} | "
                     f"{plain - planned:.0f} | {np.mean([w['resource_share'][c] for w in weeks]):.3f} | "
                     f"{np.mean([w['alert_share'][c] for w in weeks]):.3f} |")
    return [*lines, ""]


def write_results(record: dict, folder: Path) -> None:
    """``<stem>.md`` and ``.json`` in ``folder`` from what has been measured so far."""
    weeks = record["weeks"]
    done = len(weeks)
    header = ["week", "monday", "model", "incidents (planning)", "incidents (no planning)", "cumulative difference",
              "expected (planning)", "expected (no planning)", "cumulative expected difference",
              "plan: predicted averted", "actions sent", "top county: alerts", "top county: resources",
              "alerts as in week 1", "new actions to earlier villages", "new actions where the same kind runs",
              "alerts' distance from true risk",
              "s per week"]
    rows = []
    cum, cum_e = 0, 0.0
    for w in weeks:
        cum += w["incidents_plain"] - w["incidents_planned"]
        cum_e += w["expected_plain"] - w["expected_planned"]
        rows.append([w["week"], w["monday"], w["model_version"], w["incidents_planned"], w["incidents_plain"], cum,
                     f"{w['expected_planned']:.2f}", f"{w['expected_plain']:.2f}", f"{cum_e:.2f}",
                     f"{w['plan_averted']:.2f}", w["actions_sent"],
                     f"{max(w['alert_share'].values()):.3f}", f"{max(w['resource_share'].values()):.3f}",
                     f"{w['alerts_as_week1']:.3f}",
                     "" if w["repeat_share"] is None else f"{w['repeat_share']:.3f}",
                     "" if w.get("same_kind_running_share") is None else f"{w['same_kind_running_share']:.3f}",
                     f"{w['alert_distance_from_truth']:.3f}", f"{w['seconds']:.0f}"])
    totals = record["totals"]
    lines = [
        "# The closed loop: score → plan → simulate → ingest, week by week",
        "",
        (f"`python experiments/closed_loop.py {record['argv']}` — {'complete' if record['complete'] else 'CUT SHORT'}: "
        f"{done} of {record['weeks_asked']} weeks. World seed {record['world_seed']}, scale "
        f"{record['scale']}, {record['years']} years, continued from {record['start']} with loop seed {record['loop_seed']}; both arms share "
        "their random numbers (one world, one run: the recorded difference is one draw; the expected "
        "difference Σλ is exact for this world and these plans)."),
        (f"Budgets ({BUDGET_RULES[record['budget_rule']]}): {record['budgets']}. Models refitted every {record['retrain_every']} weeks "
        f"on the planning arm's own data (`{record['model']}`, calibrated, default parameters). "
        + ("Each week's plan is given the earlier plans as in force (`make_plan(in_force=…)`): running teams, "
           "advisers, hearings and compensation count as in the field." if record.get("in_force") else
           "The plans in force are not given to the planner: it sees only what the data records.")),
        "",
        (f"**Totals over {done} weeks.** Incidents recorded: planning {totals['incidents_planned']}, no planning "
        f"{totals['incidents_plain']}, difference {totals['incidents_plain'] - totals['incidents_planned']} "
        f"({totals['incidents_relative']:.1%}); weekly differences have standard deviation "
        f"{totals['weekly_difference_sd']:.2f}. Expected incidents (Σλ): planning {totals['expected_planned']:.1f}, "
        f"no planning {totals['expected_plain']:.1f}, averted {totals['expected_averted']:.1f} "
        f"({totals['expected_relative']:.1%}). The plans' own predictions summed to {totals['plan_averted']:.1f} "
        "(each plan over its 30-day horizon, so they overlap and are not comparable one to one)."),
        "",
        ("Columns: *alerts as in week 1* — share of the week's alerts that were alerts in week 1; *new actions "
        "to earlier villages* — share of the week's new village actions (cost, mean over budgets) going to "
        "villages that had an action before; *new actions where the same kind runs* — the same, going to villages "
        "where an action of the same kind is still running (sent twice); *alerts' distance from true risk* — total-variation distance "
        "between the counties' shares of alerts and of true expected incidents that week (0: alerts spread "
        "over counties as the risk is)."),
        "",
        "| " + " | ".join(header) + " |", "|" + "---|" * len(header),
        *["| " + " | ".join(str(x) for x in r) + " |" for r in rows],
        "",
        "## County shares",
        "",
    ]
    for week in sorted({1, min(13, done), done}):
        lines += county_table(record, week)
    lines += by_county_totals(record)
    checked = [w for w in weeks if w.get("plain_alerts_as_week1") is not None]
    if checked:
        lines += ["Alerts that were alerts in week 1, same bundles, planning vs no planning: "
                  + "; ".join(f"week {w['week']} {w['alerts_as_week1']:.3f} vs {w['plain_alerts_as_week1']:.3f}"
                              for w in checked) + ".", ""]
    lines += [(f"Timing per week (s, median over weeks): {record['median_seconds']}. Fits: "
              f"{record['fit_seconds']} s each refit (both entity kinds). 2 shared cores: timings are noisy."), ""]
    text = "\n".join(lines) + "\n"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{record['stem']}.md").write_text(text)
    (folder / f"{record['stem']}.json").write_text(json.dumps(record, indent=2, default=str) + "\n")


def summarise(record: dict) -> None:
    """Totals, timing medians and the concentration findings over the weeks done."""
    weeks = record["weeks"]
    diff = [w["incidents_plain"] - w["incidents_planned"] for w in weeks]
    planned, plain = sum(w["incidents_planned"] for w in weeks), sum(w["incidents_plain"] for w in weeks)
    e_planned, e_plain = sum(w["expected_planned"] for w in weeks), sum(w["expected_plain"] for w in weeks)
    record["totals"] = {
        "incidents_planned": planned, "incidents_plain": plain,
        "incidents_relative": (plain - planned) / plain if plain else 0.0,
        "weekly_difference_sd": float(np.std(diff, ddof=1)) if len(diff) > 1 else 0.0,
        "expected_planned": e_planned, "expected_plain": e_plain, "expected_averted": e_plain - e_planned,
        "expected_relative": (e_plain - e_planned) / e_plain if e_plain else 0.0,
        "plan_averted": sum(w["plan_averted"] for w in weeks)}
    steps = sorted({s for w in weeks for s in w["steps"]})
    record["median_seconds"] = {s: round(float(np.median([w["steps"][s] for w in weeks if s in w["steps"]])), 1)
                                for s in steps}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--weeks", type=int, default=26)
    parser.add_argument("--scale", type=float, default=1.0, help="the world's size (1.0: the default world)")
    parser.add_argument("--years", type=float, default=None, help="the world's length (default: the config's)")
    parser.add_argument("--world-seed", type=int, default=WORLD_SEED)
    parser.add_argument("--loop-seed", type=int, default=LOOP_SEED, help="the continued days' random streams")
    parser.add_argument("--retrain-every", type=int, default=4, help="weeks between refits")
    parser.add_argument("--plain-checkpoints", default="13,26",
                        help="weeks at which the no-planning arm is also scored (comma-separated)")
    parser.add_argument("--out", type=Path, default=Path("var/closed_loop"), help="the arms' data roots")
    parser.add_argument("--budget-rule", choices=sorted(BUDGET_RULES), default="weekly",
                        help="; ".join(f"{k}: {v}" for k, v in BUDGET_RULES.items()))
    parser.add_argument("--in-force", action=argparse.BooleanOptionalAction, default=True,
                        help="give each week's plan the earlier plans as in force (--no-in-force: the planner sees "
                             "only what the data records)")
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="where closed_loop.md and .json go (closed_loop_in_field.* with --budget-rule in-field, "
                             "…_no_in_force.* with --no-in-force)")
    args = parser.parse_args()
    run_loop(args)


def run_loop(args: argparse.Namespace) -> dict:
    """The experiment (see the module's docstring); returns the record it wrote."""
    kw = {"seed": args.world_seed, "scale": args.scale} | ({"years": args.years} if args.years else {})
    config = SimulationConfig(**kw)
    start = loop_start(config, args.weeks).date()
    base = Settings(data_root=args.out)
    catalogue = load_catalogue(base.interventions_config)
    budgets = {b: float(base.plan_budgets.get(b, 0.0)) for b in catalogue.budgets()}
    arms = {name: Arm(name, LiveWorld(config, start, seed=args.loop_seed),
                      Settings(data_root=args.out / name)) for name in ("planning", "plain")}
    planned, plain = arms["planning"], arms["plain"]
    regions = planned.live.truth.mech.regions
    county_of = regions["county_id"].astype(str).to_numpy()
    counties = sorted(set(county_of))
    checkpoints = {int(w) for w in str(args.plain_checkpoints).split(",") if w.strip()}
    flags = {k.replace("_", "-"): v for k, v in vars(args).items() if v is not None and k != "results"}
    record = {"argv": " ".join((f"--{k}" if v else f"--no-{k}") if isinstance(v, bool) else f"--{k} {v}"
                               for k, v in flags.items()),
              "world_seed": args.world_seed, "loop_seed": args.loop_seed, "scale": args.scale,
              "stem": "closed_loop" + ("" if args.budget_rule == "weekly" else "_in_field")
                      + ("" if args.in_force else "_no_in_force"),
              "budget_rule": args.budget_rule, "in_force": args.in_force, "years": config.years,
              "start": str(start), "weeks_asked": args.weeks, "retrain_every": args.retrain_every, "model": base.model,
              "budgets": budgets, "counties": counties, "complete": False,
              "population_share": shares(pd.Series(regions["population"].to_numpy(float), index=county_of), counties),
              "weeks": [], "fit_seconds": []}
    sent: list[tuple[int, dict]] = []
    in_force: list[Plan] = []
    first_alerts: set[str] = set()
    served: set[str] = set()
    bundles: dict[str, ScoringBundle] = {}
    for week in range(1, args.weeks + 1):
        started = time.perf_counter()
        monday = planned.live.today
        planned.observe()
        steps = dict(planned.seconds)
        if (week - 1) % args.retrain_every == 0:
            t0 = time.perf_counter()
            bundles = fit_bundles(planned.settings, args.out / "bundles", f"week{week}")
            steps["fit"] = time.perf_counter() - t0
            record["fit_seconds"].append(round(steps["fit"], 1))
        t0 = time.perf_counter()
        inputs = read_planning_inputs(planned.settings.warehouse_dir, bundles)
        if inputs.snapshot != monday:
            raise SystemExit(f"week {week}: the latest feature snapshot is {inputs.snapshot}, not today ({monday})")
        left = budgets if args.budget_rule == "weekly" else available(budgets, in_field(sent, week))
        plan = make_plan(inputs, bundles, catalogue, left, in_force=in_force if args.in_force else [])
        steps["plan"] = time.perf_counter() - t0
        alerted = alerts(bundles["village"], inputs.rows["village"], base.alert_budget)
        first_alerts = first_alerts or set(alerted)
        plain_share, plain_as_week1 = None, None
        if week in checkpoints:
            plain.observe()
            steps.update({f"plain {s}": v for s, v in plain.seconds.items()})
            plain_rows = read_planning_inputs(plain.settings.warehouse_dir, bundles).rows["village"]
            plain_alerted = alerts(bundles["village"], plain_rows, base.alert_budget)
            plain_share = shares(pd.Series(1.0, index=county_of[regions["village_id"].isin(plain_alerted)]), counties)
            plain_as_week1 = round(len(first_alerts & set(plain_alerted)) / max(len(plain_alerted), 1), 4)
        actions = plan["actions"]
        repeats = repeat_share(actions, served, lambda a: a["id"])
        doubled = repeat_share(actions, {(a["id"], a["kind"]) for a in in_field(sent, week)},
                               lambda a: (a["id"], a["kind"]))
        served |= {a["id"] for a in actions if a["entity"] == "village"}
        sent += [(week, a) for a in actions]
        in_force.append(Plan.model_validate(plan))
        t0 = time.perf_counter()
        planned.live.advance(7, in_force[-1], catalogue)
        plain.live.advance(7)
        steps["advance"] = time.perf_counter() - t0
        n_planned, e_planned, by_planned = weekly_incidents(planned.live, county_of)
        n_plain, e_plain, by_plain = weekly_incidents(plain.live, county_of)
        alert_share = shares(pd.Series(1.0, index=county_of[regions["village_id"].isin(alerted)]), counties)
        true_share = shares(expected_by_county(planned.live, county_of), counties)
        record["weeks"].append({
            "week": week, "monday": str(monday), "model_version": bundles["village"].meta["model_version"],
            "incidents_planned": n_planned, "incidents_plain": n_plain,
            "incidents_by_county_planned": by_planned.groupby(level=0).sum().reindex(counties, fill_value=0).to_dict(),
            "incidents_by_county_plain": by_plain.groupby(level=0).sum().reindex(counties, fill_value=0).to_dict(),
            "expected_planned": e_planned, "expected_plain": e_plain,
            "plan_averted": plan["expected_incidents_averted"], "actions_sent": len(actions),
            "budget_available": plan["budgets"], "budget_used": plan["budget_used"],
            "alert_share": alert_share, "plain_alert_share": plain_share, "true_share": true_share,
            "resource_share": resource_shares(in_field(sent, week), list(budgets), counties),
            "new_resource_share": resource_shares(actions, list(budgets), counties),
            "alerts_as_week1": round(len(first_alerts & set(alerted)) / max(len(alerted), 1), 4),
            "plain_alerts_as_week1": plain_as_week1,
            "repeat_share": repeats, "same_kind_running_share": doubled,
            "alert_distance_from_truth": round(0.5 * sum(abs(alert_share[c] - true_share[c]) for c in counties), 4),
            "steps": {s: round(v, 1) for s, v in steps.items()}, "seconds": time.perf_counter() - started})
        summarise(record)
        write_results(record, args.results)
        print(f"week {week} ({monday}): incidents {n_planned} vs {n_plain}, expected {e_planned:.2f} vs "
              f"{e_plain:.2f}, {len(actions)} actions, {time.perf_counter() - started:.0f} s "
              f"({', '.join(f'{s} {v:.0f}' for s, v in steps.items())})", flush=True)
    record["complete"] = True
    write_results(record, args.results)
    return record


if __name__ == "__main__":
    main()
