"""The blend of trees and a logistic regression (``blend``): its linear part fits, keeps the
known signs, exports to a bundle that scores and explains it exactly, and a damaged linear
part is refused by name."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from test_bundle_format import _rewrite_arrays

from models.bundle import BundleError, explain_rows, load_bundle
from models.bundle.export import BundleFacts, export_model
from models.bundle.format import META_FILE, _content_digest
from models.catalogue import build_model
from models.estimators import LogisticRisk, signed_log1p

FEATURES = ["unresolved_disputes_90d", "mediators", "petitions_30d", "incidents_lag_1w", "from_elsewhere"]


def panel(weeks: int = 50, entities: int = 120, seed: int = 3) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Weekly rows where disputes and petitions raise the risk and mediators lower it; NaNs,
    zeros and a few negative values."""
    rng = np.random.default_rng(seed)
    snaps = np.repeat(pd.date_range("2024-01-01", periods=weeks, freq="7D").to_numpy(), entities)
    n = len(snaps)
    X = pd.DataFrame({"unresolved_disputes_90d": rng.poisson(2, n), "mediators": rng.poisson(3, n),
                      "petitions_30d": rng.poisson(0.5, n), "incidents_lag_1w": rng.poisson(0.2, n),
                      "from_elsewhere": rng.normal(size=n)}).astype(float)
    X.loc[rng.random(n) < 0.08, "petitions_30d"] = np.nan
    logit = -3.2 + 0.45 * X["unresolved_disputes_90d"] + 0.8 * X["petitions_30d"].fillna(0) - 0.2 * X["mediators"]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y, snaps


@pytest.fixture(scope="module")
def blended(tmp_path_factory):
    X, y, snaps = panel()
    model = build_model("blend", "village", FEATURES, 30, lightgbm_params={"num_leaves": 7}).fit(X, y, snapshot=snaps)
    folder = export_model(model, tmp_path_factory.mktemp("blend"), BundleFacts("village", 30, (0.3, 0.15, 0.05)))
    probe = X.iloc[-400:].copy()
    probe.iloc[:5] = [[0, 0, 0, 0, 0], [np.nan] * 5, [40, 0, 12, 3, -5], [1e-40, -1e-40, 0, 0, 0], [-2, 50, 0, 0, 9]]
    return model, folder, probe


def test_the_linear_part_is_the_scikit_learn_pipeline_as_arrays():
    X, y, _ = panel(weeks=20)
    model = LogisticRisk().fit(X, y)
    pipeline = make_pipeline(FunctionTransformer(signed_log1p), SimpleImputer(strategy="median", keep_empty_features=True),
                             StandardScaler(), LogisticRegression(C=0.1, solver="newton-cholesky")).fit(X.to_numpy(), y)
    np.testing.assert_allclose(model.raw_score(X), pipeline.decision_function(X.to_numpy()), rtol=0, atol=1e-9)
    assert model.contributions(X).sum(axis=1).add(model.intercept_).to_numpy() == pytest.approx(model.raw_score(X))


def test_a_lever_whose_coefficient_comes_out_harmful_is_left_out():
    X, _, _ = panel(weeks=20)
    rng = np.random.default_rng(0)
    tension = rng.poisson(2, len(X))  # unseen: mediators are sent where it burns
    X["mediators"] = tension + rng.poisson(1, len(X))
    y = (rng.random(len(X)) < 1 / (1 + np.exp(3 - 0.4 * X["unresolved_disputes_90d"] - 0.6 * tension))).astype(int)
    free = LogisticRisk().fit(X, y)
    signed = LogisticRisk(monotone={"mediators": -1, "unresolved_disputes_90d": 1}).fit(X, y)
    assert free.coef_[1] > 0
    assert signed.left_out_ == ["mediators"] and signed.coef_[1] == 0 and signed.coef_[0] > 0

    alone = LogisticRisk(columns=["mediators"], monotone={"mediators": -1}).fit(X, y)
    assert alone.left_out_ == ["mediators"] and alone.coef_[0] == 0
    assert alone.predict_proba(X)[:, 1] == pytest.approx(np.full(len(X), y.mean()))


