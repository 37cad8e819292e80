"""Scale-out: features built by county equal the whole-city build, value for value, and
LightGBM trained on a Dask cluster scores like the single-process model."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from features.engine import EngineOptions, build_features
from features.engine.catalogue import default_catalogue
from features.engine.partition import build_partitioned, county_parts
from features.engine.store import read_feature_inputs


@pytest.fixture(scope="module")
def city_tables(model_warehouse):
    return read_feature_inputs(model_warehouse, default_catalogue(), ["village_id", "project_id"])


def assert_same_table(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    for column in a.columns:
        pd.testing.assert_series_equal(a[column], b[column], check_exact=True, obj=column)


def test_villages_built_by_county_equal_the_whole_city_build(city_tables):
    whole = build_features(city_tables, "village")
    parts = build_partitioned(city_tables, "village")
    assert_same_table(whole.frame, parts.frame)
    assert parts.summary.rows == whole.summary.rows and parts.summary.positive_labels == whole.summary.positive_labels


def test_a_county_part_holds_its_villages_their_neighbours_and_only_their_events(city_tables):
    regions = city_tables["regions"]
    parts = county_parts(city_tables, default_catalogue().entity("village"), EngineOptions())
    assert sorted(np.concatenate([p.own for p in parts])) == sorted(regions["village_id"].astype(str))
    for part in parts:
        places = set(part.tables["regions"]["village_id"].astype(str))
        assert set(part.own) <= places
        assert set(part.tables["incidents"]["village_id"].astype(str)) <= places
        halo = part.tables["regions"][~part.tables["regions"]["village_id"].isin(part.own)]
        assert (halo["county_id"].astype(str) != part.county).all()


def test_projects_are_built_whole_through_the_same_entry(city_tables):
    assert_same_table(build_features(city_tables, "project").frame, build_partitioned(city_tables, "project").frame)


@pytest.mark.slow
def test_lightgbm_trained_on_a_two_worker_dask_cluster_scores_like_the_local_model():
    from distributed import Client, LocalCluster

    from models.estimators import LightGBMRisk

    rng = np.random.default_rng(3)
    n = 6000
    X = pd.DataFrame({"backlog": rng.poisson(2, n).astype(float), "incidents_365d": rng.poisson(1, n).astype(float),
                      "noise": rng.normal(size=n)})
    y = (rng.random(n) < 1 / (1 + np.exp(-(-3 + 0.5 * X["backlog"] + 0.6 * X["incidents_365d"])))).astype(int)
    fit, test = np.arange(n) < 4000, np.arange(n) >= 4000
    local = LightGBMRisk(max_trees=60, early_stopping_weeks=0).fit(X[fit], y[fit])
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        remote = LightGBMRisk(max_trees=60, early_stopping_weeks=0, distributed=True).fit(X[fit], y[fit])
    assert remote.booster_.num_trees() == 60
    auc_local = roc_auc_score(y[test], local.predict_proba(X[test])[:, 1])
    auc_remote = roc_auc_score(y[test], remote.predict_proba(X[test])[:, 1])
    assert abs(auc_local - auc_remote) < 0.02, (auc_local, auc_remote)
