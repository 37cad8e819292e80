"""A bundle on disk: refused with a message naming the problem when damaged, edited or
foreign; models the kernels cannot score are refused at export; explanations add up."""

from __future__ import annotations

import io
import json
import shutil

import lightgbm as lgb
import numpy as np
import pytest

from models.bundle import BundleError, explain_rows, load_bundle
from models.bundle.export import BundleFacts, export_booster
from models.bundle.format import ARRAYS_FILE, META_FILE, _content_digest
from models.bundle.trees import UnsupportedModelError

FEATURES = ["unresolved_disputes_90d", "mediators", "petitions_30d", "incidents_lag_1w", "from_elsewhere"]
FACTS = BundleFacts("village", 30, (0.3, 0.15, 0.05))


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(5)
    X = rng.poisson(2.0, size=(2000, len(FEATURES))).astype(float)
    y = (X[:, 0] + X[:, 2] - X[:, 1] + rng.normal(size=2000) > 3).astype(int)
    return X, y


@pytest.fixture(scope="module")
def bundle_dir(data, tmp_path_factory):
    X, y = data
    booster = lgb.train({"objective": "binary", "verbose": -1, "num_leaves": 7}, lgb.Dataset(X, y), num_boost_round=15)
    return export_booster(booster, tmp_path_factory.mktemp("good"), FACTS, feature_names=FEATURES)


@pytest.fixture
def copy(bundle_dir, tmp_path):
    target = tmp_path / "bundle"
    shutil.copytree(bundle_dir, target)
    return target


def _rewrite_arrays(folder, change) -> None:
    """Rewrite trees.npz with ``change`` applied and its checksums updated, so that only the
    damage itself is left to find."""
    meta = json.loads((folder / META_FILE).read_text())
    with np.load(folder / ARRAYS_FILE) as npz:
        arrays = {k: npz[k] for k in npz.files}
    change(arrays)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    (folder / ARRAYS_FILE).write_bytes(buffer.getvalue())
    import hashlib

    meta["arrays"].update(bytes=len(buffer.getvalue()), sha256=hashlib.sha256(buffer.getvalue()).hexdigest())
    meta["content_sha256"] = _content_digest(meta)
    (folder / META_FILE).write_text(json.dumps(meta))


