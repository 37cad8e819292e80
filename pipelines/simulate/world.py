"""Simulate the whole synthetic world: places, projects, history, and the oracle.

``simulate_world`` is pure (no files): it returns the export tables in the contracts of
DESIGN.md (plus the personal columns a real platform export carries, so that ingest has
something to pseudonymise), the oracle tables and the realised rates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from features.calendar import pre_festival_ramp, spring_festival_days
from features.contracts import TIMEZONE
from features.engine.neighbours import NeighbourParams, find_neighbours
from features.engine.plan import RECENTLY_COMPLETED_DAYS
from features.truth import oracle_column
from fengqiao.errors import ConfigurationError
from pipelines.simulate import dynamics
from pipelines.simulate.events import dispute_table, incident_table, patrol_table, petition_table
from pipelines.simulate.geography import build_regions
from pipelines.simulate.projects import (
    announcements_per_day,
    build_projects,
    draw_projects,
    project_day_arrays,
    project_severity,
    project_village_pairs,
    region_tree,
)

BURN_IN_DAYS = 240
"""Days simulated before the recorded history so that its first day is in steady state."""


@dataclass(frozen=True)
class SimulationConfig:
    """What world to make. The defaults are the demo's Hanzhong-like city."""

    seed: int = 20261128
    scale: float = 1.0
    years: float = 3.0
    start: str = "2023-11-27"
    horizon_days: int = 30
    oracle_paths: int = 24
    mechanism: dynamics.Mechanism = field(default_factory=dynamics.Mechanism)

    def __post_init__(self) -> None:
        """Refuse a world that cannot be made, naming the option and its allowed range."""
        checks = (
            ("seed", 0 <= self.seed < 2**32, "an integer from 0 to 4294967295"),
            ("scale", 0.01 <= self.scale <= 50, "between 0.01 and 50"),
            ("years", 0.25 <= self.years <= 30, "between 0.25 and 30"),
            ("horizon_days", 1 <= self.horizon_days <= 365, "between 1 and 365 days"),
            ("oracle_paths", 1 <= self.oracle_paths <= 10_000, "between 1 and 10000"),
        )
        for name, ok, allowed in checks:
            if not ok:
                raise ConfigurationError(f"--{name.replace('_', '-')} must be {allowed}")
        try:
            pd.Timestamp(self.start)
        except ValueError as err:
            raise ConfigurationError("--start must be a date written YYYY-MM-DD") from err

    @property
    def n_days(self) -> int:
        return int(round(self.years * 365.25))

    @property
    def start_ts(self) -> pd.Timestamp:
        return pd.Timestamp(self.start, tz=TIMEZONE)

    @property
    def end_ts(self) -> pd.Timestamp:
        """The moment of the export: the end of the last simulated day."""
        return self.start_ts + pd.Timedelta(days=self.n_days)


@dataclass
class World:
    """A simulated world: the platform export, the truth behind it, and its rates."""

    config: SimulationConfig
    tables: dict[str, pd.DataFrame]
    oracle_villages: pd.DataFrame
    oracle_projects: pd.DataFrame
    daily_intensity: np.ndarray
    """λ[d, v]: expected incidents on day d in village v (float32), as drawn."""
    rates: dict[str, float]
    traits: VillageTraits
    """The truth behind the tables, latents included (for tests and studies, never exported)."""
    backlog: np.ndarray
    """Grievance backlog[d, v] at the start of each day: the event-built state patrols find."""


@dataclass(frozen=True)
class VillageTraits:
    """Per-village parameters of the mechanism, the latent ones among them."""

    base_dispute: np.ndarray
    base_petition: np.ndarray
    base_incident: np.ndarray
    kappa: np.ndarray
    p_resolve: np.ndarray
    patrol_rate: np.ndarray
    latent_dispute: np.ndarray
    latent_escalation: np.ndarray
    """The latents appear in no output table: the reason no model can match the oracle."""


