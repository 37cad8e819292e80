"""The truth test of a plan: from a snapshot's true state, the world run forward with the plan
applied and without it, with common random numbers, over many replications.

Each action moves the true mechanism (``plan_levers``) for its weeks, clipped to the plan's
horizon, from the snapshot on:

- ``mediation_team``: ``amount × mechanism`` more mediators → mediation capacity → P(resolve);
- ``legal_adviser``: an adviser assigned (when ``amount × mechanism > 0``) → P(resolve) and
  κ's adviser factor;
- ``patrol_hours``: ``amount × mechanism`` hours spread evenly over the action's weeks; a round
  of one grid cell takes ``HOURS_PER_PATROL_ROUND`` hours, so the village's patrol rate (rounds
  per cell per week) rises by hours per week / ``HOURS_PER_PATROL_ROUND`` / grid cells → κ's
  patrol factor;
- ``hearing``: the project's hearing held (when ``amount × mechanism > 0``) → its severity;
- ``compensation``: the project's compensation ratio raised to at least ``mechanism`` → its
  severity.

The measure is the expected number of incidents in [t, t + horizon), summed over villages:
incidents do not feed back into the state, so each replication contributes its Σλ
(Rao-Blackwellised). Both arms of a replication draw from the same per-village random
streams and the same drawn future projects, so the empty plan averts exactly 0 and a change in
one village leaves the draws of every other village as they were. The interval is the 95%
Student-t interval of the paired differences.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from fengqiao.errors import ConfigurationError
from fengqiao.interventions import HOURS_PER_PATROL_ROUND, Catalogue, Plan, resolved
from fengqiao.progress import Progress, quiet
from pipelines.simulate import dynamics
from pipelines.simulate.export import INTENSITY_FILE, WORLD_FILE
from pipelines.simulate.mechanics import escalation_factor, resolve_probability
from pipelines.simulate.oracle import drawn_projects
from pipelines.simulate.projects import severity
from pipelines.simulate.world import Truth, config_from_dict, make_truth

DEFAULT_REPLICATIONS = 200


@dataclass
class TrueWorld:
    """A world's truth loaded once to evaluate many plans on, with the no-plan arm of each
    (snapshot, horizon, replications, seed) kept after its first use."""

    truth: Truth
    baselines: dict[tuple[int, int, int, int], tuple[dynamics.DrawnProjects, np.ndarray, np.ndarray]] = field(
        default_factory=dict, repr=False)


def load_world(world_dir: Path, progress: Progress = quiet) -> TrueWorld:
    """The truth behind the export in ``world_dir``, re-simulated from its ``world.json``
    (the export stores no hidden state). The recorded daily intensities must equal the
    re-simulated ones: an export made by another version of the simulator is refused."""
    record_path = Path(world_dir) / WORLD_FILE
    try:
        record = json.loads(record_path.read_text(encoding="utf-8"))
        config = config_from_dict(record["config"])
    except OSError as exc:
        raise ConfigurationError(f"cannot read {record_path}: {exc.strerror}") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise ConfigurationError(f"{record_path}: not a world record (field config)") from exc
    truth, _ = make_truth(config, progress)
    intensity = Path(world_dir) / INTENSITY_FILE
    if intensity.exists() and not np.array_equal(np.load(intensity), truth.history.lam):
        raise ConfigurationError(f"{intensity}: not the world its world.json makes — made by another version of "
                                 "the simulator (simulate it again) or continued under plans (use the original export)")
    return TrueWorld(truth)


@dataclass(frozen=True)
class Evaluation:
    """Incidents averted by a plan, in expected incidents over the plan's horizon."""

    snapshot: pd.Timestamp
    horizon_days: int
    replications: int
    averted: float
    low: float
    high: float
    """The 95% interval of ``averted`` (Student t over the paired replications)."""
    expected_without: float
    expected_with: float
    totals_without: np.ndarray
    """Expected incidents of each replication without the plan (and with it, below): two
    plans evaluated with the same seed can be compared replication by replication."""
    totals_with: np.ndarray
    by_county: pd.DataFrame
    """county_id, county_name, expected_without, averted, low, high (every county)."""
    by_action: pd.DataFrame
    """Per action of the plan: index, kind, entity, id, averted, low, high — at the action's
    village (Σλ there) or project (Σλ of incidents linked to it), all actions on that entity
    together; spill-over to other villages shows in the totals only."""

    def summary(self) -> dict[str, float]:
        """``{"averted", "low", "high"}``: what ``evaluate-plan --json`` prints."""
        return {"averted": self.averted, "low": self.low, "high": self.high}


