"""The bundle's numba kernels are exact: against LightGBM's own predict and pred_contrib on
real models, and against brute-force Shapley values on random hand-made trees."""

from __future__ import annotations

import lightgbm as lgb
import numba
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.bundle.export import BundleFacts, export_booster
from models.bundle.scoring import load_bundle
from tests.bundle_reference import (
    hand_bundle,
    random_forest,
    random_tree,
    raw_score,
    shapley_contributions,
)

FACTS = BundleFacts("village", 30, (0.3, 0.15, 0.05))


def _training_data(seed: int = 0, n: int = 3000, f: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Features with NaNs, exact zeros, a coarse grid (so that rows sit on thresholds) and a
    label that depends on them."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, f))
    X[:, 1] = np.round(X[:, 1], 1)
    X[:, 2] = np.where(rng.random(n) < 0.3, 0.0, X[:, 2])
    X[:, 3] = rng.integers(0, 5, n)
    X[rng.random((n, f)) < 0.08] = np.nan
    signal = np.nan_to_num(X[:, 0]) + 0.6 * np.nan_to_num(X[:, 1]) ** 2 - 0.4 * np.nan_to_num(X[:, 3])
    y = (signal + np.isnan(X[:, 4]) + rng.normal(size=n) > 0.8).astype(int)
    return X, y


def _probe_rows(booster: lgb.Booster, X: np.ndarray) -> np.ndarray:
    """Training rows, every split threshold exactly (and a hair either side), NaN, ±0, values
    below kZeroThreshold, and extremes never seen in training."""
    f = X.shape[1]
    rows = [X[:300], np.full((1, f), np.nan), np.zeros((1, f)), np.full((1, f), -0.0), np.full((1, f), 1e-36),
            np.full((1, f), -1e-36), np.full((1, f), 1e300), np.full((1, f), -1e300)]
    rng = np.random.default_rng(1)
    for tree in booster.dump_model()["tree_info"][:20]:
        stack = [tree["tree_structure"]]
        while stack:
            node = stack.pop()
            if "split_feature" not in node:
                continue
            stack += [node["left_child"], node["right_child"]]
            for value in (node["threshold"], np.nextafter(node["threshold"], np.inf),
                          np.nextafter(node["threshold"], -np.inf)):
                row = X[rng.integers(len(X))].copy()
                row[node["split_feature"]] = value
                rows.append(row[None, :])
    return np.vstack(rows)


MODELS = {
    "shallow": {"num_leaves": 4, "max_depth": 2},
    "default": {"num_leaves": 31},
    "deep leaf-wise": {"num_leaves": 63, "min_data_in_leaf": 3, "max_depth": -1},
    "zero as missing": {"num_leaves": 15, "zero_as_missing": True},
    "no missing handling": {"num_leaves": 15, "use_missing": False},
    "wide (trees of over 64 splits)": {"num_leaves": 150, "min_data_in_leaf": 3, "max_depth": -1},
}


@pytest.fixture(scope="module", params=list(MODELS))
def model_and_bundle(request, tmp_path_factory):
    X, y = _training_data()
    booster = lgb.train({"objective": "binary", "verbose": -1, "seed": 3, **MODELS[request.param]},
                        lgb.Dataset(X, y), num_boost_round=40)
    folder = export_booster(booster, tmp_path_factory.mktemp("bundle"), FACTS)
    return booster, load_bundle(folder), _probe_rows(booster, X)


def test_raw_scores_equal_lightgbm_predict_within_1e_9(model_and_bundle):
    booster, bundle, rows = model_and_bundle
    assert np.abs(bundle.raw_score(rows) - booster.predict(rows, raw_score=True)).max() <= 1e-9


def test_single_rows_score_as_the_batch_does(model_and_bundle):
    _, bundle, rows = model_and_bundle
    batch = bundle.raw_score(rows)[:40]
    assert np.array_equal([bundle.raw_score(row)[0] for row in rows[:40]], batch)
    assert np.array_equal([bundle.raw_score(rows[i:i + 1])[0] for i in range(40)], batch)  # a request's 2-D row
    read_only = rows[:40].copy()
    read_only.setflags(write=False)
    assert np.array_equal(bundle.raw_score(read_only[:3]), batch[:3])


def test_single_row_contributions_are_the_batchs_on_any_thread_count(model_and_bundle):
    """A few rows take the path that spreads each row's trees over numba's threads: the numbers
    are the batch's to the bit, whether it runs on one thread or two."""
    _, bundle, rows = model_and_bundle
    batch = bundle.contributions(rows)[:3]
    before = numba.get_num_threads()
    try:
        for threads in (1, min(2, numba.config.NUMBA_NUM_THREADS)):
            numba.set_num_threads(threads)
            assert np.array_equal(bundle.contributions(rows[:3]), batch)
            assert np.array_equal(bundle.contributions(rows[1]), batch[1:2])
    finally:
        numba.set_num_threads(before)


def test_contributions_equal_lightgbm_pred_contrib_within_1e_9(model_and_bundle):
    booster, bundle, rows = model_and_bundle
    assert np.abs(bundle.contributions(rows) - booster.predict(rows, pred_contrib=True)).max() <= 1e-9


def test_contributions_sum_to_the_raw_score(model_and_bundle):
    _, bundle, rows = model_and_bundle
    assert np.abs(bundle.contributions(rows).sum(axis=1) - bundle.raw_score(rows)).max() <= 1e-9


def test_identity_bundle_probability_is_lightgbms(model_and_bundle):
    booster, bundle, rows = model_and_bundle
    assert np.abs(bundle.probability(rows) - booster.predict(rows)).max() <= 1e-12


def test_the_models_cover_every_missing_type():
    X, y = _training_data()
    seen = set()
    for params in MODELS.values():
        booster = lgb.train({"objective": "binary", "verbose": -1, **params}, lgb.Dataset(X, y), num_boost_round=5)
        stack = [t["tree_structure"] for t in booster.dump_model()["tree_info"]]
        while stack:
            node = stack.pop()
            if "split_feature" in node:
                seen.add(node["missing_type"])
                stack += [node["left_child"], node["right_child"]]
    assert seen == {"None", "Zero", "NaN"}


VALUES = [-1.0, -1e-36, 0.0, 1e-36, 0.5, 1.0, 2.0]
"""Thresholds of the hand-made trees; rows draw from these (ties), NaN and extremes."""


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_kernels_agree_with_brute_force_shapley_on_random_trees(data):
    n_features = 3
    arrays = random_tree(data.draw, n_features, max_depth=5, thresholds=VALUES)
    bundle = hand_bundle(arrays, n_features)
    x = np.array([data.draw(st.sampled_from([*VALUES, np.nan, 1e300, -1e300, 0.25])) for _ in range(n_features)])
    assert bundle.raw_score(x)[0] == pytest.approx(raw_score(arrays, x), abs=1e-12)
    expected = shapley_contributions(arrays, x, n_features)
    assert np.abs(bundle.contributions(x)[0] - expected).max() <= 1e-12


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_kernels_agree_with_the_references_on_random_forests_in_batch(data):
    """Trees of different depths (lone leaves too) walked in lockstep and summed in tree order;
    enough rows for the parallel kernels."""
    n_features = 3
    arrays = random_forest(data.draw, n_features, data.draw(st.integers(1, 6)), max_depth=4, thresholds=VALUES)
    bundle = hand_bundle(arrays, n_features)
    cells = st.sampled_from([*VALUES, np.nan, 1e300, -1e300, 0.25, -np.inf, np.inf])
    X = np.array([[data.draw(cells) for _ in range(n_features)] for _ in range(12)])
    assert np.abs(bundle.raw_score(X) - [raw_score(arrays, x) for x in X]).max() <= 1e-12
    assert np.abs(bundle.contributions(X) - [shapley_contributions(arrays, x, n_features) for x in X]).max() <= 1e-12
