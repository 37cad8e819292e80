"""Local copies of registry bundles (``models.bundle.cache``), against a real MLflow SQLite store:
a copy serves while the store is unchanged, is replaced when an alias moves, and a damaged copy
is fetched again."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest

from models.bundle import cache
from models.bundle.cache import load_cached_bundle, store_state
from models.tracking import use_store

NAME = "village-risk"
ALIAS = f"models:/{NAME}@champion"


@pytest.fixture
def store(tmp_path):
    """A fresh SQLite store, a registered model and a way to add versions of it."""
    uri = f"sqlite:///{tmp_path / 'mlflow' / 'mlflow.db'}"
    client = use_store(uri)
    client.create_registered_model(NAME)
    experiment = client.create_experiment("bundles", artifact_location=(tmp_path / "artifacts").as_uri())

    def add_version(folder: Path) -> str:
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.log_artifacts(str(folder), "model/artifacts/bundle")
        version = client.create_model_version(NAME, f"runs:/{run.info.run_id}/model", run.info.run_id).version
        client.set_registered_model_alias(NAME, "champion", version)
        return str(version)

    return uri, add_version


def _no_mlflow(*_args, **_kwargs):
    raise AssertionError("the registry was asked although the local copy is current")


def test_a_copy_serves_while_the_store_is_unchanged_and_follows_a_moved_alias(api_root, store, tmp_path, monkeypatch):
    uri, add_version = store
    first = add_version(api_root / "bundles" / "1" / "village")
    cached = tmp_path / "cache"
    assert load_cached_bundle(ALIAS, uri, cached).version == first

    with monkeypatch.context() as patched:
        patched.setattr(cache, "download_bundle", _no_mlflow)
        again = load_cached_bundle(ALIAS, uri, cached)
    assert again.version == first and again.entity == "village"

    second = add_version(api_root / "bundles" / "2" / "village")
    assert second != first and load_cached_bundle(ALIAS, uri, cached).version == second


def test_a_damaged_copy_is_fetched_again(api_root, store, tmp_path):
    uri, add_version = store
    version = add_version(api_root / "bundles" / "1" / "village")
    cached = tmp_path / "cache"
    load_cached_bundle(ALIAS, uri, cached)
    [arrays] = cached.rglob("trees.npz")
    arrays.write_bytes(arrays.read_bytes()[:100])
    assert load_cached_bundle(ALIAS, uri, cached).version == version
    [arrays] = cached.rglob("trees.npz")
    assert arrays.stat().st_size > 100


def test_a_fixed_version_needs_no_store_state_but_an_alias_on_a_server_is_always_asked(tmp_path):
    assert store_state("http://mlflow.internal:5000") is None
    assert not cache._moves("models:/village-risk/3") and not cache._moves("runs:/abc/model")
    assert cache._moves(ALIAS) and cache._moves("models:/village-risk/latest")
    assert store_state(f"sqlite:///{tmp_path / 'absent.db'}") == []


def test_a_folder_is_loaded_as_it_is(api_root, tmp_path):
    bundle = load_cached_bundle(str(api_root / "bundles" / "1" / "village"), "sqlite:///unused.db", tmp_path)
    assert bundle.entity == "village" and not any(tmp_path.iterdir())
