"""Dirty data on purpose: a clean export turned into what a real platform dump looks like.

``export_as_strings`` writes every cell as text (a CSV dump); ``inject_dirty`` does the same
and then damages a known share of rows the way real exports are damaged — unknown village
codes, reversed and future dates, exact duplicates, other date formats, invalid codes, ID-card
and phone numbers typed into notes — and logs each defect with the reject reason that ingest
must give. Rows that will be rejected only because a row they refer to is rejected (a dispute
in a rejected village) are logged too, as ``cascade``, so every reject has an explanation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from features.contracts import CONTRACTS, LIST_SEPARATOR, SECONDS_PER_DAY, TIMEZONE, VILLAGE_REF, TableContract
from pipelines.simulate.csv_text import text_frame, timestamps_as_text
from features.ingest.reasons import (
    BAD_CODE,
    BAD_DATE,
    DUPLICATE,
    FUTURE_DATE,
    TIME_ORDER,
    reference_reason,
)

ACCEPTED = "accepted"
REDACTED = "redacted"
CASCADE = "cascade"
LOG_COLUMNS = ("table", "row", "key", "kind", "column", "expected_reason")
ALTERNATIVE_FORMATS = ("%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d", "%Y-%m-%dT%H:%M:%S")
"""Other ways platforms write times that ingest must accept (no offset: local time)."""
INVALID_DATES: tuple[Callable[[pd.Timestamp], str], ...] = (
    lambda ts: f"{ts:%d/%m/%Y}",  # day-first: ambiguous, so refused
    lambda ts: f"{ts:%m/%d/%Y %H:%M}",  # month-first: ambiguous, so refused
    lambda ts: f"{ts:%Y}-13-45",
    lambda ts: f"{ts:%Y}-02-30 {ts:%H:%M}",
)
BOGUS_CODES = ("未知类别", "OTHER", "x9")
"""Codes in no contract code list (and none of them an empty-cell marker)."""
PERSONAL_DATA = (
    "，当事人电话{mobile}",
    "，身份证号{id_card}",
    "（联系人 {mobile_spaced}）",
    "，座机0916-{landline}",
)


@dataclass
class _Table:
    """One table being damaged: the clean typed rows and their text, changed in place."""

    contract: TableContract
    clean: pd.DataFrame
    text: pd.DataFrame
    rng: np.random.Generator
    as_of: pd.Timestamp
    village_ids: frozenset[str]

    def set(self, rows: np.ndarray, column: str, values) -> None:
        self.text.iloc[rows, self.text.columns.get_loc(column)] = values

    def random_villages(self, n: int) -> np.ndarray:
        return self.rng.choice(np.array(sorted(self.village_ids)), size=n)


def export_as_strings(tables: dict[str, pd.DataFrame]) -> dict[str, pd.DataFrame]:
    """Every table with every cell as text, the way a platform writes a CSV dump:
    timestamps ``2024-03-05 14:23:00+08:00``, booleans ``true``/``false``, nulls empty."""
    return {name: text_frame(frame) for name, frame in tables.items()}


def format_timestamps(values: pd.Series) -> np.ndarray:
    """Timezone-aware timestamps as the export writes them (local time and UTC offset)."""
    return np.asarray(timestamps_as_text(values).to_pylist(), dtype=object)


def _fake_village_ids(t: _Table, n: int) -> list[str]:
    """Valid-looking 12-digit codes: a real county and town, a village number not in use."""
    fakes = []
    for code in t.random_villages(n):
        candidate = code
        while candidate in t.village_ids:
            candidate = f"{code[:9]}{t.rng.integers(900, 1000)}"
        fakes.append(candidate)
    return fakes


def _unknown_village(t: _Table, rows: np.ndarray, column: str) -> None:
    fakes = _fake_village_ids(t, len(rows))
    if t.contract.column(column).kind == "id_list":
        old = t.text[column].iloc[rows].str.split(LIST_SEPARATOR)
        fakes = [LIST_SEPARATOR.join([f, *items[1:]]) for f, items in zip(fakes, old)]
    t.set(rows, column, fakes)


def _reversed_dates(t: _Table, rows: np.ndarray, later: str) -> None:
    earlier = next(a for a, b in t.contract.time_order if b == later)
    hours = pd.to_timedelta(t.rng.integers(1, 30 * 24, len(rows)), unit="h").to_numpy()
    t.set(rows, later, format_timestamps(t.clean[earlier].iloc[rows] - hours))


def _future_date(t: _Table, rows: np.ndarray, column: str) -> None:
    seconds = pd.to_timedelta(t.rng.integers(SECONDS_PER_DAY, 365 * SECONDS_PER_DAY, len(rows)), unit="s")
    t.set(rows, column, format_timestamps(pd.Series(t.as_of + seconds)))


def _bad_code(t: _Table, rows: np.ndarray, column: str) -> None:
    t.set(rows, column, t.rng.choice(np.array(BOGUS_CODES), size=len(rows)))


def _rendered(t: _Table, rows: np.ndarray, column: str, renderers) -> list[str]:
    """Each row's time in ``column`` written by one of ``renderers``, chosen at random."""
    choice = t.rng.integers(0, len(renderers), len(rows))
    local = t.clean[column].iloc[rows].dt.tz_convert(TIMEZONE)
    return [renderers[c](ts) for c, ts in zip(choice, local)]


