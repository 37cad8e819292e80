"""Simulate the whole synthetic world: places, projects, history, and the oracle.

``simulate_world`` is pure (no files): it returns the export tables in the contracts of
DESIGN.md (plus the personal columns a real platform export carries, so that ingest has
something to pseudonymise), the oracle tables and the realised rates.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from features.calendar import pre_festival_ramp, spring_festival_days
from features.contracts import TIMEZONE
from features.engine.neighbours import NeighbourParams, find_neighbours
from pipelines.simulate import dynamics
from pipelines.simulate.events import dispute_table, incident_table, patrol_table, petition_table
from pipelines.simulate.geography import build_regions
from pipelines.simulate.projects import build_projects, project_day_arrays, project_severity, project_village_pairs

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


@dataclass(frozen=True)
class VillageTraits:
    """Per-village parameters of the mechanism, the latent ones among them."""

    base_dispute: np.ndarray
    base_petition: np.ndarray
    base_incident: np.ndarray
    kappa: np.ndarray
    p_resolve: np.ndarray
    patrol_rate: np.ndarray
    latent_escalation: np.ndarray
    """Appears in no output table: the reason no model can match the oracle."""


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


def simulate_world(config: SimulationConfig = SimulationConfig()) -> World:
    """Make the world for ``config``; same config, same world (to the byte)."""
    rng = np.random.default_rng(config.seed)
    start, n_days = config.start_ts, config.n_days
    regions = build_regions(rng, config.scale)
    projects = build_projects(rng, regions, start, n_days, config.scale)
    traits = village_traits(rng, regions)
    nb_ptr, nb_idx, nb_w = neighbour_graph(regions)

    proj_days = project_day_arrays(projects, start, n_days)
    severity = project_severity(projects)
    pair_proj, pair_vill = project_village_pairs(projects, regions)
    share = 1.0 / np.bincount(pair_proj, minlength=len(projects))[pair_proj]
    vp_ptr, vp_proj_sorted, order = _csr(pair_vill, pair_proj, len(regions))
    vp_share = share[order]
    pv_ptr, pv_village, _ = _csr(pair_proj, pair_vill, len(projects))

    first_day = -BURN_IN_DAYS
    days = np.arange(first_day, n_days + config.horizon_days + 1)
    ramp = pre_festival_ramp(days, spring_festival_days(start))
    season_dispute = 1.0 + 0.4 * ramp + 0.08 * np.sin(2 * np.pi * (days + start.day_of_year - 80) / 365.25)
    season_incident = 1.0 + 0.5 * ramp
    first_monday = (7 - start.day_of_week) % 7
    snapshot_days = np.arange(first_monday, n_days, 7, dtype=np.int64)

    mech = config.mechanism
    common = (
        mech, traits.base_dispute, traits.base_petition, traits.base_incident, traits.kappa,
        traits.p_resolve, season_dispute, season_incident, nb_ptr, nb_idx, nb_w, proj_days,
        severity, vp_ptr, vp_proj_sorted, vp_share,
    )
    seeds = rng.integers(0, 2**31 - 1, size=2)
    lam, lam_proj, dispute_log, petition_log, incident_log, snap_states = dynamics.simulate_history(
        int(seeds[0]), first_day, n_days, snapshot_days, *common
    )
    p_village, p_project = dynamics.oracle_probabilities(
        int(seeds[1]), snapshot_days, snap_states, config.horizon_days, config.oracle_paths,
        first_day, *common, pv_ptr, pv_village,
    )

    end = config.end_ts
    disputes = dispute_table(rng, dispute_log, regions, projects, traits, start, end, ramp[-first_day:])
    petitions = petition_table(rng, petition_log, disputes, regions, projects, start, end)
    incidents = incident_table(rng, incident_log, regions, projects, start)
    patrols = patrol_table(rng, regions, traits.patrol_rate, lam, start, end)

    snapshots = start + pd.to_timedelta(snapshot_days, unit="D")
    oracle_villages = pd.DataFrame(
        {
            "village_id": np.tile(regions["village_id"].to_numpy(), len(snapshot_days)),
            "snapshot": np.repeat(snapshots, len(regions)),
            "p_incident_30d": p_village.ravel(),
        }
    )
    oracle_projects = _project_oracle(projects, proj_days, snapshot_days, snapshots, p_project)
    tables = {
        "regions": regions,
        "projects": projects,
        "disputes": disputes,
        "petitions": petitions,
        "patrols": patrols,
        "incidents": incidents,
    }
    world = World(config, tables, oracle_villages, oracle_projects, lam, {})
    world.rates = realised_rates(world, incident_log, snapshot_days)
    return world


def _project_oracle(projects, proj_days, snapshot_days, snapshots, p_project) -> pd.DataFrame:
    """Oracle rows for projects announced before the snapshot (the ones the platform knows)."""
    s_idx, j_idx = np.nonzero(proj_days[None, :, 0] < snapshot_days[:, None])
    return pd.DataFrame(
        {
            "project_id": projects["project_id"].to_numpy()[j_idx],
            "snapshot": snapshots[s_idx],
            "p_incident_30d": p_project[s_idx, j_idx],
        }
    )


def incident_labels(incident_log: np.ndarray, n_villages: int, snapshot_days: np.ndarray, horizon: int) -> np.ndarray:
    """label[s, v]: did village v have an incident in days [t_s, t_s + horizon)?"""
    days, vills = incident_log[:, 0], incident_log[:, 1]
    n_days = max(int(snapshot_days.max()) + horizon, int(days.max(initial=0)) + 1)
    by_day = np.zeros((n_days, n_villages), dtype=np.int32)
    np.add.at(by_day, (days, vills), 1)
    cum = np.vstack([np.zeros((1, n_villages), dtype=np.int64), np.cumsum(by_day, axis=0)])
    return (cum[snapshot_days + horizon] - cum[snapshot_days]) > 0


def realised_rates(world: World, incident_log: np.ndarray, snapshot_days: np.ndarray) -> dict[str, float]:
    """The world's main rates, as documented in docs/simulator.md and checked by tests."""
    t = world.tables
    cfg = world.config
    years = cfg.n_days / 365.25
    pop = t["regions"]["population"].sum()
    d, p, inc = t["disputes"], t["petitions"], t["incidents"]
    full = snapshot_days + cfg.horizon_days <= cfg.n_days
    labels = incident_labels(incident_log, len(t["regions"]), snapshot_days[full], cfg.horizon_days)
    oracle = world.oracle_villages["p_incident_30d"].to_numpy().reshape(len(snapshot_days), -1)[full]
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
        "share_villages_incident_30d": float(labels.mean()),
        "oracle_mean_p_30d": float(oracle.mean()),
        "oracle_auc_30d": float(roc_auc_score(labels.ravel(), oracle.ravel())),
        "patrols_per_grid_cell_per_week": len(t["patrols"]) / t["regions"]["grid_cells"].sum() / (cfg.n_days / 7),
    }


def config_dict(config: SimulationConfig) -> dict:
    """The config as plain JSON-able values (recorded next to the export)."""
    out = asdict(config)
    out["mechanism"] = config.mechanism._asdict()
    return out
