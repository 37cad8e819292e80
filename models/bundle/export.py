"""Export a trained model to a scoring bundle. Training side only: this module needs
LightGBM (to read the trees); nothing that serves imports it.

``export_booster`` takes any LightGBM ``Booster`` (binary objective, numerical splits,
constant leaves) and writes the bundle; ``export_model`` does so for our ``CalibratedRisk``
around a ``LightGBMRisk`` or a ``BlendRisk`` (its trees and its linear part), carrying its
calibration; ``export_model_file`` for a model text file trained anywhere (no calibration: the
identity).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import lightgbm as lgb
import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression

from models.bundle.format import write_bundle
from models.bundle.linear import TRANSFORM
from models.bundle.trees import UnsupportedModelError, flatten_trees, text_thresholds
from models.calibration import (
    ISOTONIC_TIE_SHIFT,
    PROBABILITY_CLIP,
    CalibratedRisk,
    ScoreCalibrator,
)
from models.estimators import BlendRisk, LightGBMRisk, LogisticRisk
from models.featuremeta import feature_description, group_title

IDENTITY = {"method": "identity"}
"""The calibration of a bundle whose probabilities are LightGBM's own."""


@dataclass
class BundleFacts:
    """What a bundle records beside its trees (bundle.json)."""

    entity: str
    horizon_days: int
    level_thresholds: tuple[float, float, float]
    calibration: dict = field(default_factory=lambda: dict(IDENTITY))
    training_data_fingerprint: str | None = None
    backtest_metrics: dict = field(default_factory=dict)
    mlflow_run_id: str | None = None
    model_version: str | None = None


def calibration_of(calibrator: ScoreCalibrator) -> dict:
    """A fitted ``ScoreCalibrator`` as the bundle's calibration (breakpoints or coefficients)."""
    fitted = calibrator.calibrator_
    clip = [PROBABILITY_CLIP, 1 - PROBABILITY_CLIP]
    if isinstance(fitted, IsotonicRegression):
        return {"method": "isotonic", "x": fitted.X_thresholds_.astype(float).tolist(),
                "y": fitted.y_thresholds_.astype(float).tolist(), "shift": ISOTONIC_TIE_SHIFT, "clip": clip}
    if isinstance(fitted, LogisticRegression):
        return {"method": "platt", "coef": float(fitted.coef_[0, 0]), "intercept": float(fitted.intercept_[0]),
                "logit_clip": PROBABILITY_CLIP, "clip": clip}
    raise UnsupportedModelError(f"calibration {type(fitted).__name__} cannot go into a bundle (isotonic or platt)")


def _objective_sigmoid(dump: dict) -> float:
    """The sigmoid of a binary objective (``binary sigmoid:1``); other objectives are refused."""
    objective = str(dump.get("objective", ""))
    name, *options = objective.split()
    if name != "binary" or int(dump.get("num_tree_per_iteration", 1)) != 1:
        raise UnsupportedModelError(f"the model's objective is {objective!r}: the bundle scores binary models only")
    if dump.get("average_output"):
        raise UnsupportedModelError("the model averages its trees (boosting=rf): the bundle scores boosted sums only")
    sigmoid = dict(o.split(":", 1) for o in options if ":" in o).get("sigmoid", "1")
    return float(sigmoid)


@dataclass(frozen=True)
class LinearPart:
    """A fitted ``LogisticRisk`` blended with the trees: its arrays and intercept already
    weighted by its share (``models.bundle.linear``)."""

    tree_weight: float
    fill: np.ndarray
    center: np.ndarray
    coef: np.ndarray
    intercept: float

    @classmethod
    def of(cls, model: LogisticRisk, tree_weight: float) -> LinearPart:
        share = 1.0 - tree_weight
        return cls(float(tree_weight), model.fill_.astype(float), model.center_.astype(float),
                   share * model.coef_.astype(float), share * float(model.intercept_))


