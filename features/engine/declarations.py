"""The vocabulary of event sources: which table, which time, which entity, what to count.

These are plain frozen dataclasses, so that a source can be written in Python (the default
catalogue, ``features.engine.catalogue``) or in a city's configuration file (YAML, read by
``features.city``) and recorded with each run as JSON. The feature families
(``features.engine.families``) turn a declaration into features; no code names a table.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from features.contracts import LIST_SEPARATOR

_COMPARE = {"==": operator.eq, "!=": operator.ne, ">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt}

ConditionOp = Literal["in", "not_in", "==", "!=", ">=", ">", "<=", "<", "is_null", "not_null", "contains"]


@dataclass(frozen=True)
class Condition:
    """A per-event test on one column, e.g. ``Condition("participants", ">=", 5)``.

    ``contains`` tests membership in a ``|``-joined list column. Missing values never match
    (except for ``is_null``).
    """

    column: str
    op: ConditionOp
    value: Any = None

    def __post_init__(self) -> None:
        if isinstance(self.value, list):  # from JSON or YAML: keep conditions hashable
            object.__setattr__(self, "value", tuple(self.value))

    def mask(self, frame: pd.DataFrame) -> np.ndarray:
        col = frame[self.column]
        if self.op == "is_null":
            return np.asarray(col.isna())
        if self.op == "not_null":
            return np.asarray(col.notna())
        if self.op in ("in", "not_in"):
            hit = col.isin(list(self.value))
            result = hit if self.op == "in" else ~hit
        elif self.op == "contains":
            sep, item = re.escape(LIST_SEPARATOR), re.escape(str(self.value))
            pattern = f"(?:^|{sep}){item}(?:{sep}|$)"
            result = col.astype("str").str.contains(pattern, regex=True)
        else:
            result = _COMPARE[self.op](col, self.value)
        return np.asarray(pd.Series(result).fillna(False).astype(bool)) & np.asarray(col.notna())


@dataclass(frozen=True)
class Code:
    """One code of a categorical column with its zh/en words for reasons."""

    code: str
    zh: str
    en: str


def codes(values: tuple[str, ...], labels: dict[str, tuple[str, str]]) -> tuple[Code, ...]:
    return tuple(Code(v, *labels[v]) for v in values)


@dataclass(frozen=True)
class EventCounter:
    """One way of counting a source's events, and which families to build from it.

    ``stem``, ``zh`` and ``en`` name what is counted; with ``by`` (a category column, or a
    ``|``-joined list column with ``by_list``) they hold ``{code}`` and one feature is made per
    code. ``where`` keeps only matching events; ``weight`` sums a column instead of counting.
    Families: ``windows`` (events in the last w days), ``open_windows`` (events of the last
    w days still open at t, see ``EventSource.closure``), ``decays`` (exponentially decayed
    intensity, one feature per decay time in ``decays``, in days), ``recency`` (days since the last event: (stem, zh, en)
    of one event, e.g. ("patrol", "巡查", "patrol")), ``lag_weeks`` (events in each of the last n weeks, one
    feature per week), ``long_memory`` (events since the data begins, and their empirical-Bayes rate per year).
    """

    stem: str
    zh: str
    en: str
    by: str | None = None
    codes: tuple[Code, ...] = ()
    by_list: bool = False
    where: Condition | None = None
    weight: str | None = None
    windows: tuple[int, ...] = ()
    open_windows: tuple[int, ...] = ()
    decays: tuple[int, ...] = ()
    recency: tuple[str, str, str] | None = None
    lag_weeks: int = 0
    long_memory: bool = False
    group: str | None = None
    code_groups: tuple[tuple[str, str], ...] = ()
    """(code, group) pairs that override the group, e.g. land disputes → land_and_projects."""

    def __post_init__(self) -> None:
        if (self.by is None) != (not self.codes):
            raise ValueError(f"counter {self.stem!r}: give both `by` and `codes`, or neither")
        if self.by is not None and (self.recency is not None or self.lag_weeks or self.long_memory):
            raise ValueError(f"counter {self.stem!r}: recency, weekly lags and long memory are for counters without codes")

    @property
    def n_codes(self) -> int:
        return max(1, len(self.codes))

    def group_of(self, code: Code | None, default: str) -> str:
        if code is not None:
            for c, g in self.code_groups:
                if c == code.code:
                    return g
        return self.group or default

    def words(self, code: Code | None) -> tuple[str, str, str]:
        """(name stem, zh noun, en noun) for one code (or the whole counter)."""
        if code is None:
            return self.stem, self.zh, self.en
        return (
            self.stem.format(code=code.code),
            self.zh.format(code=code.zh),
            self.en.format(code=code.en),
        )

    def columns(self) -> set[str]:
        cols = {c for c in (self.by, self.weight) if c}
        if self.where is not None:
            cols.add(self.where.column)
        return cols


@dataclass(frozen=True)
class Closure:
    """When an event stops being open, as known at the time it was recorded.

    The event is open at t unless ``time`` is before t and (if given) ``when`` holds — e.g.
    a dispute is unresolved until an outcome 'resolved' is recorded at ``mediated_at``.
    """

    time: str
    when: Condition | None = None
    stem: str = "unresolved"
    zh: str = "未化解"
    en: str = "unresolved"
    group: str = "unresolved_backlog"


@dataclass(frozen=True)
class RepeatKeys:
    """Distinct keys (pseudonymised petitioners) with at least ``min_count`` events in a window.

    An aggregate for the place: how many distinct repeat petitioners, never who.
    """

    key: str
    windows: tuple[int, ...]
    min_count: int = 2
    stem: str = "repeat_petitioners"
    zh: str = "重复信访人"
    en: str = "repeat petitioners"
    group: str = "petitions"


@dataclass(frozen=True)
class Ratio:
    """A derived feature ``scale * numerator / denominator`` (NaN where the denominator is 0)."""

    name: str
    numerator: str
    denominator: str
    group: str
    unit: str
    zh: str
    en: str
    scale: float = 1.0


def trend(stem: str, zh: str, en: str) -> Ratio:
    """The 30-day rate of ``stem`` relative to its 365-day rate (1 = as usual)."""
    return Ratio(
        name=f"{stem}_trend",
        numerator=f"{stem}_30d",
        denominator=f"{stem}_365d",
        scale=365 / 30,
        group="trend",
        unit="ratio",
        zh=f"近30天{zh}发生率为全年平均的 {{value}} 倍",
        en=f"{en} in the last 30 days at {{value}}× the yearly rate",
    )


@dataclass(frozen=True)
class EventSource:
    """A table of events for one entity kind: ``entity`` is the column naming it (``village_id``).

    ``name`` keys the source (and prefixes nothing: counter stems name the features).
    ``spill`` lists this source's features to spread over neighbouring villages
    (``nearby_<feature>``); ``ratios`` derives features from its counts.
    """

    name: str
    table: str
    time: str
    counters: tuple[EventCounter, ...]
    group: str
    entity: str = "village_id"
    closure: Closure | None = None
    repeat: RepeatKeys | None = None
    spill: tuple[str, ...] = ()
    ratios: tuple[Ratio, ...] = field(default=())

    def columns(self) -> set[str]:
        """Every column the source reads (its entity and time included)."""
        cols = {self.entity, self.time}
        for counter in self.counters:
            cols |= counter.columns()
        if self.closure is not None:
            cols.add(self.closure.time)
            if self.closure.when is not None:
                cols.add(self.closure.when.column)
        if self.repeat is not None:
            cols.add(self.repeat.key)
        return cols
