"""The fixed parts of a world: its places and projects, the villages' traits (latent ones
among them), the spill-over graph and the calendar, as the arrays the kernels read."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.calendar import pre_festival_ramp, spring_festival_days
from features.engine.neighbours import NeighbourParams, find_neighbours
from pipelines.simulate import dynamics
from pipelines.simulate.config import SimulationConfig
from pipelines.simulate.geography import build_regions
from pipelines.simulate.projects import (
    ProjectSites,
    build_projects,
    project_day_arrays,
    project_severity,
    project_village_pairs,
)

BURN_IN_DAYS = 240
"""Days simulated before the recorded history so that its first day is in steady state."""


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


def resolve_probability(mediators: np.ndarray, pop_k: np.ndarray, legal_adviser: np.ndarray) -> np.ndarray:
    """P(a general dispute is resolved by mediation) from mediation capacity — mediators per
    1,000 people (``pop_k``: population in thousands) — and a legal adviser (0/1): logistic in
    log capacity, clipped to [0.2, 0.97]. Project disputes resolve at 0.75 × this."""
    capacity = mediators / np.maximum(pop_k, 0.1)
    p_resolve = 1.0 / (1.0 + np.exp(-(0.9 + 0.9 * np.log(capacity / 2.0) + 0.3 * legal_adviser)))
    return np.clip(p_resolve, 0.2, 0.97)


def escalation_factor(latent_escalation: np.ndarray, patrol_rate: np.ndarray, legal_adviser: np.ndarray) -> np.ndarray:
    """κ, the multiplier of a village's incident intensity: e^{latent − 0.2} × patrol effect
    e^{−0.35 (rate − 1)} (rate: patrol rounds per grid cell per week) × legal adviser (0.85
    with one, 1.15 without)."""
    return (np.exp(latent_escalation - 0.2) * np.exp(-0.35 * (patrol_rate - 1.0))
            * np.where(legal_adviser, 0.85, 1.15))


def village_traits(rng: np.random.Generator, regions: pd.DataFrame) -> VillageTraits:
    """Base rates from covariates (population, urban, mediation capacity, patrols) and latents."""
    n = len(regions)
    pop_k = regions["population"].to_numpy() / 1000.0
    urban = (regions["kind"] == "community").to_numpy()
    legal = regions["legal_adviser"].to_numpy()
    latent_dispute = rng.normal(0.0, 0.35, n)
    latent_escalation = rng.normal(0.0, 0.65, n)
    patrol_rate = np.clip(rng.lognormal(0.0, 0.45, n), 0.2, 3.5)
    return VillageTraits(
        base_dispute=pop_k * 5.0 / 365.0 * np.exp(latent_dispute) * np.where(urban, 1.15, 1.0),
        base_petition=pop_k * 0.7 / 365.0 * np.exp(0.3 * latent_escalation),
        base_incident=pop_k * 0.00012,
        kappa=escalation_factor(latent_escalation, patrol_rate, legal),
        p_resolve=resolve_probability(regions["mediators"].to_numpy(), pop_k, legal),
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


@dataclass
class Mechanics:
    """Everything the mechanism needs besides its state: the arrays the kernels read, the
    world's own levers (one row: κ, P(resolve), project severity), the calendar of the run and
    the places (for drawing projects in the oracle's paths)."""

    arrays: dynamics.WorldArrays
    levers: dynamics.Levers
    traits: VillageTraits
    regions: pd.DataFrame
    sites: ProjectSites
    projects: pd.DataFrame
    snapshot_days: np.ndarray
    ramp: np.ndarray


def world_mechanics(rng: np.random.Generator, config: SimulationConfig) -> Mechanics:
    """Places, projects, traits, graph and calendar of the world ``config`` describes."""
    start, n_days = config.start_ts, config.n_days
    regions = build_regions(rng, config.scale)
    sites = ProjectSites.of(regions)
    projects = build_projects(rng, regions, sites, start, n_days)
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
        base_incident=traits.base_incident,
        season_dispute=1.0 + 0.4 * ramp + 0.08 * np.sin(2 * np.pi * (days + start.day_of_year - 80) / 365.25),
        season_incident=1.0 + 0.5 * ramp, first_day=-BURN_IN_DAYS,
        nb_ptr=nb_ptr, nb_idx=nb_idx, nb_w=nb_w,
        proj_days=project_day_arrays(projects, start, n_days),
        vp_ptr=vp_ptr, vp_proj=vp_proj, vp_share=share[order], pv_ptr=pv_ptr, pv_village=pv_village,
    )
    levers = dynamics.Levers(kappa=traits.kappa[None, :], p_resolve=traits.p_resolve[None, :],
                             severity=project_severity(projects)[None, :])
    first_monday = (7 - start.day_of_week) % 7
    snapshot_days = np.arange(first_monday, n_days, 7, dtype=np.int64)
    return Mechanics(arrays, levers, traits, regions, sites, projects, snapshot_days, ramp)
