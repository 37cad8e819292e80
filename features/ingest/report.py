"""What an ingest run did: counts in / accepted / rejected per table and reason, redactions,
ignored columns and absent tables (DESIGN.md principle 4: nothing is lost silently).

The report holds counts and column names only, never cell values, so it is safe to log.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class TableReport:
    """One table's ingest."""

    table: str
    origin: str
    read: int
    accepted: int
    rejected_by_reason: dict[str, int]
    redactions: int
    extra_columns: tuple[str, ...]
    """Source columns that map to no contract column (ignored)."""
    missing_optional_columns: tuple[str, ...]
    """Optional contract columns the source lacks: left out of the warehouse table, and the
    features that need them are left out too."""

    @property
    def rejected(self) -> int:
        return sum(self.rejected_by_reason.values())


@dataclass(frozen=True)
class IngestReport:
    """A whole ingest run; ``summary()`` is what the CLI prints."""

    source: str
    warehouse_dir: str
    as_of: str
    started_at: str
    seconds: float
    tables: dict[str, TableReport]
    missing_tables: tuple[str, ...]
    """Optional tables the source does not have (absent from the warehouse)."""
    unchecked_references: tuple[str, ...] = field(default=())
    """References not checked because the referenced table is absent, e.g. ``disputes.project_id``."""

    @property
    def rejected(self) -> int:
        return sum(t.rejected for t in self.tables.values())

    def to_dict(self) -> dict:
        tables = {name: asdict(t) | {"rejected": t.rejected} for name, t in self.tables.items()}
        return asdict(self) | {"tables": tables, "rejected": self.rejected}

    def write(self, path: Path) -> Path:
        """Write as JSON (to a staged path: the run publishes it with the tables)."""
        path.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        return path

    def summary(self) -> str:
        """A printable account of the run."""
        width = max([len(n) for n in self.tables] + [5])
        lines = [
            f"Ingested {self.source} into {self.warehouse_dir} (as of {self.as_of}) in {self.seconds:.1f} s",
            f"  {'table':<{width}}  {'read':>10}  {'accepted':>10}  {'rejected':>10}  {'redacted':>8}",
        ]
        for name, t in self.tables.items():
            lines.append(f"  {name:<{width}}  {t.read:>10,}  {t.accepted:>10,}  {t.rejected:>10,}  {t.redactions:>8,}")
        for name, t in self.tables.items():
            lines.append(f"  {name} read from {t.origin}")
        for name, t in self.tables.items():
            if t.rejected:
                reasons = ", ".join(f"{r} {n:,}" for r, n in t.rejected_by_reason.items())
                lines.append(f"  rejected from {name}: {reasons}")
        for name, t in self.tables.items():
            if t.extra_columns:
                lines.append(f"  ignored columns of {name}: {', '.join(t.extra_columns)}")
            if t.missing_optional_columns:
                lines.append(f"  {name} has no {', '.join(t.missing_optional_columns)} (left out, with the features that need them)")
        if self.missing_tables:
            lines.append(f"  not in the source (optional): {', '.join(self.missing_tables)}")
        if self.unchecked_references:
            lines.append(f"  not checked, the referenced table is absent: {', '.join(self.unchecked_references)}")
        if self.rejected:
            lines.append(f"  rejected rows, with reasons: {Path(self.warehouse_dir) / 'rejects'}/<table>.parquet")
        return "\n".join(lines)