def test_the_blend_bundle_scores_and_explains_the_model_exactly(blended):
    model, folder, probe = blended
    bundle = load_bundle(folder)
    assert bundle.meta["format_version"] == 2 and bundle.meta["linear"]["tree_weight"] == 0.5
    rows = probe.to_numpy()
    np.testing.assert_allclose(bundle.raw_score(rows), model.model_.raw_score(probe), rtol=0, atol=1e-9)
    np.testing.assert_allclose(bundle.probability(rows), model.predict_proba(probe)[:, 1], rtol=0, atol=1e-9)
    contributions = bundle.contributions(rows)
    np.testing.assert_allclose(contributions[:, :-1], model.model_.contributions(probe).to_numpy(), rtol=0, atol=1e-9)
    np.testing.assert_allclose(contributions.sum(axis=1), bundle.raw_score(rows), rtol=0, atol=1e-9)
    assert contributions[:, -1] == pytest.approx(bundle.bias)
    for i in range(4):  # a request's single row takes the fast paths
        assert bundle.raw_score(rows[i:i + 1])[0] == pytest.approx(bundle.raw_score(rows)[i], abs=1e-12)
        np.testing.assert_allclose(bundle.contributions(rows[i:i + 1])[0], contributions[i], rtol=0, atol=1e-12)
    for explanation, p in zip(explain_rows(bundle, rows[:20], np.full((20, 5), np.nan)), bundle.probability(rows)):
        assert explanation.probability == pytest.approx(p, abs=1e-15)
        changes = sum(g.probability_change for g in explanation.groups)
        assert explanation.base_probability + changes == pytest.approx(explanation.probability, abs=1e-12)


def test_a_bundle_of_trees_alone_stays_format_1(tmp_path):
    trees_only = build_model("lightgbm", "village", FEATURES, 30, lightgbm_params={"num_leaves": 7})
    X, y, snaps = panel(weeks=30)
    folder = export_model(trees_only.fit(X, y, snapshot=snaps), tmp_path, BundleFacts("village", 30, (0.3, 0.15, 0.05)))
    meta = json.loads((folder / META_FILE).read_text())
    assert meta["format_version"] == 1 and "linear" not in meta


@pytest.mark.parametrize("damage, message", [
    (lambda a: a.update(linear_coef=a["linear_coef"][:-1]), r"array 'linear_coef' is float64\[4\], expected float64\[5\]"),
    (lambda a: a.pop("linear_fill"), "lacks the array 'linear_fill' of its linear part"),
    (lambda a: a["linear_center"].__setitem__(0, np.inf), "'linear_center' holds a value that is not a finite number"),
])
def test_a_damaged_linear_part_is_refused_by_name(blended, tmp_path, damage, message):
    copy = shutil.copytree(blended[1], tmp_path / "bundle")
    _rewrite_arrays(copy, damage)
    with pytest.raises(BundleError, match=message):
        load_bundle(copy)


@pytest.mark.parametrize("edit, message", [
    (lambda m: m.update(format_version=1), "field linear needs format_version 2"),
    (lambda m: m["linear"].update(transform="log"), "linear.transform must be 'signed_log1p'"),
    (lambda m: m["linear"].update(intercept=None), "linear.intercept must be a finite number"),
])
def test_a_linear_part_the_kernels_cannot_trust_is_refused(blended, tmp_path, edit, message):
    copy = shutil.copytree(blended[1], tmp_path / "bundle")
    meta = json.loads((copy / META_FILE).read_text())
    edit(meta)
    meta["content_sha256"] = _content_digest(meta)
    (copy / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(BundleError, match=message):
        load_bundle(copy)