def village_traits(rng: np.random.Generator, regions: pd.DataFrame) -> VillageTraits:
    """Base rates from covariates (population, urban, mediation capacity, patrols) and latents."""
    n = len(regions)
    pop_k = regions["population"].to_numpy() / 1000.0
    urban = (regions["kind"] == "community").to_numpy()
    legal = regions["legal_adviser"].to_numpy()
    latent_dispute = rng.normal(0.0, 0.35, n)
    latent_escalation = rng.normal(0.0, 0.65, n)
    patrol_rate = np.clip(rng.lognormal(0.0, 0.45, n), 0.2, 3.5)
    capacity = regions["mediators"].to_numpy() / np.maximum(pop_k, 0.1)
    p_resolve = 1.0 / (1.0 + np.exp(-(0.9 + 0.9 * np.log(capacity / 2.0) + 0.3 * legal)))
    return VillageTraits(
        base_dispute=pop_k * 5.0 / 365.0 * np.exp(latent_dispute) * np.where(urban, 1.15, 1.0),
        base_petition=pop_k * 0.7 / 365.0 * np.exp(0.3 * latent_escalation),
        base_incident=pop_k * 0.00012,
        kappa=np.exp(latent_escalation - 0.2) * np.exp(-0.35 * (patrol_rate - 1.0)) * np.where(legal, 0.85, 1.15),
        p_resolve=np.clip(p_resolve, 0.2, 0.97),
        patrol_rate=patrol_rate,
        latent_dispute=latent_dispute,
        latent_escalation=latent_escalation,
    )


SPILL_NEIGHBOURS = NeighbourParams(k=6, radius_km=20.0, scale_km=5.0)
"""Whose disputes spill over: the 6 nearest villages within 20 km, weights e^{-d / 5 km}."""


def neighbour_graph(regions: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR (ptr, idx, weight) of each village's spill-over neighbours, weights summing to 1."""
    nb = find_neighbours(regions["lat"].to_numpy(), regions["lon"].to_numpy(), SPILL_NEIGHBOURS)
    owner = np.repeat(np.arange(len(regions)), nb.counts())
    totals = np.bincount(owner, weights=nb.weights, minlength=len(regions))
    return nb.indptr, nb.indices, nb.weights / totals[owner]


def _csr(rows: np.ndarray, cols: np.ndarray, n_rows: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = np.lexsort((cols, rows))
    ptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=n_rows))]).astype(np.int64)
    return ptr, cols[order], order


Progress = Callable[[str, int, int], None]
"""Told (step, done, total) as the simulation advances; total 0 when a step starts."""


def _quiet(step: str, done: int, total: int) -> None:
    return None


@dataclass
class Mechanics:
    """Everything the mechanism needs besides its state: the arrays the kernels read, the
    calendar of the run and the places (for drawing projects in the oracle's paths)."""

    arrays: dynamics.WorldArrays
    traits: VillageTraits
    regions: pd.DataFrame
    projects: pd.DataFrame
    snapshot_days: np.ndarray
    ramp: np.ndarray


def world_mechanics(rng: np.random.Generator, config: SimulationConfig) -> Mechanics:
    """Places, projects, traits, graph and calendar of the world ``config`` describes."""
    start, n_days = config.start_ts, config.n_days
    regions = build_regions(rng, config.scale)
    projects = build_projects(rng, regions, start, n_days)
    traits = village_traits(rng, regions)
    nb_ptr, nb_idx, nb_w = neighbour_graph(regions)
    pair_proj, pair_vill = project_village_pairs(projects, regions)
    share = 1.0 / np.bincount(pair_proj, minlength=len(projects))[pair_proj]
    vp_ptr, vp_proj, order = _csr(pair_vill, pair_proj, len(regions))
    pv_ptr, pv_village, _ = _csr(pair_proj, pair_vill, len(projects))
    days = np.arange(-BURN_IN_DAYS, n_days + config.horizon_days + 1)
    ramp = pre_festival_ramp(days, spring_festival_days(start))
    arrays = dynamics.WorldArrays(
        base_dispute=traits.base_dispute, base_petition=traits.base_petition,
        base_incident=traits.base_incident, kappa=traits.kappa, p_resolve=traits.p_resolve,
        season_dispute=1.0 + 0.4 * ramp + 0.08 * np.sin(2 * np.pi * (days + start.day_of_year - 80) / 365.25),
        season_incident=1.0 + 0.5 * ramp, first_day=-BURN_IN_DAYS,
        nb_ptr=nb_ptr, nb_idx=nb_idx, nb_w=nb_w,
        proj_days=project_day_arrays(projects, start, n_days), severity=project_severity(projects),
        vp_ptr=vp_ptr, vp_proj=vp_proj, vp_share=share[order], pv_ptr=pv_ptr, pv_village=pv_village,
    )
    first_monday = (7 - start.day_of_week) % 7
    snapshot_days = np.arange(first_monday, n_days, 7, dtype=np.int64)
    return Mechanics(arrays, traits, regions, projects, snapshot_days, ramp)


