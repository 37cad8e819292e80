"""Judging a backtest: metrics per fold and overall, bootstrap intervals, the oracle's lift,
coverage per county and, for projects, the prior assessment as a competing ranking."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from models.metrics import METRICS, bootstrap_over_snapshots, score_metrics, share_of_oracle_lift, top_k_mask


def fold_metrics(predictions: pd.DataFrame, models: Sequence[str], budget: float) -> pd.DataFrame:
    """One row per (model, fold) and an ``all`` row per model over every fold's rows."""
    rows = []
    for name in models:
        for fold, part in [*predictions.groupby("fold"), ("all", predictions)]:
            figures = score_metrics(part["label"].to_numpy(), part[name].to_numpy(), part["snapshot"].to_numpy(), budget)
            rows.append({"model": name, "fold": str(fold), "rows": len(part), "base_rate": part["label"].mean(), **figures})
    return pd.DataFrame(rows)


def summary_with_intervals(predictions: pd.DataFrame, models: Sequence[str], budget: float, draws: int,
                           seed: int = 0, n_jobs: int = 1) -> pd.DataFrame:
    """Per model over the whole backtest: each metric, its bootstrap interval (90%, snapshots
    resampled) and, where the oracle is among ``models``, the share of its lift."""
    y = predictions["label"].to_numpy()
    snaps = predictions["snapshot"].to_numpy()
    scores = {name: predictions[name].to_numpy() for name in models}
    intervals = (bootstrap_over_snapshots(y, scores, snaps, budget=budget, draws=draws, seed=seed, n_jobs=n_jobs)
                 if draws else {})
    base = float(y.mean())
    every = {name: score_metrics(y, scores[name], snaps, budget) for name in models}
    oracle_ap = every["oracle"]["pr_auc"] if "oracle" in every else None
    rows = []
    for name, figures in every.items():
        if oracle_ap is not None:
            figures["share_of_oracle_lift"] = share_of_oracle_lift(figures["pr_auc"], oracle_ap, base)
        row = {"model": name, "base_rate": base}
        for metric, value in figures.items():
            low, high = intervals.get(name, {}).get(metric, (np.nan, np.nan))
            row |= {metric: value, f"{metric}_low": low, f"{metric}_high": high}
        rows.append(row)
    return pd.DataFrame(rows)


def coverage_by_county(predictions: pd.DataFrame, county: np.ndarray, model: str, budget: float) -> pd.DataFrame:
    """Per county: incidents (positive rows), the share of them that fell in alerted rows
    (top ``budget`` of each snapshot, city-wide), and the share of the county's rows alerted —
    so that no county is systematically under-watched."""
    alerted = top_k_mask(predictions[model].to_numpy(), predictions["snapshot"].to_numpy(), budget)
    frame = pd.DataFrame({"county": county[predictions["row"].to_numpy()], "label": predictions["label"].to_numpy(),
                          "alerted": alerted})
    frame["caught"] = frame["alerted"] & (frame["label"] == 1)
    out = frame.groupby("county").agg(rows=("label", "size"), incidents=("label", "sum"), caught=("caught", "sum"),
                                      alerted_share=("alerted", "mean"))
    out["coverage"] = out["caught"] / out["incidents"].where(out["incidents"] > 0)
    return out.reset_index()


def assessment_comparison(predictions: pd.DataFrame, assessment: np.ndarray, model: str) -> dict[str, float]:
    """ROC-AUC and PR-AUC of the prior stability assessment level (as a ranking) and of the
    model on the same project rows."""
    level = assessment[predictions["row"].to_numpy()]
    known = ~np.isnan(level)
    y = predictions["label"].to_numpy()[known]
    p = predictions[model].to_numpy()[known]
    if y.min() == y.max():
        return {}
    return {"assessment_roc_auc": float(roc_auc_score(y, level[known])),
            "assessment_pr_auc": float(average_precision_score(y, level[known])),
            "model_roc_auc": float(roc_auc_score(y, p)), "model_pr_auc": float(average_precision_score(y, p)),
            "rows": int(known.sum())}


__all__ = ["METRICS", "assessment_comparison", "coverage_by_county", "fold_metrics", "summary_with_intervals"]
