"""The model report: an HTML page and its PNG images that a reviewer reads without code.

Pure rendering: it takes a ``TrainingResult`` and a folder, draws with matplotlib (Agg, no
display) and writes ``report.html`` beside the images.
"""

from __future__ import annotations

import html
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.metrics import precision_recall_curve  # noqa: E402

from models.featuremeta import feature_group, group_title  # noqa: E402
from models.training import TrainingResult  # noqa: E402

LABELS = {"lightgbm": "LightGBM (tuned, calibrated)", "blend": "LightGBM + logistic regression (calibrated)",
          "logistic": "logistic regression",
          "recent_incidents": "recent incidents (baseline)", "incident_lags": "LightGBM on 5 weekly lags (baseline)",
          "plain_lightgbm": "plain LightGBM (untuned, all features)", "oracle": "oracle (the truth, simulated worlds)",
          "hawkes": "Hawkes self-exciting model", "lightgbm_hawkes": "LightGBM + Hawkes feature"}


def _models(result: TrainingResult) -> list[str]:
    return list(result.summary["model"])


def _save(fig: plt.Figure, path: Path) -> str:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path.name


def pr_curves(result: TrainingResult, out: Path) -> str:
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    y = result.predictions["label"].to_numpy()
    for name in _models(result):
        precision, recall, _ = precision_recall_curve(y, result.predictions[name].to_numpy())
        ax.plot(recall, precision, lw=2.2 if name == result.model_name else 1.2, label=LABELS.get(name, name),
                ls="--" if name == "oracle" else "-")
    ax.axhline(y.mean(), color="grey", lw=0.8, ls=":", label="base rate")
    ax.set(xlabel="recall", ylabel="precision", title="Precision–recall over the backtest", ylim=(0, 1))
    ax.legend(fontsize=7)
    return _save(fig, out / "pr_curves.png")


def calibration_curve(result: TrainingResult, out: Path, bins: int = 10) -> str:
    fig, ax = plt.subplots(figsize=(5, 4.5))
    frame = result.predictions
    top = 0.0
    for name in [result.model_name, "oracle"] if "oracle" in frame else [result.model_name]:
        order = np.argsort(frame[name].to_numpy(), kind="stable")
        chunks = np.array_split(order, bins)
        predicted = [frame[name].to_numpy()[c].mean() for c in chunks]
        observed = [frame["label"].to_numpy()[c].mean() for c in chunks]
        ax.plot(predicted, observed, "o-", label=LABELS.get(name, name))
        top = max(top, 1.15 * max(predicted + observed))
    ax.plot([0, top], [0, top], color="grey", ls=":", label="perfect calibration")
    ax.set(xlabel="predicted probability (decile mean)", ylabel="observed incident rate",
           title="Calibration (deciles of the backtest's rows)", xlim=(0, top), ylim=(0, top))
    ax.legend(fontsize=7)
    return _save(fig, out / "calibration.png")


def lift_chart(result: TrainingResult, out: Path) -> str:
    s = result.summary
    fig, ax = plt.subplots(figsize=(7, 0.5 * len(s) + 1.5))
    pos = np.arange(len(s))
    low = s["pr_auc"] - s.get("pr_auc_low", s["pr_auc"])
    high = s.get("pr_auc_high", s["pr_auc"]) - s["pr_auc"]
    colors = ["tab:red" if m == result.model_name else "tab:grey" if m == "oracle" else "tab:blue" for m in s["model"]]
    ax.barh(pos, s["pr_auc"], xerr=[low.fillna(0), high.fillna(0)], color=colors, capsize=3)
    ax.axvline(s["base_rate"].iloc[0], color="black", ls=":", label="base rate (random ranking)")
    ax.set_yticks(pos, [LABELS.get(m, m) for m in s["model"]], fontsize=8)
    ax.set(xlabel="PR-AUC with 90% bootstrap interval (snapshots resampled)", title="Lift against the oracle and the baselines")
    ax.legend(fontsize=7)
    return _save(fig, out / "lift.png")


def importance_chart(result: TrainingResult, out: Path) -> str | None:
    imp = result.importance
    if imp.empty:
        return None
    groups = imp.groupby("group")["importance"].sum().sort_values()
    fig, ax = plt.subplots(figsize=(6.5, 0.4 * len(groups) + 1.5))
    ax.barh([f"{group_title(g, 'en')} ({g})" for g in groups.index], groups.to_numpy(), color="tab:green")
    ax.set(xlabel="share of total split gain", title="Feature importance by factor group")
    return _save(fig, out / "importance_groups.png")