def export_booster(booster: lgb.Booster, folder: Path, facts: BundleFacts, feature_names: list[str] | None = None,
                   num_iteration: int | None = None, linear: LinearPart | None = None) -> Path:
    """Write the bundle of ``booster``'s first ``num_iteration`` trees (all: None), blended with
    ``linear`` if given, to ``folder``."""
    dump = booster.dump_model(num_iteration=num_iteration)
    sigmoid = _objective_sigmoid(dump)
    names = list(feature_names or dump["feature_names"])
    if len(names) != int(dump["max_feature_idx"]) + 1:
        raise UnsupportedModelError(f"{len(names)} feature names for a model of {int(dump['max_feature_idx']) + 1}")
    arrays = flatten_trees(dump["tree_info"], text_thresholds(booster.model_to_string(num_iteration=num_iteration)))
    described = {name: feature_description(facts.entity, name) for name in names}
    groups = list(dict.fromkeys(d["group"] for d in described.values()))
    meta = {
        "entity": facts.entity,
        "model_version": facts.model_version,
        "horizon_days": facts.horizon_days,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "mlflow_run_id": facts.mlflow_run_id,
        "training_data_fingerprint": facts.training_data_fingerprint,
        "backtest_metrics": facts.backtest_metrics,
        "objective": {"kind": "binary", "sigmoid": sigmoid},
        "features": [{"name": n, "group": described[n]["group"], "unit": described[n]["unit"],
                      "actionable": described[n]["actionable"]} for n in names],
        "reason_templates": {n: {"zh": described[n]["zh"], "en": described[n]["en"]} for n in names},
        "groups": {g: {"zh": group_title(g, "zh"), "en": group_title(g, "en")} for g in groups},
        "calibration": facts.calibration,
        "level_thresholds": dict(zip(("red", "orange", "yellow"), map(float, facts.level_thresholds))),
        "trees": {"count": len(arrays["tree_root"]), "nodes": len(arrays["split_feature"]),
                  "leaves": len(arrays["leaf_value"])},
    }
    if linear is not None:
        meta["linear"] = {"transform": TRANSFORM, "tree_weight": linear.tree_weight, "intercept": linear.intercept}
        arrays = {**arrays, "linear_fill": linear.fill, "linear_center": linear.center, "linear_coef": linear.coef}
    return write_bundle(folder, meta, arrays)


def export_model(model: CalibratedRisk, folder: Path, facts: BundleFacts) -> Path:
    """Write the bundle of a fitted ``CalibratedRisk`` around a ``LightGBMRisk`` (the
    ``lightgbm`` model) or a ``BlendRisk`` (``blend``): its trees up to the early-stopping
    iteration, its linear part if blended, and its calibration. Other models (Hawkes, logistic,
    baselines) are refused: they need inputs beyond the feature table or are not trees."""
    core = getattr(model, "model_", None)
    trees, linear = core, None
    if type(core) is BlendRisk:
        trees, linear = core.trees_, LinearPart.of(core.linear_, core.tree_weight)
    if not isinstance(model, CalibratedRisk) or type(trees) is not LightGBMRisk:
        kind = type(core if core is not None else model).__name__
        raise UnsupportedModelError(f"a {kind} model cannot be exported to a scoring bundle: only the calibrated "
                                    "LightGBM and blend models (FENGQIAO_MODEL=lightgbm or blend) are served from "
                                    "a bundle")
    facts.calibration = calibration_of(model.calibrator_)
    return export_booster(trees.booster_, folder, facts, list(trees.feature_names_in_), trees.best_iteration_, linear)


def export_model_file(model_file: Path, folder: Path, facts: BundleFacts) -> Path:
    """Write the bundle of a LightGBM model text file (identity calibration)."""
    if not Path(model_file).is_file():
        raise UnsupportedModelError(f"{model_file} does not exist: give a LightGBM model text file")
    try:
        booster = lgb.Booster(model_file=str(model_file))
    except lgb.basic.LightGBMError as err:
        raise UnsupportedModelError(f"{model_file} is not a LightGBM model file: {err}") from err
    return export_booster(booster, folder, facts)
