"""Ranking and calibration metrics of weekly risk scores, with bootstrap intervals.

Scores are judged per snapshot where a committee would act per snapshot: the alert budget k
is a share of the entities *of each snapshot* (5% by default), so precision@k, recall@k and
PAI look at the top k of every week, never at the top of the whole test period. Everything
else is over all rows, the same figures as scikit-learn's metrics (tested equal): ROC-AUC and
PR-AUC (average precision) come from one sort of the scores, Brier and log-loss are plain
means, because the bootstrap computes them some 800 times per training and scikit-learn's
input validation alone costs more than the figures (60 ms a call on a 3-month backtest).
"""

from __future__ import annotations

import numpy as np
from joblib import Parallel, delayed

from models.levels import top_k_mask

METRICS: tuple[str, ...] = ("roc_auc", "pr_auc", "precision_at_k", "recall_at_k", "pai", "brier", "ece", "log_loss")
"""The figures every model gets, per fold and over the whole backtest."""
HIGHER_IS_BETTER: dict[str, bool] = {m: m not in ("brier", "ece", "log_loss") for m in METRICS}


def expected_calibration_error(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    """ECE with equal-count bins: Σ_b (n_b/n) |mean(y_b) − mean(p_b)|. Equal-count bins,
    because with a 5% base rate almost every row would sit in the first equal-width bin."""
    y = np.asarray(y, dtype=float)
    p = np.asarray(p, dtype=float)
    order = np.argsort(p, kind="stable")
    total = 0.0
    for chunk in np.array_split(order, bins):
        if len(chunk):
            total += len(chunk) * abs(y[chunk].mean() - p[chunk].mean())
    return total / len(y)


def ranking_figures(y: np.ndarray, p: np.ndarray) -> tuple[float, float]:
    """ROC-AUC and average precision of scores ``p`` for labels ``y`` (both classes present),
    as scikit-learn's ``roc_auc_score`` and ``average_precision_score`` define them: tied
    scores form one threshold, ROC-AUC is the trapezoid under the curve through every
    threshold, average precision Σ (recall_k − recall_k−1) · precision_k."""
    order = np.argsort(-p, kind="stable")
    ranked = p[order]
    ends = np.append(np.flatnonzero(np.diff(ranked)), len(ranked) - 1)  # last row of each threshold
    tps = np.cumsum(y[order])[ends].astype(float)
    fps = (ends + 1) - tps
    recall = tps / tps[-1]
    average_precision = float(np.sum(np.diff(recall, prepend=0.0) * tps / (ends + 1)))
    tpr, fpr = np.concatenate([[0.0], recall]), np.concatenate([[0.0], fps / fps[-1]])
    roc_auc = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1])) / 2)
    return roc_auc, average_precision


def score_metrics(y: np.ndarray, p: np.ndarray, snapshots: np.ndarray, budget: float = 0.05) -> dict[str, float]:
    """Every figure of ``METRICS`` for labels ``y`` (0/1), probabilities ``p`` and the
    snapshot of each row. PAI = (share of incidents in the alerted rows) ÷ (share of rows
    alerted); NaN where a figure is undefined (one class only)."""
    y = np.asarray(y, dtype=int)
    p = np.clip(np.asarray(p, dtype=float), 1e-7, 1 - 1e-7)
    alerted = top_k_mask(p, snapshots, budget)
    both = 0 < y.sum() < len(y)
    hits = float(y[alerted].sum())
    roc_auc, pr_auc = ranking_figures(y, p) if both else (float("nan"), float("nan"))
    return {
        "roc_auc": roc_auc,
        "pr_auc": pr_auc,
        "precision_at_k": hits / max(int(alerted.sum()), 1),
        "recall_at_k": hits / y.sum() if y.sum() else float("nan"),
        "pai": (hits / y.sum()) / alerted.mean() if y.sum() else float("nan"),
        "brier": float(np.mean((p - y) ** 2)),
        "ece": expected_calibration_error(y, p),
        "log_loss": float(-np.mean(np.where(y == 1, np.log(p), np.log1p(-p)))),
    }


def share_of_oracle_lift(model_pr_auc: float, oracle_pr_auc: float, base_rate: float) -> float:
    """(model PR-AUC − base rate) ÷ (oracle PR-AUC − base rate): 1 is as good as the truth,
    0 no better than ranking at random."""
    return (model_pr_auc - base_rate) / (oracle_pr_auc - base_rate)


def _draw_figures(y: np.ndarray, scores: dict[str, np.ndarray], rows_of: list[np.ndarray], picks: list[np.ndarray],
                  budget: float) -> list[dict[str, dict[str, float]]]:
    """Every model's figures on each resample ``picks`` (snapshot numbers drawn with replacement)."""
    out = []
    for picked in picks:
        idx = np.concatenate([rows_of[i] for i in picked])
        groups = np.repeat(np.arange(len(picked)), [len(rows_of[i]) for i in picked])
        yb = y[idx]
        oracle_ap = None
        if "oracle" in scores and 0 < yb.sum() < len(yb):
            oracle_ap = ranking_figures(yb, scores["oracle"][idx])[1]
        draw = {}
        for name, p in scores.items():
            figures = score_metrics(yb, p[idx], groups, budget)
            if oracle_ap is not None:
                figures["share_of_oracle_lift"] = share_of_oracle_lift(figures["pr_auc"], oracle_ap, yb.mean())
            draw[name] = figures
        out.append(draw)
    return out


def bootstrap_over_snapshots(
    y: np.ndarray, scores: dict[str, np.ndarray], snapshots: np.ndarray, budget: float = 0.05,
    draws: int = 200, seed: int = 0, level: float = 0.9, n_jobs: int = 1,
) -> dict[str, dict[str, tuple[float, float]]]:
    """Percentile intervals of every metric (and of the share of the oracle's lift when a
    score is named ``oracle``) by resampling whole snapshots with replacement: weeks are the
    unit that is independent enough, rows within a week are not. The same draws serve every
    model, so that differences between models are paired. The resamples are drawn here and
    judged ``n_jobs`` processes at a time; the intervals do not depend on ``n_jobs``."""
    rng = np.random.default_rng(seed)
    y = np.asarray(y, dtype=int)
    codes, inverse = np.unique(np.asarray(snapshots), return_inverse=True)
    rows_of = [np.flatnonzero(inverse == i) for i in range(len(codes))]
    picks = [rng.integers(0, len(codes), size=len(codes)) for _ in range(draws)]
    chunks = [picks[i::n_jobs] for i in range(n_jobs)]
    judged = Parallel(n_jobs=n_jobs)(delayed(_draw_figures)(y, scores, rows_of, chunk, budget) for chunk in chunks)
    samples: dict[str, dict[str, list[float]]] = {name: {m: [] for m in (*METRICS, "share_of_oracle_lift")} for name in scores}
    for draw in (d for chunk in judged for d in chunk):  # percentiles do not depend on the order
        for name, figures in draw.items():
            for m, value in figures.items():
                samples[name][m].append(value)
    tail = (1 - level) / 2
    return {name: {m: (float(np.nanquantile(v, tail)), float(np.nanquantile(v, 1 - tail)))
                   for m, v in per.items() if v} for name, per in samples.items()}
