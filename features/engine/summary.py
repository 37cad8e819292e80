"""The run summary of a feature build: what was built, what was left out and why, where time went."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd


@dataclass
class BuildSummary:
    """What a build produced, what it left out and why, and where the time went."""

    entity: str
    built: bool = True
    rows: int = 0
    entities: int = 0
    snapshots: int = 0
    first_snapshot: pd.Timestamp | None = None
    last_snapshot: pd.Timestamp | None = None
    as_of: pd.Timestamp | None = None
    timezone: str = ""
    horizon_days: int = 30
    snapshot_every_days: int = 7
    features: int = 0
    labelled_rows: int = 0
    positive_labels: int = 0
    calendar: str | None = None
    warnings: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        out = dict(self.__dict__)
        for k in ("first_snapshot", "last_snapshot", "as_of"):
            out[k] = None if out[k] is None else out[k].isoformat()
        return out

    def __str__(self) -> str:
        if not self.built:
            return "\n".join([f"features_{self.entity}: not built", *(f"  warning: {w}" for w in self.warnings)])
        rate = self.positive_labels / self.labelled_rows if self.labelled_rows else float("nan")
        lines = [
            f"features_{self.entity}: {self.rows:,} rows = {self.entities:,} {self.entity}s × "
            f"{self.snapshots} snapshots ({self.first_snapshot:%Y-%m-%d} … {self.last_snapshot:%Y-%m-%d} {self.timezone}), "
            f"{self.features} features"
            if self.snapshots
            else f"features_{self.entity}: no snapshots (less than a year of history before as_of)",
            f"  labels: {self.labelled_rows:,} labelled rows, {self.positive_labels:,} positive ({rate:.2%}), "
            f"horizon {self.horizon_days} days, data as of {self.as_of}",
            f"  time: {self.seconds.get('total', 0.0):.1f} s ("
            + ", ".join(f"{k} {v:.1f}" for k, v in self.seconds.items() if k != "total")
            + ")",
        ]
        if self.calendar:
            lines.insert(1, f"  calendar: {self.calendar}")
        lines += [f"  warning: {w}" for w in self.warnings]
        return "\n".join(lines)
