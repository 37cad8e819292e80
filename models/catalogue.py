"""Models chosen by name (the ``FENGQIAO_MODEL`` setting and the CLI's ``--model``).

Every entry is calibrated the same way (``CalibratedRisk``), except ``plain_lightgbm``: the
fixed, untuned LightGBM of experiments/world_difficulty.py, kept as the yardstick the main
model must beat.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sklearn.base import BaseEstimator

from fengqiao.errors import ConfigurationError
from models.calibration import CalibratedRisk
from models.estimators import BlendRisk, LightGBMRisk, LogisticRisk, RecentIncidentsRisk
from models.featuremeta import incident_lag_columns, is_actionable, monotone_sign, recent_incident_columns
from models.hawkes import HAWKES_COLUMN, HawkesRisk, LightGBMWithHawkes

PLAIN_LIGHTGBM = dict(learning_rate=0.05, num_leaves=31, min_child_samples=50, subsample=0.8, subsample_freq=1,
                      colsample_bytree=0.8)
"""experiments/world_difficulty.py's plain model: 300 trees, these parameters, all features."""

MODEL_NAMES: tuple[str, ...] = ("lightgbm", "blend", "lightgbm_hawkes", "hawkes", "logistic", "recent_incidents", "incident_lags",
                                "plain_lightgbm")
TUNED_MODELS: tuple[str, ...] = ("lightgbm", "blend", "lightgbm_hawkes")
"""Models whose trees take the tuner's parameters (``lightgbm_params`` of ``build_model``)."""
HAWKES_MODELS: tuple[str, ...] = ("hawkes", "lightgbm_hawkes")
"""Models that need the table's incident history (``hawkes=`` of ``build_model``)."""
BUNDLED_MODELS: tuple[str, ...] = ("lightgbm", "blend", "incident_lags")
"""Models whose fitted form is a calibrated LightGBM on table features, alone or blended with a
linear part: they export to a scoring bundle, so only they can be registered and served."""
BASELINES: tuple[str, ...] = ("recent_incidents", "incident_lags")
"""The honest baselines: what the committee does today, and a model on incident counts only."""


class UnknownModelError(ConfigurationError):
    """A model name that the catalogue does not know, or a model without the data it needs."""


def build_model(name: str, entity: str, features: Sequence[str], horizon_days: int,
                lightgbm_params: Mapping | None = None, calibration: str = "auto",
                calibration_weeks: int = 8, hawkes=None, distributed: bool = False) -> BaseEstimator:
    """The named model, configured for ``entity`` and its ``features``; the Hawkes models
    also need ``hawkes`` (a ``models.data.HawkesInputs``); with ``distributed`` the main
    model's trees grow on the current Dask client's workers (``LightGBMRisk``)."""
    signs = {f: monotone_sign(entity, f) for f in features}
    if name in HAWKES_MODELS and hawkes is None:
        raise UnknownModelError(f"model {name!r} needs the incident history of its training table")
    if name in HAWKES_MODELS:
        process = HawkesRisk(hawkes.history, hawkes.row_entity, hawkes.row_day, horizon_days=horizon_days)
    if name == "hawkes":
        core = process
    elif name == "lightgbm_hawkes":
        core = LightGBMWithHawkes(
            LightGBMRisk(params=dict(lightgbm_params or {}), columns=[*features, HAWKES_COLUMN],
                         monotone={**signs, HAWKES_COLUMN: 1}, horizon_days=horizon_days, distributed=distributed),
            process)
    elif name in ("lightgbm", "blend"):
        core = LightGBMRisk(params=dict(lightgbm_params or {}), columns=list(features), monotone=signs,
                            horizon_days=horizon_days, distributed=distributed)
        if name == "blend":  # the linear part keeps the levers' signs, which the planner's what-ifs read
            levers = {f: sign for f, sign in signs.items() if is_actionable(f)}
            core = BlendRisk(core, LogisticRisk(columns=list(features), monotone=levers))
    elif name == "logistic":
        core = LogisticRisk(columns=list(features))
    elif name == "recent_incidents":
        count, tie = recent_incident_columns(entity)
        core = RecentIncidentsRisk(count=count, tie_break=tie)
    elif name == "incident_lags":
        lags = incident_lag_columns(entity)
        core = LightGBMRisk(params={"num_leaves": 7, "min_child_samples": 100}, columns=lags,
                            monotone={c: 1 for c in lags}, horizon_days=horizon_days)
    elif name == "plain_lightgbm":
        return LightGBMRisk(params=PLAIN_LIGHTGBM, columns=list(features), max_trees=300, early_stopping_weeks=0,
                            horizon_days=horizon_days)
    else:
        raise UnknownModelError(f"unknown model {name!r}: choose one of {', '.join(MODEL_NAMES)}")
    return CalibratedRisk(core, method=calibration, calibration_weeks=calibration_weeks, horizon_days=horizon_days)
