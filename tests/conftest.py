"""Shared fixtures: simulated worlds are made once per session and reused."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import settings

from pipelines.simulate.config import SimulationConfig
from pipelines.simulate.history import run_history
from pipelines.simulate.mechanics import world_mechanics
from pipelines.simulate.world import World, simulate_world

# ``.ci/run`` sets HYPOTHESIS_PROFILE=ci: there the property tests draw the same examples on every
# run, so a landing is never decided by chance; elsewhere they keep exploring new ones.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


def _import_anyio_now() -> None:
    """Import every anyio module here, in the main thread. pytest rewrites the modules of packages
    that ship a pytest plugin (anyio does, even under ``-p no:anyio``), and anyio imports its parts
    lazily — inside the test servers' threads, on their first file response — where CPython
    3.11's ``ast.parse`` is not thread-safe ("AST constructor recursion depth mismatch")."""
    import importlib
    import pkgutil

    import anyio

    for module in pkgutil.walk_packages(anyio.__path__, "anyio."):
        try:
            importlib.import_module(module.name)
        except ImportError:  # a backend whose library is not installed (trio)
            pass


_import_anyio_now()

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


MODEL_WORLD = SimulationConfig(seed=11, scale=0.1, years=2.2, oracle_paths=8)
"""About 200 villages and 26 months: enough labelled weeks for a two-month backtest with
calibration and early-stopping slices (the models' tests)."""


@pytest.fixture(scope="session")
def model_warehouse(tmp_path_factory) -> Path:
    """The model world ingested, with its feature tables (30-day labels) and oracle."""
    from features.engine import build_and_write
    from features.ingest import run_ingest
    from features.truth import ORACLE_FILES
    from pipelines.simulate.export import write_export

    root = tmp_path_factory.mktemp("model-world")
    world = simulate_world(MODEL_WORLD)
    write_export(world, root / "raw")
    run_ingest(root / "raw", root / "warehouse", b"k" * 32, as_of=world.config.end_ts,
               companions={name: root / "raw" / name for name in ORACLE_FILES.values()})
    build_and_write(root / "warehouse", horizon_days=30)
    return root / "warehouse"


@pytest.fixture(scope="session")
def incidents_only_warehouse(model_warehouse, tmp_path_factory) -> Path:
    """The same world as a city that has only `regions` and `incidents` (and the oracle)."""
    import shutil

    from features.engine import build_and_write

    out = tmp_path_factory.mktemp("incidents-only") / "warehouse"
    out.mkdir()
    for name in ("regions.parquet", "incidents.parquet", "oracle.parquet"):
        shutil.copy(model_warehouse / name, out / name)
    build_and_write(out, horizon_days=30)
    return out


@pytest.fixture(scope="session")
def api_root(model_warehouse, tmp_path_factory) -> Path:
    """A data root the API can serve (see ``api_world.build_api_root``)."""
    from api_world import build_api_root

    return build_api_root(model_warehouse, tmp_path_factory.mktemp("api"))