def _invalid_date(t: _Table, rows: np.ndarray, column: str) -> None:
    t.set(rows, column, _rendered(t, rows, column, INVALID_DATES))


def _alternative_date(t: _Table, rows: np.ndarray, column: str) -> None:
    t.set(rows, column, _rendered(t, rows, column, [lambda ts, f=f: ts.strftime(f) for f in ALTERNATIVE_FORMATS]))


def _personal_data(t: _Table, rows: np.ndarray, column: str) -> None:
    added = []
    for village in t.random_villages(len(rows)):
        mobile = f"1{t.rng.integers(3, 10)}{t.rng.integers(0, 10**9):09d}"
        birth = pd.Timestamp("1950-01-01") + pd.Timedelta(days=int(t.rng.integers(0, 365 * 55)))
        template = PERSONAL_DATA[t.rng.integers(0, len(PERSONAL_DATA))]
        added.append(template.format(
            mobile=mobile, mobile_spaced=f"{mobile[:3]} {mobile[3:7]} {mobile[7:]}",
            id_card=f"{village[:6]}{birth:%Y%m%d}{t.rng.integers(0, 1000):03d}{'0123456789X'[t.rng.integers(0, 11)]}",
            landline=f"{t.rng.integers(2_000_000, 10_000_000)}",
        ))
    old = t.text[column].iloc[rows].fillna("").to_numpy()
    t.set(rows, column, [o + a for o, a in zip(old, added)])


@dataclass(frozen=True)
class DefectKind:
    """A way rows get damaged: which columns it can hit, what it does, what ingest must say."""

    name: str
    expected_reason: str
    columns: Callable[[TableContract], list[str]]
    damage: Callable[[_Table, np.ndarray, str], None] | None
    """None for duplicates, which are inserted when the table is assembled."""


def _event_time(c: TableContract) -> list[str]:
    return [c.event_time] if c.event_time else []


DEFECT_KINDS = (
    DefectKind("duplicate_row", DUPLICATE, lambda c: [c.key], None),
    DefectKind("unknown_village", "unknown_village",
               lambda c: [col.name for col in c.columns if col.references == VILLAGE_REF], _unknown_village),
    DefectKind("reversed_dates", TIME_ORDER, lambda c: [later for _, later in c.time_order], _reversed_dates),
    DefectKind("future_date", FUTURE_DATE, _event_time, _future_date),
    DefectKind("bad_code", BAD_CODE, lambda c: [col.name for col in c.columns if col.codes], _bad_code),
    DefectKind("invalid_date_format", BAD_DATE, _event_time, _invalid_date),
    DefectKind("alternative_date_format", ACCEPTED, _event_time, _alternative_date),
    DefectKind("personal_data_in_text", REDACTED,
               lambda c: [col.name for col in c.columns if col.role == "free_text"], _personal_data),
)


