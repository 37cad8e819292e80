"""Monitoring after the fact: drift of a new snapshot from the training data, and the live
model's record once labels mature."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from models.drift import drift_report, psi
from models.live import live_record


def test_psi_is_zero_for_the_same_distribution_and_grows_with_a_shift():
    rng = np.random.default_rng(0)
    reference = rng.normal(size=20_000)
    assert psi(reference, reference) == 0.0
    assert psi(reference, rng.normal(size=20_000)) < 0.01
    small, large = psi(reference, rng.normal(0.3, size=20_000)), psi(reference, rng.normal(1.0, size=20_000))
    assert 0.05 < small < large and large > 0.25


def test_psi_sees_a_column_that_starts_arriving_empty():
    rng = np.random.default_rng(1)
    reference = rng.poisson(3, size=5_000).astype(float)
    current = reference.copy()
    current[:2_500] = np.nan
    assert psi(reference, current) > 1.0


def test_drift_report_groups_features_and_warns_on_shift_missing_values_and_label_rate():
    rng = np.random.default_rng(2)
    training = pd.DataFrame({"disputes_30d": rng.poisson(2, 4000).astype(float),
                             "petitions_30d": rng.poisson(1, 4000).astype(float),
                             "month": rng.integers(1, 13, 4000).astype(float)})
    current = pd.DataFrame({"disputes_30d": rng.poisson(6, 500).astype(float),
                            "petitions_30d": np.where(rng.random(500) < 0.3, np.nan, rng.poisson(1, 500)),
                            "month": rng.integers(1, 13, 500).astype(float)})
    groups = {"disputes_30d": "unresolved_backlog", "petitions_30d": "petitions", "month": "calendar"}
    report = drift_report(training, current, groups, np.r_[np.ones(200), np.zeros(3800)], np.ones(100), "2026-11-23")
    by_group = report.groups.set_index("group")["psi_max"]
    assert by_group["unresolved_backlog"] > 0.25 > by_group["calendar"]
    text = " ".join(report.warnings)
    assert "disputes_30d" in text and "petitions_30d missing in" in text and "label rate" in text
    assert "month" not in text


def test_live_record_scores_only_snapshots_whose_labels_are_known_with_the_backtest_metrics():
    rng = np.random.default_rng(3)
    ids = [f"v{i}" for i in range(200)]
    snapshots = pd.to_datetime(["2026-10-05", "2026-10-12", "2026-11-23"])
    history = pd.DataFrame([(i, s, p, "4") for s in snapshots for i, p in zip(ids, rng.random(len(ids)))],
                           columns=["village_id", "snapshot", "probability", "model_version"])
    labels = history[["village_id", "snapshot"]].copy()
    labels["label"] = (rng.random(len(labels)) < history["probability"] * 0.3).astype(float)
    labels.loc[labels["snapshot"] == snapshots[-1], "label"] = np.nan  # window still open
    record = live_record(history, labels, "village_id", budget=0.05)
    assert list(record["snapshot"]) == list(snapshots[:2])
    first = history["snapshot"] == snapshots[0]
    y, p = labels.loc[first, "label"].to_numpy(), history.loc[first, "probability"].to_numpy()
    assert record.loc[0, "roc_auc"] == pytest.approx(roc_auc_score(y, p), abs=1e-12)  # one sort, not sklearn's
    assert record.loc[0, "pr_auc"] == pytest.approx(average_precision_score(y, p), abs=1e-12)
    assert record.loc[0, "incidents"] == int(y.sum()) and record.loc[0, "entities"] == 200
