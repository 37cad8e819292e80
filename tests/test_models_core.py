"""Metrics, splits, calibration, levels and estimators on hand-made panels (no simulation)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.metrics import average_precision_score, brier_score_loss, log_loss, roc_auc_score

from models.backtest import rolling_folds, run_backtest
from models.calibration import CalibratedRisk, ScoreCalibrator
from models.catalogue import build_model
from models.estimators import LightGBMRisk, LogisticRisk, RecentIncidentsRisk
from models.featuremeta import monotone_sign
from models.levels import levels_by_budget, levels_by_threshold
from models.metrics import expected_calibration_error, ranking_figures, score_metrics, top_k_mask
from models.timesplit import as_datetime64, held_out_split, take_rows


def panel(weeks: int = 60, entities: int = 150, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """A weekly panel where risk rises with ``backlog`` and ``incidents_365d``."""
    rng = np.random.default_rng(seed)
    snaps = np.repeat(pd.date_range("2024-01-01", periods=weeks, freq="7D").to_numpy(), entities)
    n = len(snaps)
    X = pd.DataFrame({"backlog": rng.poisson(2, n).astype(float), "incidents_365d": rng.poisson(1, n).astype(float),
                      "incidents_90d": rng.poisson(0.3, n).astype(float), "noise": rng.normal(size=n)})
    logit = -3.5 + 0.5 * X["backlog"] + 0.6 * X["incidents_365d"]
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y, snaps


def test_metrics_equal_scikit_learn_on_fixed_inputs():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 400)
    p = np.clip(rng.random(400) * 0.5 + 0.3 * y, 0.01, 0.99)
    snaps = np.repeat(np.arange(4), 100)
    m = score_metrics(y, p, snaps, budget=0.05)
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p))
    assert m["pr_auc"] == pytest.approx(average_precision_score(y, p))
    assert m["brier"] == pytest.approx(brier_score_loss(y, p))
    assert m["log_loss"] == pytest.approx(log_loss(y, p))
    # precision@k by hand: the top 5 of each snapshot of 100
    top = np.concatenate([np.argsort(-p[s * 100:(s + 1) * 100])[:5] + s * 100 for s in range(4)])
    assert m["precision_at_k"] == pytest.approx(y[top].mean())
    assert m["recall_at_k"] == pytest.approx(y[top].sum() / y.sum())
    assert m["pai"] == pytest.approx((y[top].sum() / y.sum()) / 0.05)


@pytest.mark.parametrize("seed", range(6))
def test_ranking_figures_equal_scikit_learn_with_ties(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 3000))
    y = (rng.random(n) < rng.uniform(0.01, 0.5)).astype(int)
    y[:2] = [0, 1]
    p = np.round(rng.random(n) * 0.4 + 0.3 * y * rng.random(n), int(rng.integers(1, 4)))  # many ties
    roc, ap = ranking_figures(y, p)
    assert roc == pytest.approx(roc_auc_score(y, p), abs=1e-12)
    assert ap == pytest.approx(average_precision_score(y, p), abs=1e-12)
    m = score_metrics(y, np.clip(p, 0.01, 0.99), np.zeros(n), budget=0.05)
    assert m["log_loss"] == pytest.approx(log_loss(y, np.clip(p, 0.01, 0.99)), abs=1e-12)
    assert m["brier"] == pytest.approx(brier_score_loss(y, np.clip(p, 0.01, 0.99)), abs=1e-12)


def test_expected_calibration_error_is_zero_when_each_bin_matches_and_known_otherwise():
    y = np.array([0, 0, 0, 1] * 25)
    assert expected_calibration_error(y, np.full(100, 0.25), bins=1) == pytest.approx(0.0)
    assert expected_calibration_error(y, np.full(100, 0.5), bins=1) == pytest.approx(0.25)


def test_top_k_mask_alerts_exactly_the_budget_per_snapshot():
    p = np.array([0.9, 0.1, 0.5, 0.4, 0.3, 0.8, 0.2, 0.7])
    groups = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    mask = top_k_mask(p, groups, 0.5)
    assert mask.tolist() == [True, False, True, False, False, True, False, True]


def test_a_backtest_never_trains_on_a_label_window_that_overlaps_its_test_fold():
    X, y, snaps = panel(weeks=60)
    horizon = 30
    folds = rolling_folds(snaps, months=3)
    assert len(folds) == 3 and all(a.test_end == b.test_start for a, b in zip(folds, folds[1:]))
    seen = []

    class Spy(LogisticRisk):
        def fit(self, X, y, snapshot=None):
            seen.append(as_datetime64(snapshot).max())
            return super().fit(X, y, snapshot)

    preds = run_backtest(X, y, snaps, {"spy": Spy()}, folds, horizon)
    for fold, last_trained in zip(folds, sorted(seen)):  # fitted latest fold first
        assert last_trained + np.timedelta64(horizon, "D") <= fold.test_start
        # the latest admissible week was used: no gap wider than needed
        assert last_trained + np.timedelta64(horizon + 7, "D") > fold.test_start
    assert (preds["train_last_snapshot"] + pd.Timedelta(days=horizon) <= preds["snapshot"]).all()
    assert preds.groupby("fold")["snapshot"].min().is_monotonic_increasing


def test_a_backtest_fitted_in_parallel_equals_the_sequential_one():
    X, y, snaps = panel(weeks=40)
    folds = rolling_folds(as_datetime64(snaps), months=3)
    models = {"lightgbm": LightGBMRisk(max_trees=40), "logistic": LogisticRisk(),
              "recent": RecentIncidentsRisk(count="incidents_365d", tie_break="incidents_90d")}
    one = run_backtest(X, y, snaps, models, folds, 30)
    two = run_backtest(X, y, snaps, models, folds, 30, n_jobs=2)
    pd.testing.assert_frame_equal(one, two)
    assert list(one.columns[5:]) == list(models)


def test_every_lightgbm_call_leaves_lightgbms_process_wide_thread_count_at_n_jobs():
    """LightGBM keeps its thread count in one process-wide variable that every call sets. A
    prediction that named none set it to all cores while another thread built a booster, and
    the backtest crashed with SIGSEGV; the variable is read here to hold every call to n_jobs."""
    import ctypes

    import lightgbm as lgb

    def lightgbm_threads() -> int:
        return ctypes.c_int.in_dll(lgb.basic._LIB, "LGBM_DEFAULT_NUM_THREADS").value

    X, y, snaps = panel(weeks=30, entities=60)
    other = lgb.train({"objective": "binary", "verbose": -1}, lgb.Dataset(X, y), 2)
    model = LightGBMRisk(max_trees=20, horizon_days=14)
    for call in (lambda: model.fit(X, y, snapshot=snaps), lambda: model.predict_proba(X),
                 lambda: model.contributions(X)):
        other.predict(X)  # names no thread count: all cores
        assert lightgbm_threads() == -1
        call()
        assert lightgbm_threads() == 1


def test_calibration_is_fitted_on_held_out_rows_only():
    X, y, snaps = panel(weeks=40)
    fitted_on = {}

    class Recorder(LightGBMRisk):
        def fit(self, X, y, snapshot=None):
            fitted_on["model"] = X.index.to_numpy()
            return super().fit(X, y, snapshot)

    model = CalibratedRisk(Recorder(max_trees=50, early_stopping_weeks=0), calibration_weeks=8, horizon_days=30).fit(X, y, snaps)
    cal = model.calibration_rows_
    assert set(cal).isdisjoint(fitted_on["model"])
    cal_snaps = as_datetime64(snaps)[cal]
    model_snaps = as_datetime64(snaps)[fitted_on["model"]]
    assert model_snaps.max() + np.timedelta64(30, "D") <= cal_snaps.min()
    assert len(np.unique(cal_snaps)) == 8 and cal_snaps.max() == as_datetime64(snaps).max()
    # scored rows later than the calibration slice played no part: changing their labels changes nothing
    p = model.predict_proba(X)[:, 1]
    assert np.all((p > 0) & (p < 1))


def test_the_calibrator_learns_from_its_rows_and_auto_picks_the_lower_held_out_log_loss():
    rng = np.random.default_rng(3)
    raw = rng.random(4000)
    y = (rng.random(4000) < raw**2).astype(int)  # true probability is raw squared
    snaps = np.repeat(np.arange(8), 500)
    cal = ScoreCalibrator("auto").fit(raw, y, snaps)
    assert cal.method_ in ("isotonic", "platt")
    assert cal.validation_log_loss_[cal.method_] == min(cal.validation_log_loss_.values())
    q = cal.transform(np.array([0.2, 0.5, 0.9]))
    assert q == pytest.approx([0.04, 0.25, 0.81], abs=0.06)


def test_auto_calibration_takes_platt_on_a_slice_too_small_for_isotonic():
    rng = np.random.default_rng(3)
    raw = rng.random(900)
    y = (rng.random(900) < raw**2).astype(int)
    cal = ScoreCalibrator("auto").fit(raw, y, np.repeat(np.arange(6), 150))
    assert cal.method_ == "platt" and cal.validation_log_loss_ == {}


def test_held_out_split_leaves_a_gap_of_one_horizon():
    snaps = np.repeat(pd.date_range("2024-01-01", periods=20, freq="7D").to_numpy(), 3)
    fit, held = held_out_split(snaps, weeks=4, horizon_days=30)
    assert as_datetime64(snaps)[fit].max() + np.timedelta64(30, "D") <= as_datetime64(snaps)[held].min()
    with pytest.raises(ValueError, match="too few snapshots"):
        held_out_split(snaps[:6], weeks=4, horizon_days=30)


def test_a_time_split_of_a_sorted_table_shares_its_memory_and_any_other_split_is_a_copy():
    X = pd.DataFrame(np.arange(40, dtype=np.float32).reshape(10, 4), columns=list("abcd"))
    run = np.zeros(10, dtype=bool)
    run[3:7] = True
    sliced = take_rows(X, run)
    pd.testing.assert_frame_equal(sliced, X[run])
    assert np.shares_memory(sliced.to_numpy(), X.to_numpy())
    scattered = run.copy()
    scattered[8] = True
    pd.testing.assert_frame_equal(take_rows(X, scattered), X[scattered])
    assert take_rows(X, np.zeros(10, dtype=bool)).empty


def test_estimators_follow_the_scikit_learn_contract():
    X, y, snaps = panel(weeks=30, entities=60)
    for model in (LightGBMRisk(max_trees=30, horizon_days=14), LogisticRisk(), RecentIncidentsRisk()):
        params = model.get_params()
        fitted = clone(model).fit(X, y, snapshot=snaps)
        assert fitted.get_params() == params  # fit does not change the constructor's arguments
        assert [k for k in vars(fitted) if k.endswith("_") and not k.startswith("_")]
        p = fitted.predict_proba(X)
        assert p.shape == (len(X), 2) and np.allclose(p.sum(axis=1), 1)


def test_monotone_constraints_hold_for_the_main_model():
    X, y, snaps = panel(weeks=30, entities=80)
    model = LightGBMRisk(max_trees=60, monotone={"backlog": 1, "incidents_365d": 1}, early_stopping_weeks=0).fit(X, y)
    grid = X.iloc[:200].copy()
    low = model.predict_proba(grid)[:, 1]
    grid["backlog"] += 3
    assert np.all(model.predict_proba(grid)[:, 1] >= low - 1e-12)


def test_levers_have_their_known_signs():
    assert [monotone_sign("village", f) for f in ("mediators", "legal_adviser", "patrols_30d",
                                                  "days_since_last_patrol", "compensation_gap")] == [-1, -1, -1, 1, 1]
    assert monotone_sign("project", "hearing_held") == -1 and monotone_sign("village", "incidents_90d") == 1


@pytest.mark.parametrize("name", ["lightgbm", "blend"])
def test_a_lever_never_raises_risk_where_deployment_confounds_it(name):
    """Teams go where trouble is: in the data more mediators come with more incidents. The
    main model must still never predict that adding mediators raises risk."""
    X, y, snaps = panel(weeks=30, entities=80)
    rng = np.random.default_rng(4)
    X["mediators"] = rng.poisson(1 + 2 * X["backlog"]).astype(float)
    model = build_model(name, "village", list(X.columns), 30).fit(X, y, snapshot=snaps)
    low = model.predict_proba(X)[:, 1]
    more = X.assign(mediators=X["mediators"] + 3)
    assert np.all(model.predict_proba(more)[:, 1] <= low + 1e-12)


def test_risk_levels_by_threshold_and_by_budget():
    p = np.array([0.5, 0.2, 0.05, 0.01])
    assert levels_by_threshold(p, (0.3, 0.1, 0.03)).tolist() == ["红", "橙", "黄", "蓝"]
    snaps = np.zeros(4)
    assert levels_by_budget(p, snaps, (0.25, 0.5, 0.75)).tolist() == ["红", "橙", "黄", "蓝"]
    with pytest.raises(ValueError, match="descend"):
        levels_by_threshold(p, (0.1, 0.3, 0.03))


def test_bootstrap_intervals_do_not_depend_on_the_number_of_processes():
    from models.metrics import bootstrap_over_snapshots

    X, y, snaps = panel(weeks=20)
    scores = {"model": (0.1 * X["backlog"] + 0.05 * X["noise"]).to_numpy(), "oracle": X["backlog"].to_numpy() / 10}
    one = bootstrap_over_snapshots(y, scores, snaps, draws=30, seed=4)
    two = bootstrap_over_snapshots(y, scores, snaps, draws=30, seed=4, n_jobs=2)
    assert one == two and set(one["model"]) >= {"roc_auc", "pr_auc", "share_of_oracle_lift"}
