"""Shared fixtures: simulated worlds are made once per session and reused."""

from __future__ import annotations

import pytest

from pipelines.simulate.world import SimulationConfig, World, simulate_world

SMALL = SimulationConfig(seed=7, scale=0.1, years=1.5, oracle_paths=8)
"""About 200 villages and 18 months: enough mechanism for integration tests, fast to make."""


@pytest.fixture(scope="session")
def default_world() -> World:
    """The demo's world (the defaults of `fengqiao simulate`)."""
    return simulate_world(SimulationConfig())


@pytest.fixture(scope="session")
def small_world() -> World:
    return simulate_world(SMALL)