@dataclass
class History:
    """A realised history: its logs, the recorded intensities and backlog, and the state at
    the start of every snapshot day."""

    disputes: np.ndarray
    petitions: np.ndarray
    incidents: np.ndarray
    lam: np.ndarray
    backlog: np.ndarray
    snap_states: np.ndarray


HISTORY_CHUNK_DAYS = 91


def run_history(seed: int, config: SimulationConfig, mech: Mechanics, progress: Progress = _quiet,
                reseed: dict[int, int] | None = None) -> History:
    """Run the mechanism from the burn-in to the export moment, in chunks of a quarter.

    ``reseed`` maps a day to a new seed for the random stream from that day on: the same
    past with another future (the tests use it to show the oracle cannot see the future).
    """
    n, n_days = len(mech.regions), config.n_days
    buf = dynamics.HistoryBuffers(
        state=np.zeros((dynamics.N_STATE, n)), snapshot_days=mech.snapshot_days,
        snap_states=np.zeros((len(mech.snapshot_days), dynamics.N_STATE, n)),
        lam=np.zeros((n_days, n), dtype=np.float32), lam_proj=np.zeros((n_days, n), dtype=np.float32),
        backlog=np.zeros((n_days, n), dtype=np.float32), counts=np.zeros(3, dtype=np.int64),
    )
    logs = (np.empty((1024, 4), dtype=np.int64), np.empty((1024, 6), dtype=np.int64), np.empty((1024, 3), dtype=np.int64))
    seeds = {-BURN_IN_DAYS: seed, **(reseed or {})}
    cuts = sorted({-BURN_IN_DAYS, n_days, *range(0, n_days, HISTORY_CHUNK_DAYS), *seeds})
    for d_from, d_to in zip(cuts[:-1], cuts[1:]):
        logs = dynamics.run_history(seeds.get(d_from, -1), d_from, d_to, buf, *logs, config.mechanism, mech.arrays)
        progress("history", max(d_to, 0), n_days)
    disputes, petitions, incidents = (log[:k].copy() for log, k in zip(logs, buf.counts))
    return History(disputes, petitions, incidents, buf.lam, buf.backlog, buf.snap_states)


def drawn_projects(seed: int, snapshot_index: np.ndarray, snapshot_days: np.ndarray, horizon_days: int,
                   n_paths: int, mech: Mechanics) -> dynamics.DrawnProjects:
    """For each snapshot and forward path, the projects announced in [t, t + horizon) drawn
    from the generating process (its own stream per snapshot, nothing from the history)."""
    rate = announcements_per_day(mech.regions)
    tree = region_tree(mech.regions)
    counts, days, sev, links, shares = [], [], [], [], []
    for s, t in zip(snapshot_index, snapshot_days):
        rng = np.random.default_rng([seed, int(s)])
        per_path = rng.poisson(rate * horizon_days, n_paths)
        draws = draw_projects(rng, mech.regions, tree, int(per_path.sum()))
        announced = t + rng.integers(0, horizon_days, int(per_path.sum()))
        counts.append(per_path)
        days.append(np.column_stack([announced, announced[:, None] + draws.stages]))
        sev.append(draws.severity)
        links.extend(draws.villages)
        shares.extend(np.full(len(v), 1.0 / len(v)) for v in draws.villages)
    sizes = np.array([len(v) for v in links], dtype=np.int64)
    return dynamics.DrawnProjects(
        path_ptr=np.concatenate([[0], np.cumsum(np.concatenate(counts))]).astype(np.int64),
        days=np.concatenate(days).astype(np.int64).reshape(-1, 4),
        severity=np.concatenate(sev).astype(np.float64),
        link_ptr=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
        link_village=np.concatenate([np.empty(0, dtype=np.int64), *links]).astype(np.int64),
        link_share=np.concatenate([np.empty(0), *shares]),
    )


ORACLE_BATCH = 8
"""Snapshots per oracle call: a progress step, and the drawn projects of one batch in memory."""