def test_a_truncated_array_file_is_refused(copy):
    data = (copy / ARRAYS_FILE).read_bytes()
    (copy / ARRAYS_FILE).write_bytes(data[: len(data) // 2])
    with pytest.raises(BundleError, match=r"trees\.npz is truncated"):
        load_bundle(copy)


def test_an_array_of_the_wrong_shape_is_refused_by_name(copy):
    _rewrite_arrays(copy, lambda a: a.update(threshold=a["threshold"][:-1]))
    with pytest.raises(BundleError, match=r"array 'threshold' is float64\[\d+\], expected float64\[\d+\]"):
        load_bundle(copy)


def test_a_child_pointing_outside_the_tree_is_refused(copy):
    _rewrite_arrays(copy, lambda a: a["left_child"].__setitem__(0, 10_000))
    with pytest.raises(BundleError, match="'left_child' points outside"):
        load_bundle(copy)


def test_a_nan_threshold_is_refused_by_name(copy):
    _rewrite_arrays(copy, lambda a: a["threshold"].__setitem__(0, np.nan))
    with pytest.raises(BundleError, match="'threshold' holds NaN"):
        load_bundle(copy)


def test_an_edited_json_is_refused(copy):
    meta = json.loads((copy / META_FILE).read_text())
    meta["level_thresholds"]["red"] = 0.9
    (copy / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="edited after export.*content_sha256"):
        load_bundle(copy)


def test_another_format_version_is_refused(copy):
    meta = json.loads((copy / META_FILE).read_text())
    meta["format_version"] = 3
    (copy / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(BundleError, match="format_version is 3, this Fengqiao reads formats 1 and 2"):
        load_bundle(copy)


def test_broken_json_and_missing_fields_are_refused(copy):
    meta = json.loads((copy / META_FILE).read_text())
    (copy / META_FILE).write_text(json.dumps({k: v for k, v in meta.items() if k != "calibration"}))
    with pytest.raises(BundleError, match="lacks the field.*calibration"):
        load_bundle(copy)
    (copy / META_FILE).write_text("{not json")
    with pytest.raises(BundleError, match="not valid JSON"):
        load_bundle(copy)


def test_an_array_file_that_does_not_match_its_checksum_is_refused(copy):
    data = bytearray((copy / ARRAYS_FILE).read_bytes())
    data[-100] ^= 0xFF
    (copy / ARRAYS_FILE).write_bytes(bytes(data))
    with pytest.raises(BundleError, match="does not match its checksum"):
        load_bundle(copy)


@pytest.mark.parametrize("params, message", [
    ({"objective": "regression"}, "binary models only"),
    ({"objective": "multiclass", "num_class": 3}, "binary models only"),
    ({"objective": "binary", "linear_tree": True}, "linear"),
    ({"objective": "binary", "min_data_per_group": 5, "cat_smooth": 1}, "categorical split"),
])
def test_models_the_kernels_cannot_score_are_refused_at_export(data, tmp_path, params, message):
    X, y = data
    label = X[:, 3] % 3 if params["objective"] == "multiclass" else y
    categorical = [3] if "cat_smooth" in params else "auto"
    if "cat_smooth" in params:
        label = np.isin(X[:, 3], [1, 4]).astype(int)  # a label only a categorical split of feature 3 fits
    booster = lgb.train({"verbose": -1, "num_leaves": 7, **params},
                        lgb.Dataset(X, label, categorical_feature=categorical), num_boost_round=5)
    with pytest.raises(UnsupportedModelError, match=message):
        export_booster(booster, tmp_path, FACTS, feature_names=FEATURES)


def test_the_bundle_records_groups_templates_and_actionable_levers(bundle_dir):
    bundle = load_bundle(bundle_dir)
    assert bundle.feature_groups == ["unresolved_backlog", "capacity", "petitions", "incident_history", "other"]
    assert bundle.actionable == [False, True, False, False, False]
    assert bundle.meta["reason_templates"]["mediators"]["zh"].count("{value}") == 1
    assert bundle.meta["groups"]["capacity"] == {"zh": "基层治理能力", "en": "size and local capacity"}
    assert bundle.version == "file" and bundle.entity == "village"


def test_explanations_add_up_to_the_score_a_reader_sees(bundle_dir, data):
    bundle = load_bundle(bundle_dir)
    X = data[0][:40]
    medians = np.tile(np.median(data[0], axis=0), (len(X), 1))
    medians[:, 1] = np.nan
    contributions = bundle.contributions(X)
    for explanation, p, contrib in zip(explain_rows(bundle, X, medians), bundle.probability(X), contributions):
        assert explanation.probability == pytest.approx(p, abs=1e-15)
        raising = [f for f in np.argsort(-contrib[:-1], kind="stable")[:3] if contrib[f] > 0]
        assert [r.feature for r in explanation.reasons] == [bundle.feature_names[f] for f in raising]
        for reason, f in zip(explanation.reasons, raising):
            without = bundle.probability_from_raw(np.array([explanation.raw_score - contrib[f]]))[0]
            assert reason.probability_change == pytest.approx(explanation.probability - without, abs=1e-15)
        changes = sum(g.probability_change for g in explanation.groups)
        assert explanation.base_probability + changes == pytest.approx(explanation.probability, abs=1e-12)
        assert sum(g.log_odds for g in explanation.groups) == pytest.approx(
            explanation.raw_score - bundle.bias, abs=1e-9)
        assert [abs(g.log_odds) for g in explanation.groups] == sorted((abs(g.log_odds) for g in explanation.groups),
                                                                       reverse=True)
        assert len(explanation.reasons) <= 3 and all(r.log_odds > 0 for r in explanation.reasons)
        assert explanation.level in ("red", "orange", "yellow", "blue")
        for reason in explanation.reasons:
            assert "county median" in reason.text_en and "县中位数" in reason.text_zh


def test_a_reason_shows_the_value_and_the_county_median(bundle_dir):
    bundle = load_bundle(bundle_dir)
    row = np.array([[9.0, 0.0, 7.0, 3.0, 1.0]])
    reasons = explain_rows(bundle, row, np.array([[1.0, 2.0, 1.0, 0.0, 1.0]]))[0].reasons
    first = next(r for r in reasons if r.feature == "unresolved_disputes_90d")
    assert first.value == 9 and first.county_median == 1
    assert first.text_en.startswith("9 ") and first.text_en.endswith("(county median 1)")


def test_levels_follow_the_bundle_thresholds(bundle_dir):
    bundle = load_bundle(bundle_dir)
    assert bundle.levels(np.array([0.5, 0.3, 0.2, 0.06, 0.01])).tolist() == ["red", "red", "orange", "yellow", "blue"]


def test_rows_of_the_wrong_width_are_refused(bundle_dir):
    with pytest.raises(ValueError, match="expected rows of 5 features"):
        load_bundle(bundle_dir).raw_score(np.zeros((2, 4)))