def _interval(differences: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean and 95% Student-t interval of paired differences over replications (axis 0)."""
    mean = differences.mean(axis=0)
    half = stats.t.ppf(0.975, differences.shape[0] - 1) * differences.std(axis=0, ddof=1) / np.sqrt(
        differences.shape[0])
    return mean, mean - half, mean + half


def _snapshot_row(truth: Truth, plan: Plan) -> tuple[int, int]:
    """(index among the world's snapshots, day) of the plan's snapshot; errors name the field."""
    config, mech = truth.config, truth.mech
    day = (pd.Timestamp(plan.snapshot) - pd.Timestamp(config.start)).days
    found = np.flatnonzero(mech.snapshot_days == day)
    if len(found) == 0:
        first, last = (config.start_ts + pd.Timedelta(days=int(mech.snapshot_days[k])) for k in (0, -1))
        raise ConfigurationError(f"plan: field snapshot: not a Monday of the world ({first:%Y-%m-%d} … {last:%Y-%m-%d})")
    if plan.horizon_days > config.horizon_days:
        raise ConfigurationError(f"plan: field horizon_days: at most the world's horizon ({config.horizon_days} days)")
    return int(found[0]), day


@dataclass(frozen=True)
class PlanTargets:
    """Where each action of a plan goes: its kind's lever, the entity's index (in regions or
    projects order), its amount in physical units (``amount × mechanism``) and its weeks."""

    lever: list[str]
    index: list[int]
    physical: list[float]
    weeks: list[int]


def plan_targets(truth: Truth, plan: Plan, catalogue: Catalogue, day: int) -> PlanTargets:
    """The targets of ``plan``'s actions, sent on day ``day``; a ConfigurationError naming the
    action's index and field when its kind, entity or id is unknown, or its project not yet
    announced on that day."""
    mech = truth.mech
    positions = {"village": pd.Index(mech.regions["village_id"]), "project": pd.Index(mech.projects["project_id"])}
    out = PlanTargets([], [], [], [])
    for i, action in enumerate(plan.actions):
        try:
            kind, amount, weeks = resolved(action, catalogue)
        except ConfigurationError as exc:
            raise ConfigurationError(f"plan action {i}: field kind: {exc}") from exc
        index = positions[action.entity].get_indexer([action.id])[0]
        if index < 0:
            raise ConfigurationError(f"plan action {i}: field id: no {action.entity} of the world has this id")
        if action.entity == "project" and mech.arrays.proj_days[index, 0] >= day:
            raise ConfigurationError(f"plan action {i}: field id: the project is not announced before the snapshot")
        out.lever.append(kind.lever)
        out.index.append(int(index))
        out.physical.append(amount * kind.mechanism)
        out.weeks.append(weeks)
    return out


@dataclass(frozen=True)
class LeverInputs:
    """What actions add to the mechanism's inputs on each of a window's days (rows): mediators
    and patrol rate (rounds per grid cell per week) per village, an adviser assigned, and per
    project a hearing held and the compensation ratio paid (0: unchanged)."""

    extra_mediators: np.ndarray
    adviser: np.ndarray
    extra_rate: np.ndarray
    hearing: np.ndarray
    compensation: np.ndarray


def lever_inputs(truth: Truth, targets: PlanTargets, h: int, elapsed: np.ndarray | None = None) -> LeverInputs:
    """The inputs ``targets`` change on the ``h`` days of a window; action ``i`` began
    ``elapsed[i]`` days before the window (default 0) and acts for its weeks from then."""
    mech = truth.mech
    n, n_proj = len(mech.regions), len(mech.projects)
    out = LeverInputs(np.zeros((h, n)), np.zeros((h, n), dtype=bool), np.zeros((h, n)),
                      np.zeros((h, n_proj), dtype=bool), np.zeros((h, n_proj)))
    cells = mech.regions["grid_cells"].to_numpy()
    elapsed = np.zeros(len(targets.index), dtype=np.int64) if elapsed is None else elapsed
    extra_mediators, adviser, extra_rate = out.extra_mediators, out.adviser, out.extra_rate
    hearing, compensation = out.hearing, out.compensation
    for lever, k, physical, weeks, before in zip(targets.lever, targets.index, targets.physical, targets.weeks,
                                                 elapsed):
        days = int(np.clip(7 * weeks - before, 0, h))
        if lever == "mediation_team":
            extra_mediators[:days, k] += physical
        elif lever == "legal_adviser":
            adviser[:days, k] |= physical > 0
        elif lever == "patrol_hours":
            extra_rate[:days, k] += physical / weeks / HOURS_PER_PATROL_ROUND / cells[k]
        elif lever == "hearing":
            hearing[:days, k] |= physical > 0
        else:
            compensation[:days, k] = np.maximum(compensation[:days, k], physical)
    return out


def plan_levers(truth: Truth, inputs: LeverInputs) -> dynamics.Levers:
    """The mechanism's levers on each day of a window with ``inputs`` changed. Entries no
    action changes keep the world's own values, bit for bit, and so do entries whose inputs
    the actions leave as they were."""
    mech = truth.mech
    regions, projects, traits = mech.regions, mech.projects, mech.traits
    extra_mediators, extra_rate = inputs.extra_mediators, inputs.extra_rate
    levers = dynamics.constant_levers(mech.levers, extra_rate.shape[0])
    legal = regions["legal_adviser"].to_numpy().astype(bool)
    with_adviser = legal | inputs.adviser
    moved = (extra_mediators != 0) | (with_adviser != legal)
    if moved.any():
        p_resolve = resolve_probability(regions["mediators"].to_numpy() + extra_mediators,
                                        regions["population"].to_numpy() / 1000.0, with_adviser)
        levers.p_resolve[moved] = p_resolve[moved]
    moved = (extra_rate != 0) | (with_adviser != legal)
    if moved.any():
        kappa = escalation_factor(traits.latent_escalation, traits.patrol_rate + extra_rate, with_adviser)
        levers.kappa[moved] = kappa[moved]
    held = projects["hearing_held"].to_numpy().astype(bool)
    ratio = projects["compensation_ratio"].to_numpy()
    new_held, new_ratio = held | inputs.hearing, np.maximum(ratio, inputs.compensation)
    moved = (new_held != held) | (new_ratio != ratio)
    if moved.any():
        rows = np.nonzero(moved)
        cols = rows[1]
        levers.severity[rows] = severity(projects["kind"].to_numpy()[cols], projects["affected_households"].to_numpy()[cols],
                                         new_ratio[rows], new_held[rows], projects["assessment_level"].to_numpy()[cols])
    return levers


def _arm(world: TrueWorld, s: int, t: int, horizon: int, replications: int, seed: int,
         levers: dynamics.Levers, drawn: dynamics.DrawnProjects) -> tuple[np.ndarray, np.ndarray]:
    truth = world.truth
    return dynamics.incident_sums(seed, t, truth.history.snap_states[s], horizon, replications,
                                  truth.config.mechanism, truth.mech.arrays, levers, drawn)


def _baseline(world: TrueWorld, s: int, t: int, horizon: int, replications: int,
              seed: int) -> tuple[dynamics.DrawnProjects, np.ndarray, np.ndarray]:
    key = (s, horizon, replications, seed)
    if key not in world.baselines:
        mech = world.truth.mech
        drawn = drawn_projects(seed, np.array([s]), np.array([t]), horizon, replications, mech)
        levers = dynamics.constant_levers(mech.levers, horizon)
        world.baselines[key] = (drawn, *_arm(world, s, t, horizon, replications, seed, levers, drawn))
    return world.baselines[key]


def evaluate_plan(world: TrueWorld, plan: Plan, catalogue: Catalogue, replications: int = DEFAULT_REPLICATIONS,
                  seed: int = 0) -> Evaluation:
    """Expected incidents averted by ``plan`` over its horizon, with a 95% interval, in total,
    per county and per action's entity; same inputs, same result (to the bit)."""
    if replications < 2:
        raise ConfigurationError("--replications must be at least 2 (the interval needs two)")
    truth = world.truth
    s, t = _snapshot_row(truth, plan)
    h = plan.horizon_days
    targets = plan_targets(truth, plan, catalogue, t)
    levers = plan_levers(truth, lever_inputs(truth, targets, h))
    drawn, without_v, without_p = _baseline(world, s, t, h, replications, seed)
    with_v, with_p = _arm(world, s, t, h, replications, seed, levers, drawn)
    diff_v, diff_p = without_v - with_v, without_p - with_p
    averted, low, high = _interval(diff_v.sum(axis=1))

    regions = truth.mech.regions
    counties, county_of = np.unique(regions["county_id"].to_numpy(), return_inverse=True)
    one_hot = np.zeros((len(regions), len(counties)))
    one_hot[np.arange(len(regions)), county_of] = 1.0
    c_mean, c_low, c_high = _interval(diff_v @ one_hot)
    names = regions.groupby("county_id")["county_name"].first()
    by_county = pd.DataFrame({"county_id": counties, "county_name": names.loc[counties].to_numpy(),
                              "expected_without": (without_v @ one_hot).mean(axis=0),
                              "averted": c_mean, "low": c_low, "high": c_high})

    rows = []
    for i, (action, k) in enumerate(zip(plan.actions, targets.index)):
        column = diff_v[:, k] if action.entity == "village" else diff_p[:, k]
        a_mean, a_low, a_high = _interval(column)
        rows.append({"index": i, "kind": action.kind, "entity": action.entity, "id": action.id,
                     "averted": float(a_mean), "low": float(a_low), "high": float(a_high)})
    by_action = pd.DataFrame(rows, columns=["index", "kind", "entity", "id", "averted", "low", "high"])
    return Evaluation(
        snapshot=pd.Timestamp(plan.snapshot), horizon_days=h, replications=replications,
        averted=float(averted), low=float(low), high=float(high),
        expected_without=float(without_v.sum(axis=1).mean()), expected_with=float(with_v.sum(axis=1).mean()),
        totals_without=without_v.sum(axis=1), totals_with=with_v.sum(axis=1),
        by_county=by_county, by_action=by_action,
    )
