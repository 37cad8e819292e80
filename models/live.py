"""The live model's real record: what it predicted at each snapshot against what happened.

A snapshot's scores can be judged once its label window has closed (the feature table then
carries the labels of that snapshot). The figures are the backtest's (``models.metrics``),
one row per snapshot and model version, so the committee reads the live model's record week
by week in the same terms as the report that promoted it.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.metrics import METRICS, score_metrics


def live_record(history: pd.DataFrame, labels: pd.DataFrame, key: str, budget: float) -> pd.DataFrame:
    """Per scored snapshot and model version whose labels are known: the number of entities,
    incidents that followed, and every figure of ``METRICS`` (``history``: the score history,
    ``key``, ``snapshot``, ``probability``, ``model_version``; ``labels``: ``key``,
    ``snapshot``, ``label``, NaN while the window is open)."""
    known = labels.loc[labels["label"].notna(), [key, "snapshot", "label"]]
    merged = history.merge(known, on=[key, "snapshot"], how="inner", validate="many_to_one")
    rows = []
    for (snapshot, version), part in merged.groupby(["snapshot", "model_version"], sort=True):
        y = part["label"].to_numpy(dtype=int)
        p = part["probability"].to_numpy(dtype=float)
        figures = score_metrics(y, p, np.zeros(len(part)), budget)
        rows.append({"snapshot": snapshot, "model_version": str(version), "entities": len(part),
                     "incidents": int(y.sum()), "mean_probability": float(p.mean()), **figures})
    return pd.DataFrame(rows, columns=["snapshot", "model_version", "entities", "incidents", "mean_probability",
                                       *METRICS])


__all__ = ["live_record"]