def shap_summary(result: TrainingResult, X: pd.DataFrame, out: Path, sample: int = 2000, seed: int = 0) -> str | None:
    """Mean |TreeSHAP contribution| (log-odds) per factor group on a sample of rows."""
    core = getattr(result.model, "model_", result.model)
    if not hasattr(core, "contributions"):
        return None
    rows = X.sample(min(sample, len(X)), random_state=seed)
    contrib = core.contributions(rows).abs().mean()
    by_group = contrib.groupby([feature_group(result.entity, f) for f in contrib.index]).sum().sort_values()
    fig, ax = plt.subplots(figsize=(6.5, 0.4 * len(by_group) + 1.5))
    ax.barh([group_title(g, "en") for g in by_group.index], by_group.to_numpy(), color="tab:purple")
    ax.set(xlabel="mean |SHAP contribution| (log-odds), summed over the group's features",
           title=f"SHAP summary by factor group ({len(rows):,} rows)")
    return _save(fig, out / "shap_groups.png")


def coverage_chart(result: TrainingResult, out: Path) -> str | None:
    cov = result.coverage.dropna(subset=["coverage"])
    if cov.empty:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 0.35 * len(cov) + 1.5))
    ax.barh(cov["county"].astype(str), cov["coverage"], color="tab:orange")
    overall = cov["caught"].sum() / cov["incidents"].sum()
    ax.axvline(overall, color="black", ls=":", label=f"city-wide {overall:.0%}")
    ax.set(xlabel="share of the county's incidents in alerted entities", title="Coverage per county")
    ax.legend(fontsize=7)
    return _save(fig, out / "coverage.png")


def _table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, float_format=lambda v: f"{v:.4f}", border=0, classes="t")


def summary_table(result: TrainingResult) -> pd.DataFrame:
    """Metric with its interval per model, as text."""
    metrics = ["roc_auc", "pr_auc", "precision_at_k", "recall_at_k", "pai", "brier", "ece", "log_loss"]
    if "share_of_oracle_lift" in result.summary:
        metrics.append("share_of_oracle_lift")
    rows = []
    for _, r in result.summary.iterrows():
        row = {"model": LABELS.get(r["model"], r["model"])}
        for m in metrics:
            low, high = r.get(f"{m}_low", np.nan), r.get(f"{m}_high", np.nan)
            row[m] = f"{r[m]:.3f}" + ("" if pd.isna(low) else f" [{low:.3f}, {high:.3f}]")
        rows.append(row)
    return pd.DataFrame(rows)


def write_report(result: TrainingResult, X: pd.DataFrame, out: Path, title: str, facts: dict[str, str]) -> Path:
    """Draw the images and write ``out/report.html``; returns its path."""
    out.mkdir(parents=True, exist_ok=True)
    images = [pr_curves(result, out), calibration_curve(result, out), lift_chart(result, out),
              importance_chart(result, out), shap_summary(result, X, out), coverage_chart(result, out)]
    folds = result.per_fold[result.per_fold["model"] == result.model_name].drop(columns="model")
    parts = [f"<h1>{html.escape(title)}</h1>", "<ul>"]
    parts += [f"<li><b>{html.escape(k)}</b>: {html.escape(str(v))}</li>" for k, v in facts.items()]
    parts += ["</ul>", "<h2>Backtest summary (all folds; 90% bootstrap intervals over snapshots)</h2>",
              "<p>k = the alert budget per snapshot; PAI = share of incidents in the alerted entities ÷ share of "
              "entities alerted; share of oracle lift = (PR-AUC − base rate) ÷ (oracle PR-AUC − base rate).</p>",
              _table(summary_table(result)), "<h2>Backtest per fold (trained model)</h2>", _table(folds)]
    if result.assessment:
        parts += ["<h2>Prior stability assessment (稳评) as a ranking, same project rows</h2>",
                  _table(pd.DataFrame([result.assessment]))]
    parts += [f'<h2>{html.escape(name.rsplit(".", 1)[0].replace("_", " "))}</h2><img src="{name}">'
              for name in images if name]
    parts += ["<h2>Coverage per county</h2>", _table(result.coverage)]
    if not result.tuning_trials.empty:
        parts += ["<h2>Tuning trials</h2>", _table(result.tuning_trials)]
    page = ("<!doctype html><html><head><meta charset='utf-8'><title>" + html.escape(title) + "</title><style>"
            "body{font-family:sans-serif;max-width:1100px;margin:2em auto}table.t{border-collapse:collapse;font-size:12px}"
            "table.t td,table.t th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}</style></head><body>"
            + "\n".join(parts) + "</body></html>")
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
