"""Tables to event arrays: each source's rows sorted once by (entity, time), then per-counter codes.

This is the thin layer between pandas and the kernels: it maps entity ids to indices, times
to epoch seconds, category values to codes, and groups events by entity (``entity_ptr``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from features.contracts import LIST_SEPARATOR
from features.engine.declarations import Closure, Condition, EventCounter
from features.engine.timeline import NEVER, epoch_seconds

_EMPTY_F64 = np.empty(0, dtype=np.float64)


@dataclass(frozen=True)
class SortedEvents:
    """One table's events for one entity type, sorted by (entity, time).

    ``order`` holds the table's row positions in sorted order. Rows with a missing entity or
    time are not events of this kind (a dispute not linked to a project, not yet mediated);
    rows naming an unknown entity are left out too and counted in ``unmatched``.
    """

    frame: pd.DataFrame
    order: np.ndarray
    entity: np.ndarray
    entity_ptr: np.ndarray
    times: np.ndarray
    unmatched: int

    def __len__(self) -> int:
        return len(self.order)


def codes_of(values: pd.Series | pa.Array, categories: pd.Index | list[str]) -> np.ndarray:
    """The position of each value in ``categories`` (-1 when missing or not among them).

    A hash lookup in Arrow: no Python string objects, even for ten million rows.
    """
    if isinstance(values, pd.Series):
        series = values if isinstance(values.dtype, pd.StringDtype) else values.astype("str")
        values = pa.array(series, from_pandas=True)
    value_set = pa.array(np.asarray(categories, dtype=object), pa.string())
    found = pc.index_in(values, value_set=value_set)
    return np.asarray(pc.fill_null(found, -1).to_numpy(zero_copy_only=False), dtype=np.int32)


def entity_pointers(entity: np.ndarray, n_entities: int) -> np.ndarray:
    """CSR offsets of entity-sorted events: entity e's events are ``ptr[e]:ptr[e + 1]``."""
    ptr = np.zeros(n_entities + 1, dtype=np.int64)
    np.cumsum(np.bincount(entity, minlength=n_entities), out=ptr[1:])
    return ptr


def sort_events(
    frame: pd.DataFrame, entity_column: str, time_column: str, entities: pd.Index, timezone: str
) -> SortedEvents:
    """Sort a table's rows by (entity index, epoch time), dropping rows that match no entity.

    Naive times are wall times in ``timezone``.
    """
    entity_all = codes_of(frame[entity_column], entities)
    times_all = epoch_seconds(frame[time_column], timezone)
    valid = (entity_all >= 0) & (times_all != NEVER)
    rows = np.flatnonzero(valid)
    unmatched = int(((entity_all < 0) & frame[entity_column].notna().to_numpy()).sum())
    entity, times = entity_all[rows], times_all[rows]
    if len(rows):
        t0 = times.min()
        span = int(times.max() - t0) + 1
        if span * (len(entities) + 1) < 2**62:
            perm = np.argsort(entity.astype(np.int64) * span + (times - t0), kind="stable")
        else:
            perm = np.lexsort((times, entity))
        rows, entity, times = rows[perm], entity[perm], times[perm]
    return SortedEvents(
        frame=frame,
        order=rows,
        entity=entity.astype(np.int64),
        entity_ptr=entity_pointers(entity, len(entities)),
        times=np.ascontiguousarray(times),
        unmatched=unmatched,
    )


@dataclass(frozen=True)
class CounterEvents:
    """A counter's view of sorted events: a code per event (negative: not counted), weights.

    For a list column (``by_list``) an event appears once per listed code, so the arrays may be
    longer than the table; ``rows`` maps them back to positions in the sorted events.
    """

    entity_ptr: np.ndarray
    times: np.ndarray
    codes: np.ndarray
    weights: np.ndarray
    rows: np.ndarray | None

    def take(self, sorted_values: np.ndarray) -> np.ndarray:
        """Per-sorted-event values aligned with these arrays."""
        return sorted_values if self.rows is None else sorted_values[self.rows]


def _mask(events: SortedEvents, condition: Condition | None) -> np.ndarray | None:
    if condition is None:
        return None
    return condition.mask(events.frame)[events.order]


def counter_events(events: SortedEvents, counter: EventCounter) -> CounterEvents:
    """Codes (and weights) of a counter's events, in the sorted order of ``events``."""
    where = _mask(events, counter.where)
    weights = _EMPTY_F64
    if counter.weight is not None:
        weights = events.frame[counter.weight].to_numpy(dtype=np.float64, na_value=0.0)[events.order]
    if counter.by_list:
        # one entry per listed code: split the |-joined lists once, in Arrow
        lists = pc.split_pattern(pa.array(events.frame[counter.by].astype("str"), from_pandas=True), LIST_SEPARATOR)
        item_codes = codes_of(pc.list_flatten(lists), [c.code for c in counter.codes])
        sorted_position = np.full(len(events.frame), -1, dtype=np.int64)
        sorted_position[events.order] = np.arange(len(events.order))
        rows = sorted_position[np.asarray(pc.list_parent_indices(lists))]
        keep = (rows >= 0) & (item_codes >= 0)
        if where is not None:
            keep[keep] = where[rows[keep]]
        rows, item_codes = rows[keep], item_codes[keep]
        by_row = np.lexsort((item_codes, rows))
        rows, item_codes = rows[by_row], item_codes[by_row]
        first = np.ones(len(rows), dtype=bool)  # a code listed twice on one row counts once
        first[1:] = (rows[1:] != rows[:-1]) | (item_codes[1:] != item_codes[:-1])
        rows, item_codes = rows[first], item_codes[first]
        return CounterEvents(
            entity_ptr=entity_pointers(events.entity[rows], len(events.entity_ptr) - 1),
            times=events.times[rows],
            codes=item_codes,
            weights=weights[rows] if len(weights) else weights,
            rows=rows,
        )
    if counter.by is not None:
        codes = codes_of(events.frame[counter.by], [c.code for c in counter.codes])[events.order]
    else:
        codes = np.zeros(len(events), dtype=np.int32)
    if where is not None:
        codes[~where] = -1
    return CounterEvents(events.entity_ptr, events.times, codes, weights, None)


def close_times(events: SortedEvents, closure: Closure, timezone: str) -> np.ndarray:
    """When each sorted event closes, as recorded (``NEVER`` if it does not close)."""
    closes = epoch_seconds(events.frame[closure.time], timezone)[events.order]
    when = _mask(events, closure.when)
    if when is not None:
        closes[~when] = NEVER
    return closes


def pair_codes(events: SortedEvents, key_column: str) -> tuple[np.ndarray, int]:
    """A number for each distinct (entity, key) pair of the sorted events (-1: missing key)."""
    keys, uniques = pd.factorize(events.frame[key_column].to_numpy()[events.order])
    if len(keys) == 0:
        return keys.astype(np.int64), 0
    combined = events.entity * (len(uniques) + 1) + keys
    _, pairs = np.unique(combined, return_inverse=True)
    pairs = pairs.astype(np.int64)
    pairs[keys < 0] = -1
    return pairs, int(pairs.max()) + 1