def oracle(seed: int, config: SimulationConfig, mech: Mechanics, snap_states: np.ndarray,
           snapshot_index: np.ndarray | None = None, progress: Progress = _quiet) -> tuple[np.ndarray, np.ndarray]:
    """The oracle's P(incident in [t, t + horizon)) for the snapshots ``snapshot_index``
    (default all): arrays (snapshots, villages) and (snapshots, projects). Deterministic
    per snapshot whatever the batch it is computed in."""
    index = np.arange(len(mech.snapshot_days)) if snapshot_index is None else np.asarray(snapshot_index)
    p_v, p_p = [], []
    for b in range(0, len(index), ORACLE_BATCH):
        batch = index[b : b + ORACLE_BATCH]
        days = mech.snapshot_days[batch]
        drawn = drawn_projects(seed, batch, days, config.horizon_days, config.oracle_paths, mech)
        pv, pp = dynamics.oracle_probabilities(seed, batch, days, snap_states[batch], config.horizon_days,
                                               config.oracle_paths, config.mechanism, mech.arrays, drawn)
        p_v.append(pv)
        p_p.append(pp)
        progress("oracle", b + len(batch), len(index))
    n, n_proj = len(mech.regions), len(mech.projects)
    return (np.concatenate(p_v) if p_v else np.empty((0, n)), np.concatenate(p_p) if p_p else np.empty((0, n_proj)))


def simulate_world(config: SimulationConfig = SimulationConfig(), progress: Progress = _quiet) -> World:
    """Make the world for ``config``; same config, same world (to the byte)."""
    rng = np.random.default_rng(config.seed)
    progress("places and projects", 0, 0)
    mech = world_mechanics(rng, config)
    seeds = rng.integers(0, 2**31 - 1, size=2)
    progress("history", 0, config.n_days)
    history = run_history(int(seeds[0]), config, mech, progress)
    progress("oracle", 0, len(mech.snapshot_days))
    p_village, p_project = oracle(int(seeds[1]), config, mech, history.snap_states, progress=progress)

    progress("tables", 0, 0)
    start, end = config.start_ts, config.end_ts
    regions, projects = mech.regions, mech.projects
    disputes = dispute_table(rng, history.disputes, regions, projects, mech.traits, start, end,
                             mech.ramp[BURN_IN_DAYS:])
    petitions = petition_table(rng, history.petitions, disputes, regions, projects, start, end)
    incidents = incident_table(rng, history.incidents, regions, projects, start)
    patrols = patrol_table(rng, regions, mech.traits.patrol_rate, history.backlog, start, end)

    column = oracle_column(config.horizon_days)
    snapshots = start + pd.to_timedelta(mech.snapshot_days, unit="D")
    oracle_villages = pd.DataFrame(
        {
            "village_id": np.tile(regions["village_id"].to_numpy(), len(mech.snapshot_days)),
            "snapshot": np.repeat(snapshots, len(regions)),
            column: p_village.ravel(),
        }
    )
    rows = project_rows(mech.arrays.proj_days, mech.snapshot_days)
    oracle_projects = pd.DataFrame(
        {
            "project_id": projects["project_id"].to_numpy()[rows[1]],
            "snapshot": snapshots[rows[0]],
            column: p_project[rows],
        }
    )
    tables = {
        "regions": regions,
        "projects": projects,
        "disputes": disputes,
        "petitions": petitions,
        "patrols": patrols,
        "incidents": incidents,
    }
    world = World(config, tables, oracle_villages, oracle_projects, history.lam, {}, mech.traits, history.backlog)
    world.rates = realised_rates(world, history.incidents, mech.snapshot_days, mech.arrays.proj_days)
    return world


