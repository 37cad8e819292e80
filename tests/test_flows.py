"""The Prefect flows, run for real against Prefect's local test server: steps are skipped when
their inputs are unchanged, a changed input re-runs what depends on it, an unreachable MLflow
store stops a refresh before the warehouse changes, and each run leaves a summary artifact."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy.exc import OperationalError

from fengqiao.errors import InputDataError, ServiceUnavailable
from fengqiao.loopback import free_port
from fengqiao.settings import Settings
from pipelines.ledger import Ledger, fingerprint
from pipelines.simulate.export import write_export


@pytest.fixture(scope="module")
def prefect_server(tmp_path_factory):
    """Prefect's local test server, started once for the module (it takes seconds)."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_HOME", str(tmp_path_factory.mktemp("prefect-home")))
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def export(small_world, tmp_path) -> Path:
    raw = tmp_path / "var" / "raw"
    write_export(small_world, raw)
    return raw


def _settings(tmp_path: Path, **overrides) -> Settings:
    return Settings(data_root=tmp_path / "var", pseudonym_key="k" * 32, **overrides)


def test_fingerprint_follows_file_contents_and_values(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "x.csv").write_text("1\n")
    first = fingerprint([tmp_path / "a"], horizon=30)
    assert fingerprint([tmp_path / "a"], horizon=30) == first
    assert fingerprint([tmp_path / "a"], horizon=7) != first
    (tmp_path / "a" / "x.csv").write_text("2\n")
    assert fingerprint([tmp_path / "a"], horizon=30) != first
    assert fingerprint([tmp_path / "missing"]) != fingerprint([])


def test_ledger_says_done_only_for_the_same_inputs_and_untouched_outputs(tmp_path):
    ledger = Ledger(tmp_path / "ledger.json")
    ledger.record("ingest", "in-1", "out-1", ["12 rows"])
    assert ledger.done("ingest", "in-1", "out-1").lines == ["12 rows"]
    assert ledger.done("ingest", "in-2", "out-1") is None  # new inputs
    assert ledger.done("ingest", "in-1", "out-2") is None  # someone changed the outputs
    assert ledger.done("features", "in-1", "out-1") is None


def test_connection_failures_are_retried_and_data_errors_are_not():
    from pipelines.flows import is_transient

    try:
        try:
            raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))
        except OperationalError as low:
            raise InputDataError("The query for 'incidents' failed") from low
    except InputDataError as wrapped:
        assert is_transient(wrapped)
    assert not is_transient(InputDataError("'regions' has no row accepted"))
    assert not is_transient(FileNotFoundError("regions.csv"))


def test_refresh_runs_each_step_once_and_a_rerun_is_a_no_op(prefect_server, export, tmp_path):
    from pipelines.flows import refresh_flow

    settings = _settings(tmp_path)
    first = refresh_flow(settings, str(export))
    assert [(o.step, o.ran) for o in first] == [("ingest", True), ("build_features", True), ("score", False)]
    assert "no champion model yet: nothing scored" in " ".join(first[2].lines)
    features = settings.warehouse_dir / "features_village.parquet"
    written = features.stat().st_mtime_ns
    assert pd.read_parquet(features)["snapshot"].nunique() > 10

    second = refresh_flow(settings, str(export))
    assert [(o.step, o.ran) for o in second] == [("ingest", False), ("build_features", False), ("score", False)]
    assert features.stat().st_mtime_ns == written
    assert second[0].lines[0].startswith("skipped: inputs unchanged")

    # a changed export re-runs ingest and, since the warehouse changed, the features
    incidents = pd.read_parquet(export / "incidents.parquet")
    incidents.iloc[:-1].to_parquet(export / "incidents.parquet", index=False)
    third = refresh_flow(settings, str(export))
    assert [(o.step, o.ran) for o in third] == [("ingest", True), ("build_features", True), ("score", False)]


@pytest.mark.slow
def test_features_rerun_when_their_outputs_were_removed(prefect_server, export, tmp_path):
    from pipelines.flows import build_features_flow, ingest_flow

    settings = _settings(tmp_path)
    ingest_flow(settings, str(export))
    build_features_flow(settings)
    (settings.warehouse_dir / "features_village.parquet").unlink()
    again = build_features_flow(settings)
    assert again[0].ran and (settings.warehouse_dir / "features_village.parquet").exists()


def test_refresh_with_an_unreachable_mlflow_server_fails_clearly_and_leaves_the_warehouse(prefect_server, export,
                                                                                           tmp_path):
    from pipelines.flows import refresh_flow

    port = free_port()  # a loopback port nobody listens on
    settings = _settings(tmp_path, mlflow_tracking_uri=f"http://127.0.0.1:{port}", service_timeout_s=2)
    with pytest.raises(ServiceUnavailable, match=f"127.0.0.1:{port} did not answer"):
        refresh_flow(settings, str(export))
    assert not settings.warehouse_dir.exists() or not any(settings.warehouse_dir.iterdir())


