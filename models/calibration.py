"""Calibration fitted on a time-held-out slice, never on the rows it will score.

``CalibratedRisk`` holds out the last ``calibration_weeks`` snapshots of its training rows,
fits the model on the rows whose labels closed before that slice, and maps the model's scores
on the slice to probabilities: isotonic regression, or Platt scaling (a logistic curve on the
log-odds) where isotonic overfits. Which one is decided on the slice itself, by time: both are
fitted on its first half and judged by log-loss on its second half; the winner is refitted on
the whole slice. See docs/decisions/004-calibration-isotonic-or-platt.md.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss

from models.timesplit import as_datetime64, held_out_split, take_rows

_EPS = 1e-6
PROBABILITY_CLIP = _EPS
"""Calibrated probabilities (and the logits Platt scaling reads) are kept within [ε, 1 − ε]."""
ISOTONIC_TIE_SHIFT = 1e-7
"""Share of the raw score added to an isotonic step (see ``ScoreCalibrator._apply``)."""
MIN_ISOTONIC_ROWS = 1000
"""Fewer calibration rows than this and ``auto`` takes Platt scaling without judging: isotonic
regression overfits below about a thousand calibration examples (Niculescu-Mizil and Caruana,
"Predicting good probabilities with supervised learning", 2005), and the judge itself, half a
slice that holds a few dozen events, is too noisy to catch it."""


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype=float), _EPS, 1 - _EPS)
    return np.log(p / (1 - p))


class ScoreCalibrator(BaseEstimator):
    """Maps raw scores (probabilities) to calibrated probabilities by ``method``:
    ``isotonic``, ``platt``, or ``auto`` (the one with the lower log-loss on the later half
    of the rows, split by ``snapshot``; Platt below ``MIN_ISOTONIC_ROWS`` rows)."""

    def __init__(self, method: str = "auto"):
        self.method = method

    @staticmethod
    def _fit_one(method: str, p: np.ndarray, y: np.ndarray):
        if method == "isotonic":
            return IsotonicRegression(out_of_bounds="clip", y_min=_EPS, y_max=1 - _EPS).fit(p, y)
        if method == "platt":
            return LogisticRegression(C=1e4).fit(_logit(p)[:, None], y)
        raise ValueError(f"unknown calibration method {method!r}: use isotonic, platt or auto")

    @staticmethod
    def _apply(fitted, p: np.ndarray) -> np.ndarray:
        if isinstance(fitted, IsotonicRegression):
            # a vanishing share of the raw score orders the rows within an isotonic step, so that
            # calibration does not turn a ranking into ties (shift at most 1e-7)
            return fitted.predict(p) + ISOTONIC_TIE_SHIFT * p
        return fitted.predict_proba(_logit(p)[:, None])[:, 1]

    def fit(self, p: np.ndarray, y: np.ndarray, snapshot: np.ndarray | None = None) -> ScoreCalibrator:
        p = np.asarray(p, dtype=float)
        y = np.asarray(y, dtype=int)
        method = self.method
        self.validation_log_loss_: dict[str, float] = {}
        if method == "auto":
            snaps = as_datetime64(snapshot) if snapshot is not None else np.arange(len(p))
            middle = np.unique(snaps)[len(np.unique(snaps)) // 2]
            early, late = snaps < middle, snaps >= middle
            if len(p) < MIN_ISOTONIC_ROWS or y[early].min() == y[early].max() or y[late].min() == y[late].max():
                method = "platt"  # too few rows or events to judge: the two-parameter curve is the safe choice
            else:
                for candidate in ("isotonic", "platt"):
                    fitted = self._fit_one(candidate, p[early], y[early])
                    q = np.clip(self._apply(fitted, p[late]), _EPS, 1 - _EPS)
                    self.validation_log_loss_[candidate] = float(log_loss(y[late], q, labels=[0, 1]))
                method = min(self.validation_log_loss_, key=self.validation_log_loss_.get)
        self.method_ = method
        self.calibrator_ = self._fit_one(method, p, y)
        return self

    def transform(self, p: np.ndarray) -> np.ndarray:
        return np.clip(self._apply(self.calibrator_, np.asarray(p, dtype=float)), _EPS, 1 - _EPS)


class CalibratedRisk(ClassifierMixin, BaseEstimator):
    """A risk model and its calibration, fitted on disjoint, time-ordered rows: the model on
    rows whose labels closed before the calibration slice, the calibrator on the slice (the
    last ``calibration_weeks`` snapshots). ``calibration_rows_`` records which rows
    calibrated it."""

    def __init__(self, model: BaseEstimator, method: str = "auto", calibration_weeks: int = 8, horizon_days: int = 30):
        self.model = model
        self.method = method
        self.calibration_weeks = calibration_weeks
        self.horizon_days = horizon_days

    def fit(self, X: pd.DataFrame, y: np.ndarray, snapshot: np.ndarray) -> CalibratedRisk:
        y = np.asarray(y, dtype=int)
        fit_rows, held = held_out_split(snapshot, self.calibration_weeks, self.horizon_days)
        snaps = as_datetime64(snapshot)
        self.model_ = clone(self.model).fit(take_rows(X, fit_rows), y[fit_rows], snapshot=snaps[fit_rows])
        raw = self.model_.predict_proba(take_rows(X, held))[:, 1]
        self.calibrator_ = ScoreCalibrator(self.method).fit(raw, y[held], snaps[held])
        self.method_ = self.calibrator_.method_
        self.calibration_rows_ = np.flatnonzero(held)
        self.training_rows_ = np.flatnonzero(fit_rows)
        self.classes_ = np.array([0, 1])
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """The calibrated probability of an incident within the horizon (what MLflow's
        ``pyfunc`` serves); ``predict_proba`` has it in its second column."""
        return self.predict_proba(X)[:, 1]

    def predict_raw(self, X: pd.DataFrame) -> np.ndarray:
        """The model's uncalibrated probability."""
        return self.model_.predict_proba(X)[:, 1]

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = self.calibrator_.transform(self.predict_raw(X))
        return np.column_stack([1 - p, p])
