"""The numba kernels: sweeps over events grouped by entity, all snapshots at once.

Every kernel takes events grouped by entity — ``entity_ptr[e]:entity_ptr[e + 1]`` are entity
``e``'s events, sorted by time — and writes one block of the feature matrix, one row per
feature and one column per (entity, snapshot): column ``e * n_snapshots + s``. Times are
int64 epoch seconds; a negative code means "not counted here". Entities are independent, so
the kernels run ``prange`` over them.

Tie rule (docs/decisions/001-tie-semantics.md): at snapshot t an event counts when its time is
strictly before t; an event spanning (start, end] counts at every snapshot t with
start < t <= end.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from features.contracts import SECONDS_PER_DAY


@njit(cache=True, inline="always")
def first_after(snapshots, step, x):
    """Index of the first snapshot later than ``x`` (``len(snapshots)`` if none).

    With evenly spaced snapshots (``step`` > 0 seconds) this is one division instead of a
    binary search.
    """
    n = snapshots.shape[0]
    if step > 0:
        if x < snapshots[0]:
            return 0
        i = (x - snapshots[0]) // step + 1
        return i if i < n else n
    return np.searchsorted(snapshots, x, side="right")


@njit(cache=True, parallel=True)
def count_in_intervals(entity_ptr, starts, closes, spans, codes, n_codes, weights, snapshots, step, out):
    """Sum of event weights over events whose interval contains each snapshot, by span and code.

    Event i covers snapshots t with ``starts[i] < t <= min(starts[i] + spans[k], closes[i])``:
    with ``start`` = event time that is "in the last ``span`` seconds" (window counts); with a
    close time it is "and still open at t" (backlogs); with ``start`` = time - horizon and span =
    horizon it is "the event lies in [t, t + horizon)" (labels). ``closes`` and ``weights`` may
    be empty (no closing, weight 1). Output row ``k * n_codes + code``.
    """
    n_entities = entity_ptr.shape[0] - 1
    n_snap = snapshots.shape[0]
    n_spans = spans.shape[0]
    has_close = closes.shape[0] > 0
    weighted = weights.shape[0] > 0
    for e in prange(n_entities):
        diff = np.zeros((n_spans * n_codes, n_snap + 1))
        for i in range(entity_ptr[e], entity_ptr[e + 1]):
            code = codes[i]
            if code < 0:
                continue
            lo = first_after(snapshots, step, starts[i])
            if lo >= n_snap:
                continue
            w = weights[i] if weighted else 1.0
            for k in range(n_spans):
                end = starts[i] + spans[k]
                if has_close and closes[i] < end:
                    end = closes[i]
                hi = first_after(snapshots, step, end)
                if hi > lo:
                    diff[k * n_codes + code, lo] += w
                    diff[k * n_codes + code, hi] -= w
        base = e * n_snap
        for r in range(n_spans * n_codes):
            acc = 0.0
            for s in range(n_snap):
                acc += diff[r, s]
                out[r, base + s] = acc


@njit(cache=True, parallel=True)
def decayed_counts(entity_ptr, times, codes, n_codes, weights, taus, snapshots, out):
    """Exponentially decayed (Hawkes) intensity sum_{t_i < t} w_i exp(-(t - t_i) / tau), by tau and code.

    O(n) by the recursion R_i = exp(-(t_i - t_{i-1}) / tau) R_{i-1} + w_i. ``taus`` in seconds.
    Output row ``k * n_codes + code``.
    """
    n_entities = entity_ptr.shape[0] - 1
    n_snap = snapshots.shape[0]
    n_taus = taus.shape[0]
    weighted = weights.shape[0] > 0
    for e in prange(n_entities):
        level = np.zeros((n_taus, n_codes))
        last = np.zeros(n_codes, dtype=np.int64)
        seen = np.zeros(n_codes, dtype=np.bool_)
        i = entity_ptr[e]
        end = entity_ptr[e + 1]
        base = e * n_snap
        for s in range(n_snap):
            t = snapshots[s]
            while i < end and times[i] < t:
                code = codes[i]
                if code >= 0:
                    w = weights[i] if weighted else 1.0
                    gap = times[i] - last[code]
                    for k in range(n_taus):
                        if seen[code]:
                            level[k, code] = level[k, code] * np.exp(-gap / taus[k]) + w
                        else:
                            level[k, code] = w
                    seen[code] = True
                    last[code] = times[i]
                i += 1
            for code in range(n_codes):
                for k in range(n_taus):
                    value = 0.0
                    if seen[code]:
                        value = level[k, code] * np.exp(-(t - last[code]) / taus[k])
                    out[k * n_codes + code, base + s] = value


@njit(cache=True, parallel=True)
def days_since_last(entity_ptr, times, codes, n_codes, snapshots, out):
    """Days from the last event before each snapshot to the snapshot (NaN when there is none)."""
    n_entities = entity_ptr.shape[0] - 1
    n_snap = snapshots.shape[0]
    for e in prange(n_entities):
        last = np.zeros(n_codes, dtype=np.int64)
        seen = np.zeros(n_codes, dtype=np.bool_)
        i = entity_ptr[e]
        end = entity_ptr[e + 1]
        base = e * n_snap
        for s in range(n_snap):
            t = snapshots[s]
            while i < end and times[i] < t:
                code = codes[i]
                if code >= 0:
                    seen[code] = True
                    last[code] = times[i]
                i += 1
            for code in range(n_codes):
                out[code, base + s] = (t - last[code]) / SECONDS_PER_DAY if seen[code] else np.nan


@njit(cache=True, parallel=True)
def repeat_keys(entity_ptr, times, pair_codes, min_count, spans, snapshots, scratch, out):
    """Distinct keys with at least ``min_count`` events in [t - span, t), by span.

    ``pair_codes`` numbers each distinct (entity, key) pair (negative: no key), so that entities
    use disjoint slots of the zeroed ``scratch`` counts and can run in parallel.
    """
    n_entities = entity_ptr.shape[0] - 1
    n_snap = snapshots.shape[0]
    for e in prange(n_entities):
        start = entity_ptr[e]
        end = entity_ptr[e + 1]
        base = e * n_snap
        for k in range(spans.shape[0]):
            lo = start
            hi = start
            n_repeat = 0
            for s in range(n_snap):
                t = snapshots[s]
                while hi < end and times[hi] < t:
                    p = pair_codes[hi]
                    if p >= 0:
                        scratch[p] += 1
                        if scratch[p] == min_count:
                            n_repeat += 1
                    hi += 1
                while lo < hi and times[lo] < t - spans[k]:
                    p = pair_codes[lo]
                    if p >= 0:
                        if scratch[p] == min_count:
                            n_repeat -= 1
                        scratch[p] -= 1
                    lo += 1
                out[k, base + s] = n_repeat
            for j in range(lo, hi):
                if pair_codes[j] >= 0:
                    scratch[pair_codes[j]] = 0


@njit(cache=True, parallel=True)
def max_in_intervals(entity_ptr, starts, ends, values, snapshots, step, out):
    """Raise ``out[e * n_snap + s]`` to the largest value of the entity's intervals (start, end] holding s."""
    n_entities = entity_ptr.shape[0] - 1
    n_snap = snapshots.shape[0]
    for e in prange(n_entities):
        base = e * n_snap
        for i in range(entity_ptr[e], entity_ptr[e + 1]):
            lo = first_after(snapshots, step, starts[i])
            hi = first_after(snapshots, step, ends[i])
            for s in range(lo, hi):
                if values[i] > out[base + s]:
                    out[base + s] = values[i]


@njit(cache=True, parallel=True)
def weighted_sums(indptr, indices, weights, n_snap, src, src_rows, out):
    """out[f, e * n_snap + s] = sum_j weights[j] * src[src_rows[f], indices[j] * n_snap + s].

    ``indptr``/``indices``/``weights`` are a CSR list of each target entity's source entities:
    a village's neighbours (spill-over) or a project's affected villages (aggregates).
    """
    n_entities = indptr.shape[0] - 1
    n_features = src_rows.shape[0]
    for e in prange(n_entities):
        acc = np.zeros(n_snap)
        base = e * n_snap
        for f in range(n_features):
            row = src_rows[f]
            acc[:] = 0.0
            for j in range(indptr[e], indptr[e + 1]):
                w = weights[j]
                src_base = indices[j] * n_snap
                for s in range(n_snap):
                    acc[s] += w * src[row, src_base + s]
            for s in range(n_snap):
                out[f, base + s] = acc[s]