def test_a_refused_ingest_stops_the_refresh_before_the_features(prefect_server, export, tmp_path):
    from pipelines.flows import refresh_flow

    settings = _settings(tmp_path)
    refresh_flow(settings, str(export))
    features = settings.warehouse_dir / "features_village.parquet"
    written = features.stat().st_mtime_ns
    incidents = pd.read_parquet(export / "incidents.parquet")
    incidents.iloc[:0].to_parquet(export / "incidents.parquet", index=False)
    with pytest.raises(InputDataError, match="Refused to ingest"):
        refresh_flow(settings, str(export))
    assert features.stat().st_mtime_ns == written


@pytest.mark.slow
def test_an_ingest_of_the_same_data_again_does_not_rebuild_the_features(prefect_server, export, tmp_path):
    from pipelines.flows import build_features_flow, ingest_flow

    settings = _settings(tmp_path)
    ingest_flow(settings, str(export))
    build_features_flow(settings)
    assert ingest_flow(settings, str(export), force=True)[0].ran  # the same export ingested again
    assert not build_features_flow(settings)[0].ran


def test_each_flow_run_leaves_its_summary_as_a_markdown_artifact(prefect_server, export, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    from pipelines.flows import ingest_flow

    ingest_flow(_settings(tmp_path), str(export))

    async def latest():
        async with get_client() as client:
            found = await client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["ingest-summary"])))
            return found

    import asyncio

    artifacts = asyncio.run(latest())
    assert artifacts and "| ingest | ran |" in artifacts[-1].data
    assert "accepted" in artifacts[-1].data


@pytest.mark.slow
def test_removing_the_export_folder_is_not_a_new_input_to_skip(prefect_server, export, tmp_path):
    from pipelines.flows import ingest_flow

    settings = _settings(tmp_path)
    ingest_flow(settings, str(export))
    shutil.rmtree(export)
    with pytest.raises(InputDataError):
        ingest_flow(settings, str(export))


def test_the_deployments_name_real_flows_and_valid_schedules():
    import importlib

    import yaml
    from prefect import Flow
    from prefect.client.schemas.schedules import CronSchedule

    spec = yaml.safe_load((Path(__file__).parents[1] / "prefect.yaml").read_text(encoding="utf-8"))
    names = {}
    for deployment in spec["deployments"]:
        path, attr = deployment["entrypoint"].split(":")
        module = path.removesuffix(".py").replace("/", ".")
        found = getattr(importlib.import_module(module), attr)
        assert isinstance(found, Flow)
        names[deployment["name"]] = found.name
        for schedule in deployment["schedules"]:
            CronSchedule(cron=schedule["cron"], timezone=schedule["timezone"])
    assert names == {"weekly-refresh": "refresh", "monthly-train": "train"}


@pytest.mark.slow
def test_refresh_scores_with_the_champion_and_a_rerun_is_a_no_op(prefect_server, model_warehouse, tmp_path):
    from pipelines.flows import refresh_flow, train_flow

    raw = model_warehouse.parent / "raw"
    settings = _settings(tmp_path, backtest_months=2, tuning_trials=0, bootstrap_draws=10)
    refresh_flow(settings, str(raw))  # no champion yet: ingest and features only
    trained = train_flow(settings, entities=["village"])
    assert trained[0].ran and any("promoted" in line for line in trained[0].lines)
    first = refresh_flow(settings, str(raw))
    assert [(o.step, o.ran) for o in first] == [("ingest", False), ("build_features", False), ("score", True),
                                                ("drift", True), ("live_record", True)]
    scores = pd.read_parquet(settings.warehouse_dir / "scores_village.parquet")
    features = pd.read_parquet(settings.warehouse_dir / "features_village.parquet")
    assert len(scores) == features["village_id"].nunique() and scores["probability"].between(0, 1).all()
    assert (scores["snapshot"] == features["snapshot"].max()).all() and scores["rank"].min() == 1
    assert "no champion of project-risk yet" in " ".join(first[2].lines)
    drift = (settings.warehouse_dir / "drift_village.json").read_text(encoding="utf-8")
    assert '"model_version": "1"' in drift and '"psi"' in drift
    again = refresh_flow(settings, str(raw))
    assert not any(o.ran for o in again)


@pytest.mark.slow
def test_features_built_on_a_two_worker_dask_cluster_equal_the_single_process_ones(prefect_server, export, tmp_path):
    from pipelines.cluster import task_runner
    from pipelines.flows import build_features_flow, ingest_flow
    from pipelines.jobs import features_job

    settings = _settings(tmp_path, n_jobs=2)
    ingest_flow(settings, str(export))
    features_job(settings)
    single = {e: pd.read_parquet(settings.warehouse_dir / f"features_{e}.parquet") for e in ("village", "project")}
    outcomes = build_features_flow.with_options(task_runner=task_runner(settings, local=True))(settings, force=True)
    assert "built by county on the Dask cluster" in outcomes[0].lines
    for entity, frame in single.items():
        pd.testing.assert_frame_equal(pd.read_parquet(settings.warehouse_dir / f"features_{entity}.parquet"), frame,
                                      check_exact=True)
