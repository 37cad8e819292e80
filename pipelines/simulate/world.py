"""Simulate the whole synthetic world: places, projects, history, and the oracle.

``simulate_world`` is pure (no files): it returns the export tables in the contracts of
DESIGN.md (plus the personal columns a real platform export carries, so that ingest has
something to pseudonymise), the oracle tables and the realised rates.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from features.contracts import COLLECTIVE_MIN_PARTICIPANTS, LEAPFROG_LEVELS
from features.truth import oracle_column
from fengqiao.progress import Progress, quiet
from pipelines.simulate.config import SimulationConfig
from pipelines.simulate.dynamics import Mechanism
from pipelines.simulate.events import dispute_table, incident_table, patrol_table, petition_table
from pipelines.simulate.history import History, run_history
from pipelines.simulate.mechanics import BURN_IN_DAYS, Mechanics, VillageTraits, world_mechanics
from pipelines.simulate.oracle import oracle, project_rows


@dataclass
class World:
    """A simulated world: the platform export, the truth behind it, and its rates."""

    config: SimulationConfig
    tables: dict[str, pd.DataFrame]
    oracle_villages: pd.DataFrame | None
    oracle_projects: pd.DataFrame | None
    """None for a world continued under plans (``LiveWorld``): no oracle is computed."""
    daily_intensity: np.ndarray
    """λ[d, v]: expected incidents on day d in village v (float32), as drawn."""
    rates: dict[str, float]
    traits: VillageTraits
    """The truth behind the tables, latents included (for tests and studies, never exported)."""
    backlog: np.ndarray
    """Grievance backlog[d, v] at the start of each day: the event-built state patrols find."""
    end: pd.Timestamp | None = None
    """The moment of the export when it is not the config's end (a continued world's present)."""

    @property
    def export_end(self) -> pd.Timestamp:
        return self.config.end_ts if self.end is None else self.end


@dataclass
class Truth:
    """What a world's tables hide: its mechanics (latent traits included) and its realised
    history (the true state at the start of every snapshot day), as its config makes them."""

    config: SimulationConfig
    mech: Mechanics
    history: History
    oracle_seed: int


def make_truth(config: SimulationConfig, progress: Progress = quiet) -> tuple[Truth, np.random.Generator]:
    """The truth of the world ``config`` describes, and the random generator the rest of the
    world (its tables) is drawn from; same config, same truth."""
    rng = np.random.default_rng(config.seed)
    progress("places and projects", 0, 0)
    mech = world_mechanics(rng, config)
    seeds = rng.integers(0, 2**31 - 1, size=2)
    progress("history", 0, config.n_days)
    history = run_history(int(seeds[0]), config, mech, progress)
    return Truth(config, mech, history, int(seeds[1])), rng


def simulate_world(config: SimulationConfig = SimulationConfig(), progress: Progress = quiet) -> World:
    """Make the world for ``config``; same config, same world (to the byte)."""
    truth, rng = make_truth(config, progress)
    mech, history = truth.mech, truth.history
    progress("oracle", 0, len(mech.snapshot_days))
    p_village, p_project = oracle(truth.oracle_seed, config, mech, history.snap_states, progress=progress)

    progress("tables", 0, 0)
    start = config.start_ts
    regions, projects = mech.regions, mech.projects
    tables = event_tables(rng, config, mech, history.disputes, history.petitions, history.incidents, history.backlog)

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
    world = World(config, tables, oracle_villages, oracle_projects, history.lam, {}, mech.traits, history.backlog)
    world.rates = realised_rates(world, history.incidents, mech.snapshot_days, mech.arrays.proj_days)
    return world


def event_tables(rng: np.random.Generator, config: SimulationConfig, mech: Mechanics, disputes: np.ndarray,
                 petitions: np.ndarray, incidents: np.ndarray, backlog: np.ndarray,
                 extra_rounds: np.ndarray | None = None) -> dict[str, pd.DataFrame]:
    """The export tables — regions, projects, disputes, petitions, patrols, incidents — of the
    logged events of the days before ``len(backlog)`` (the moment of the export), their
    details drawn from ``rng``; ``extra_rounds[d, v]``: patrol rounds a plan added."""
    start, end = config.start_ts, config.start_ts + pd.Timedelta(days=len(backlog))
    regions, projects = mech.regions, mech.projects
    dispute_rows = dispute_table(rng, disputes, regions, projects, mech.traits, start, end, mech.ramp[BURN_IN_DAYS:])
    petition_rows = petition_table(rng, petitions, dispute_rows, regions, projects, start, end)
    incident_rows = incident_table(rng, incidents, regions, projects, start)
    patrols = patrol_table(rng, regions, mech.traits.patrol_rate, backlog, start, end, extra_rounds)
    return {"regions": regions, "projects": projects, "disputes": dispute_rows, "petitions": petition_rows,
            "patrols": patrols, "incidents": incident_rows}


def incident_labels(incident_log: np.ndarray, n_entities: int, snapshot_days: np.ndarray, horizon: int) -> np.ndarray:
    """label[s, e]: did entity e (column 1 of the log: a village, or a project) have an
    incident (day in column 0) in days [t_s, t_s + horizon)?"""
    days, entity = incident_log[:, 0], incident_log[:, 1]
    n_days = max(int(snapshot_days.max(initial=0)) + horizon, int(days.max(initial=0)) + 1)
    by_day = np.zeros((n_days, n_entities), dtype=np.int32)
    np.add.at(by_day, (days, entity), 1)
    cum = np.vstack([np.zeros((1, n_entities), dtype=np.int64), np.cumsum(by_day, axis=0)])
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
        "share_petitions_collective": float((p["participants"] >= COLLECTIVE_MIN_PARTICIPANTS).mean()),
        "share_petitions_leapfrog": float(p["level"].isin(LEAPFROG_LEVELS).mean()),
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
    linked = incident_log[incident_log[:, 2] >= 0][:, [0, 2]]
    return incident_labels(linked, len(proj_days), snapshot_days, horizon)[s_idx, j_idx]


def config_dict(config: SimulationConfig) -> dict:
    """The config as plain JSON-able values (recorded next to the export)."""
    out = asdict(config)
    out["mechanism"] = config.mechanism._asdict()
    return out


def config_from_dict(values: dict) -> SimulationConfig:
    """The config ``config_dict`` recorded."""
    return SimulationConfig(**{**values, "mechanism": Mechanism(**values.get("mechanism", {}))})