def inject_dirty(tables: dict[str, pd.DataFrame], rng: np.random.Generator, rate: float = 0.01, *,
                 as_of: pd.Timestamp) -> tuple[dict[str, pd.DataFrame], pd.DataFrame]:
    """All tables as text with bad data injected, and the injection log.

    About ``rate`` of each table's rows are damaged, split evenly over the defect kinds that
    apply to the table (at least one row per kind when ``rate`` > 0). No row gets two
    defects, and rows already doomed by a cascade get none. The log has
    one row per damaged or cascading row: ``table``, ``row`` (1-based, in the dirty table),
    ``key``, ``kind``, ``column`` and ``expected_reason`` — a reject reason, or ``accepted``
    (another date format) or ``redacted`` (personal data in free text). Deterministic for
    a given ``rng``.
    """
    as_of = pd.Timestamp(as_of).tz_convert(TIMEZONE)
    text = export_as_strings(tables)
    village_ids = frozenset(tables["regions"]["village_id"].astype(str)) if "regions" in tables else frozenset()
    rejected_keys: dict[str, set[str]] = {}
    dirty, logs = dict(text), []
    for name, contract in CONTRACTS.items():
        if name not in tables:
            continue
        t = _Table(contract, tables[name].reset_index(drop=True), text[name].reset_index(drop=True).copy(), rng,
                   as_of, village_ids)
        log = _damage(t, rate, _cascades(t, rejected_keys))
        dirty[name], log = _assemble(t, log)
        logs.append(log)
        rejecting = log[~log["expected_reason"].isin([ACCEPTED, REDACTED, DUPLICATE])]
        rejected_keys[f"{name}.{contract.key}"] = set(rejecting["key"])
    log = pd.concat(logs, ignore_index=True) if logs else pd.DataFrame(columns=list(LOG_COLUMNS))
    return dirty, log


def _cascades(t: _Table, rejected_keys: dict[str, set[str]]) -> list[pd.DataFrame]:
    """Log rows for the rows of ``t`` that refer to a rejected key (the first such column
    names the reason)."""
    found = []
    doomed = np.zeros(len(t.clean), dtype=bool)
    for column in t.contract.columns:
        keys = rejected_keys.get(column.references or "")
        if not keys:
            continue
        values = t.clean[column.name].astype("str")
        if column.kind == "id_list":
            hit = values.str.split(LIST_SEPARATOR).map(lambda items: any(i in keys for i in items), na_action="ignore")
        else:
            hit = values.isin(keys)
        rows = np.flatnonzero(hit.fillna(False).to_numpy(dtype=bool) & ~doomed)
        doomed[rows] = True
        found.append(_log_rows(t, rows, CASCADE, column.name, reference_reason(column)))
    return found


def _damage(t: _Table, rate: float, cascades: list[pd.DataFrame]) -> pd.DataFrame:
    """Damage ``rate`` of the rows, split evenly over the kinds that apply, sparing rows doomed
    by a cascade; the log, by clean row position."""
    doomed = np.concatenate([np.arange(0)] + [c["row"].to_numpy() for c in cascades])
    pool = t.rng.permutation(np.setdiff1d(np.arange(len(t.clean)), doomed))
    kinds = [(kind, kind.columns(t.contract)) for kind in DEFECT_KINDS if kind.columns(t.contract)]
    per_kind = int(np.ceil(rate * len(t.clean) / len(kinds)))
    logs, used = list(cascades), 0
    for kind, candidates in kinds:
        rows = pool[used : used + per_kind]
        used += len(rows)
        chosen = np.array(candidates)[t.rng.integers(0, len(candidates), len(rows))]
        for column in candidates:
            hit = rows[chosen == column]
            if len(hit) and kind.damage is not None:
                kind.damage(t, hit, column)
            logs.append(_log_rows(t, hit, kind.name, column, kind.expected_reason))
    return pd.concat(logs, ignore_index=True)


def _log_rows(t: _Table, rows: np.ndarray, kind: str, column: str, reason: str) -> pd.DataFrame:
    return pd.DataFrame({
        "table": t.contract.name,
        "row": np.asarray(rows, dtype=np.int64),
        "key": t.clean[t.contract.key].iloc[rows].astype("str").to_numpy(),
        "kind": kind,
        "column": column,
        "expected_reason": reason,
    }, columns=list(LOG_COLUMNS))


def _assemble(t: _Table, log: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The dirty table (each duplicated row followed by its copy) and the log with 1-based
    row numbers in it; a duplicate's log row points at the copy."""
    copies = np.zeros(len(t.text), dtype=np.int64)
    copies[log.loc[log["kind"] == "duplicate_row", "row"].to_numpy()] = 1
    repeats = 1 + copies
    first_row = np.cumsum(repeats) - repeats + 1
    dirty = t.text.iloc[np.repeat(np.arange(len(t.text)), repeats)].reset_index(drop=True)
    log = log.assign(row=first_row[log["row"].to_numpy()] + (log["kind"] == "duplicate_row").to_numpy())
    return dirty, log.sort_values("row", kind="stable").reset_index(drop=True)
