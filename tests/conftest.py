"""Shared fixtures: simulated worlds are made once per session and reused."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from pipelines.simulate.config import SimulationConfig
from pipelines.simulate.history import run_history
from pipelines.simulate.mechanics import world_mechanics
from pipelines.simulate.world import World, simulate_world

SMALL = SimulationConfig(seed=7, scale=0.1, years=1.5, oracle_paths=8)
"""About 200 villages and 18 months: enough mechanism for integration tests, fast to make."""


@pytest.fixture(scope="session")
def default_world() -> World:
    """The demo's world (the defaults of `fengqiao simulate`)."""
    return simulate_world(SimulationConfig())


@pytest.fixture(scope="session")
def small_world() -> World:
    return simulate_world(SMALL)


@pytest.fixture(scope="session")
def small_mechanics() -> SimpleNamespace:
    """The small world's mechanics, seeds and history, kept apart so that tests can change
    its future and recompute the oracle."""
    rng = np.random.default_rng(SMALL.seed)
    mech = world_mechanics(rng, SMALL)
    history_seed, oracle_seed = (int(s) for s in rng.integers(0, 2**31 - 1, size=2))
    return SimpleNamespace(config=SMALL, mech=mech, history_seed=history_seed, oracle_seed=oracle_seed,
                           history=run_history(history_seed, SMALL, mech))