def project_rows(proj_days: np.ndarray, snapshot_days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(snapshot index, project index) of every project-week the platform follows: announced
    before t and t at most ``RECENTLY_COMPLETED_DAYS`` after completion (ADR 001)."""
    t = snapshot_days[:, None]
    live = (proj_days[None, :, 0] < t) & (t <= proj_days[None, :, 3] + RECENTLY_COMPLETED_DAYS)
    return np.nonzero(live)


def incident_labels(incident_log: np.ndarray, n_villages: int, snapshot_days: np.ndarray, horizon: int) -> np.ndarray:
    """label[s, v]: did village v have an incident in days [t_s, t_s + horizon)?"""
    days, vills = incident_log[:, 0], incident_log[:, 1]
    n_days = max(int(snapshot_days.max()) + horizon, int(days.max(initial=0)) + 1)
    by_day = np.zeros((n_days, n_villages), dtype=np.int32)
    np.add.at(by_day, (days, vills), 1)
    cum = np.vstack([np.zeros((1, n_villages), dtype=np.int64), np.cumsum(by_day, axis=0)])
    return (cum[snapshot_days + horizon] - cum[snapshot_days]) > 0


def realised_rates(world: World, incident_log: np.ndarray, snapshot_days: np.ndarray,
                   proj_days: np.ndarray) -> dict[str, float]:
    """The world's main rates, as documented in docs/simulator.md and checked by tests.

    Window rates (``*_<h>d``) are over snapshots whose window [t, t + h) ends by the export.
    """
    t = world.tables
    cfg = world.config
    h = cfg.horizon_days
    years = cfg.n_days / 365.25
    pop = t["regions"]["population"].sum()
    d, p, inc = t["disputes"], t["petitions"], t["incidents"]
    full = snapshot_days + h <= cfg.n_days
    labels = incident_labels(incident_log, len(t["regions"]), snapshot_days[full], h)
    oracle = world.oracle_villages[oracle_column(h)].to_numpy().reshape(len(snapshot_days), -1)[full]
    project_labels = project_week_labels(incident_log, proj_days, snapshot_days[full], h)
    decided = d["outcome"] != "pending"
    return {
        "villages": float(len(t["regions"])),
        "towns": float(t["regions"]["town_id"].nunique()),
        "population": float(pop),
        "projects": float(len(t["projects"])),
        "events_total": float(sum(len(t[k]) for k in ("disputes", "petitions", "patrols", "incidents"))),
        "disputes_per_1000_per_year": len(d) / pop * 1000 / years,
        "share_mediated_resolved": float((d.loc[decided, "outcome"] == "resolved").mean()),
        "share_disputes_project_linked": float(d["project_id"].notna().mean()),
        "petitions_per_dispute": len(p) / max(len(d), 1),
        "share_petitions_repeat": float(p["petitioner_key"].duplicated().mean()),
        "share_petitions_collective": float((p["participants"] >= 5).mean()),
        "share_petitions_leapfrog": float(p["level"].isin(["city", "province", "national"]).mean()),
        "incidents_per_year": len(inc) / years,
        "share_incidents_project_linked": float(inc["project_id"].notna().mean()),
        f"share_villages_incident_{h}d": float(labels.mean()),
        f"oracle_mean_p_{h}d": float(oracle.mean()),
        f"oracle_auc_{h}d": float(roc_auc_score(labels.ravel(), oracle.ravel())),
        f"share_project_weeks_incident_{h}d": float(project_labels.mean()) if len(project_labels) else float("nan"),
        "patrols_per_grid_cell_per_week": len(t["patrols"]) / t["regions"]["grid_cells"].sum() / (cfg.n_days / 7),
        "share_patrols_finding_issues": float((t["patrols"]["issues_found"] > 0).mean()),
    }


def project_week_labels(incident_log: np.ndarray, proj_days: np.ndarray, snapshot_days: np.ndarray,
                        horizon: int) -> np.ndarray:
    """For every project-week the platform follows (``project_rows``): was an incident linked
    to the project in [t, t + horizon)?"""
    s_idx, j_idx = project_rows(proj_days, snapshot_days)
    linked = incident_log[incident_log[:, 2] >= 0]
    n_days = int(max(snapshot_days.max(initial=0) + horizon, linked[:, 0].max(initial=0) + 1))
    by_day = np.zeros((n_days + 1, len(proj_days)), dtype=np.int32)
    np.add.at(by_day, (linked[:, 0] + 1, linked[:, 2]), 1)
    cum = np.cumsum(by_day, axis=0)
    t = snapshot_days[s_idx]
    return (cum[t + horizon, j_idx] - cum[t, j_idx]) > 0


def config_dict(config: SimulationConfig) -> dict:
    """The config as plain JSON-able values (recorded next to the export)."""
    out = asdict(config)
    out["mechanism"] = config.mechanism._asdict()
    return out
