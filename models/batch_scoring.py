"""Batch scoring: the latest snapshot's scores, levels, ranks and top reasons from a bundle,
and the score history they are appended to. Library functions; ``pipelines`` wires them.

``scores_<entity>.parquet`` holds the latest scoring (one row per entity);
``score_history_<entity>.parquet`` keeps every scoring, one row per entity, snapshot and model
version — scoring the same snapshot with the same model again replaces its rows.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from fengqiao.errors import InputDataError
from fengqiao.publish import publishing
from models.bundle import BundleError, ScoringBundle
from models.featuremeta import id_column

REASONS = 3
"""Top reasons (features that raise the risk most) kept with each score."""
HISTORY_COLUMNS: tuple[str, ...] = ("snapshot", "probability", "level", "model_version", "scored_at")


def scores_path(warehouse: Path, entity: str) -> Path:
    return Path(warehouse) / f"scores_{entity}.parquet"


def history_path(warehouse: Path, entity: str) -> Path:
    return Path(warehouse) / f"score_history_{entity}.parquet"


def feature_matrix(bundle: ScoringBundle, frame: pd.DataFrame, where: str) -> np.ndarray:
    """The bundle's features of ``frame`` as float64 in the bundle's order; missing columns
    are named (``where`` says which table)."""
    missing = [f for f in bundle.feature_names if f not in frame.columns]
    if missing:
        shown = ", ".join(missing[:8]) + (f" and {len(missing) - 8} more" if len(missing) > 8 else "")
        raise InputDataError(f"{where} lacks {len(missing)} feature column(s) the model needs: {shown}")
    return frame[bundle.feature_names].to_numpy(dtype=np.float64)


def top_reasons(bundle: ScoringBundle, contributions: np.ndarray, top: int = REASONS) -> list[list[str | None]]:
    """Per row, the names of the ``top`` features with the largest positive contributions
    (None where fewer features raise the risk)."""
    order = np.argsort(-contributions[:, :-1], axis=1, kind="stable")[:, :top]
    names = np.array(bundle.feature_names, dtype=object)
    raising = np.take_along_axis(contributions[:, :-1], order, axis=1) > 0
    return np.where(raising, names[order], None).tolist()


def score_snapshot(bundle: ScoringBundle, frame: pd.DataFrame, entity: str, scored_at: datetime | None = None) -> pd.DataFrame:
    """Scores of the rows of ``frame`` (one snapshot of a feature table): id, snapshot, raw
    score, probability, level, rank (1 = highest probability), model version, scoring time
    (UTC) and ``reason_1``..``reason_3``."""
    if bundle.entity != entity:
        raise BundleError(f"the bundle scores {bundle.entity}s, not {entity}s")
    X = feature_matrix(bundle, frame, f"the {entity} feature table")
    contributions = bundle.contributions(X)
    raw = contributions.sum(axis=1)
    probability = bundle.probability_from_raw(raw)
    key = id_column(entity)
    out = pd.DataFrame({key: frame[key].astype("str").to_numpy(), "snapshot": frame["snapshot"].to_numpy(),
                        "raw_score": raw, "probability": probability, "level": bundle.levels(probability)})
    out["rank"] = np.empty(len(out), dtype=np.int64)
    out.loc[np.lexsort((out[key].to_numpy(), -raw)), "rank"] = np.arange(1, len(out) + 1)
    out["model_version"] = bundle.version
    out["scored_at"] = pd.Timestamp(scored_at or datetime.now(UTC)).tz_convert("UTC")
    reasons = top_reasons(bundle, contributions)
    for k in range(REASONS):
        out[f"reason_{k + 1}"] = pd.Series([r[k] if k < len(r) else None for r in reasons], dtype="str")
    return out.sort_values("rank", kind="stable").reset_index(drop=True)


def write_scores(warehouse: Path, entity: str, scores: pd.DataFrame) -> tuple[Path, Path]:
    """Publish the latest scores and the history with them appended (replacing the history's
    rows of the same snapshot and model version), both or neither."""
    key = id_column(entity)
    history = scores[[key, *HISTORY_COLUMNS]]
    old_path = history_path(warehouse, entity)
    if old_path.exists():
        old = pd.read_parquet(old_path)
        same = old["snapshot"].isin(scores["snapshot"].unique()) & old["model_version"].isin(
            scores["model_version"].unique())
        history = pd.concat([old[~same], history], ignore_index=True)
    history = history.sort_values(["snapshot", "model_version", key], kind="stable").reset_index(drop=True)
    with publishing(warehouse) as publication:
        scores.to_parquet(publication.stage(scores_path(warehouse, entity).name), index=False)
        history.to_parquet(publication.stage(old_path.name), index=False)
    return scores_path(warehouse, entity), old_path
