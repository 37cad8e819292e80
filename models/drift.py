"""Drift of a new snapshot's features from the data the live model was trained on.

Population stability index (PSI) per feature over deciles of the training values, with missing
values as a bin of their own, so that a column that starts arriving empty drifts too; per
factor group, the largest PSI of its features (a group is as drifted as its most drifted
feature: averaging would hide one broken column among ten); the share of missing values
before and after; and the label rate of the snapshots whose labels have matured since
training against the training rate. Common reading of PSI: below 0.1 stable, 0.1–0.25 a shift
worth watching, above 0.25 a shift that needs a look before the scores are trusted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

_FLOOR = 1e-4
"""Share given to an empty bin, so that PSI stays finite (a standard choice)."""


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """PSI of ``current`` against ``reference``: Σ (c − r) ln(c / r) over the reference's
    quantile bins and one bin of missing values; 0 for identical distributions."""
    reference = np.asarray(reference, dtype=float)
    current = np.asarray(current, dtype=float)
    if len(reference) == 0 or len(current) == 0:
        return float("nan")
    known = reference[~np.isnan(reference)]
    edges = np.unique(np.quantile(known, np.linspace(0, 1, bins + 1)[1:-1])) if len(known) else np.array([])

    def shares(values: np.ndarray) -> np.ndarray:
        missing = np.isnan(values)
        counts = np.bincount(np.searchsorted(edges, values[~missing], side="right"), minlength=len(edges) + 1)
        out = np.append(counts, missing.sum()).astype(float) / len(values)
        return np.maximum(out, _FLOOR)

    r, c = shares(reference), shares(current)
    return float(np.sum((c - r) * np.log(c / r)))


@dataclass
class DriftReport:
    """The drift check of one snapshot: per feature, per group, label rate, and the warnings."""

    snapshot: str
    features: pd.DataFrame
    groups: pd.DataFrame
    label_rate_training: float
    label_rate_matured: float | None
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {"snapshot": self.snapshot, "label_rate_training": self.label_rate_training,
                "label_rate_matured": self.label_rate_matured, "warnings": self.warnings,
                "groups": self.groups.to_dict(orient="records"),
                "features": self.features.to_dict(orient="records")}


def drift_report(training: pd.DataFrame, current: pd.DataFrame, groups: Mapping[str, str],
                 training_labels: np.ndarray, matured_labels: np.ndarray | None, snapshot: str,
                 psi_warn: float = 0.25, missing_warn: float = 0.1, label_rate_warn: float = 0.5) -> DriftReport:
    """Compare ``current`` (one snapshot's rows) with ``training`` (the rows the model learned
    from) over the features in ``groups`` (feature → factor group). Warn when a feature's PSI
    exceeds ``psi_warn``, its missing share grows by more than ``missing_warn``, or the matured
    label rate differs from the training rate by more than ``label_rate_warn`` of it."""
    rows = []
    for name in groups:
        ref = training[name].to_numpy(dtype=float)
        cur = current[name].to_numpy(dtype=float)
        rows.append({"feature": name, "group": groups[name], "psi": psi(ref, cur),
                     "missing_training": float(np.isnan(ref).mean()), "missing_now": float(np.isnan(cur).mean())})
    features = pd.DataFrame(rows, columns=["feature", "group", "psi", "missing_training", "missing_now"])
    by_group = (features.groupby("group", sort=True)
                .agg(psi_max=("psi", "max"), psi_mean=("psi", "mean"), features=("feature", "size"))
                .reset_index())
    warnings = [f"feature {r.feature} ({r.group}) PSI {r.psi:.3f} > {psi_warn}" for r in features.itertuples()
                if r.psi > psi_warn]
    warnings += [f"feature {r.feature} missing in {r.missing_now:.0%} of rows (training {r.missing_training:.0%})"
                 for r in features.itertuples() if r.missing_now - r.missing_training > missing_warn]
    train_rate = float(np.mean(training_labels)) if len(training_labels) else float("nan")
    matured_rate = float(np.mean(matured_labels)) if matured_labels is not None and len(matured_labels) else None
    if matured_rate is not None and train_rate > 0 and abs(matured_rate - train_rate) > label_rate_warn * train_rate:
        warnings.append(f"label rate of matured snapshots {matured_rate:.3f} vs {train_rate:.3f} in training")
    return DriftReport(snapshot, features, by_group, train_rate, matured_rate, warnings)


def group_psi_table(report: DriftReport, top: int = 10) -> Sequence[str]:
    """Lines for a run summary: each group's largest PSI, then the warnings."""
    lines = [f"  {r.group:<22} max PSI {r.psi_max:.3f} (mean {r.psi_mean:.3f}, {r.features} features)"
             for r in report.groups.sort_values("psi_max", ascending=False).itertuples()]
    return [*lines, *(f"  warning: {w}" for w in report.warnings[:top])]


__all__ = ["DriftReport", "drift_report", "group_psi_table", "psi"]
