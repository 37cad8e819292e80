"""Incident-history columns the models derive from the warehouse's ``incidents`` table:
weekly lag counts (the input of the lag baseline) and the empirical-Bayes long-memory rate.

Both need nothing but ``regions`` and ``incidents``, so they exist for every city. They follow
the feature engine's rule (docs/decisions/001-tie-semantics.md): at snapshot t an event counts
when it happened before t, in a window when t − w ≤ time < t.

The long-memory rate is computed here rather than in the feature engine while that engine is
being restructured; it is a pure function of the incidents before t, so moving it into the
engine later changes no number.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from models.timesplit import as_datetime64

WEEK_NS = np.int64(7 * 86_400 * 10**9)
YEAR_NS = 365.25 * 86_400 * 10**9
LAG_WEEKS = 5


def lag_columns(weeks: int = LAG_WEEKS) -> list[str]:
    """Names of the weekly lag counts: ``incidents_lag_1w`` (last week) … ``incidents_lag_5w``."""
    return [f"incidents_lag_{k}w" for k in range(1, weeks + 1)]


DERIVED_COLUMNS: tuple[str, ...] = (*lag_columns(), "incidents_all_history", "incident_rate_shrunk")
"""Every column ``incident_history_columns`` adds to a feature table."""


def counts_before(entity_of_event: np.ndarray, event_ns: np.ndarray, entity_of_row: np.ndarray,
                  moment_ns: np.ndarray) -> np.ndarray:
    """For each row, the number of events of its entity strictly before its moment. Times are
    compared in whole seconds, sub-second parts floored (the engine's rule); entities are small
    non-negative integers and events of entity -1 (unknown) are ignored."""
    keep = entity_of_event >= 0
    span = np.int64(2) ** 40
    event_s = event_ns[keep] // 10**9
    moment_s = moment_ns // 10**9
    base = min(event_s.min() if len(event_s) else 0, moment_s.min())
    keys = np.sort(entity_of_event[keep].astype(np.int64) * span + (event_s - base))
    rows = entity_of_row.astype(np.int64) * span
    return (np.searchsorted(keys, rows + (moment_s - base), side="left") - np.searchsorted(keys, rows, side="left")).astype(np.int64)


def weekly_lags(entity_of_event: np.ndarray, event_ns: np.ndarray, entity_of_row: np.ndarray, moment_ns: np.ndarray,
                weeks: int = LAG_WEEKS) -> np.ndarray:
    """Incidents in each of the last ``weeks`` weeks before t: column k-1 counts
    t − 7k days ≤ time < t − 7(k−1) days. Shape (rows, weeks)."""
    before = [counts_before(entity_of_event, event_ns, entity_of_row, moment_ns - k * WEEK_NS) for k in range(weeks + 1)]
    return np.column_stack([before[k - 1] - before[k] for k in range(1, weeks + 1)]).astype(np.float32)


def shrunk_rates(counts: np.ndarray, exposure_years: np.ndarray, prior_group: np.ndarray, moment: np.ndarray) -> np.ndarray:
    """Empirical-Bayes (gamma–Poisson) incident rate per year of each row: (k + a_g) / (E + b),
    with the prior mean a_g/b the pooled rate of the row's group (county) at that moment and
    the prior strength b (years) from the method of moments over all rows at that moment —
    the spread of raw rates beyond what Poisson noise explains. Rare events need it: a village
    with one incident in three years is not three times as risky as one with none in one."""
    out = np.empty(len(counts), dtype=np.float64)
    frame = pd.DataFrame({"k": counts.astype(float), "e": exposure_years, "g": prior_group, "t": moment})
    for _, rows in frame.groupby("t", sort=False).groups.items():
        part = frame.loc[rows]
        e = np.maximum(part["e"].to_numpy(), 1e-3)
        raw = part["k"].to_numpy() / e
        mean = raw.mean()
        between = raw.var() - np.mean(mean / e)
        strength = mean / between if between > 1e-12 and mean > 0 else 1e6  # no spread: pool fully
        pooled = part.groupby("g")["k"].transform("sum") / part.groupby("g")["e"].transform("sum")
        out[np.asarray(frame.index.get_indexer(rows))] = (part["k"].to_numpy() + pooled.to_numpy() * strength) / (e + strength)
    return out


def incident_history_columns(frame: pd.DataFrame, entity: str, id_column: str, incidents: pd.DataFrame,
                             regions: pd.DataFrame) -> pd.DataFrame:
    """The weekly lags and the long-memory rate for every row of a feature table.

    Villages: the village's incidents; the rate is shrunk toward its county's. Projects: the
    incidents linked to the project; the rate is shrunk toward all projects', exposure counted
    from the project's first snapshot (its announcement)."""
    entity_ids = pd.Index(frame[id_column].astype("str").unique())
    link = "village_id" if entity == "village" else "project_id"
    events = incidents[incidents[link].notna()]
    event_entity = entity_ids.get_indexer(events[link].astype("str"))
    event_ns = as_datetime64(events["occurred_at"]).astype(np.int64)
    row_entity = entity_ids.get_indexer(frame[id_column].astype("str"))
    row_ns = as_datetime64(frame["snapshot"]).astype(np.int64)
    lags = weekly_lags(event_entity, event_ns, row_entity, row_ns)
    counts = counts_before(event_entity, event_ns, row_entity, row_ns)
    if entity == "village":
        start = event_ns.min() if len(event_ns) else row_ns.min()
        exposure = (row_ns - start) / YEAR_NS
        county = regions.set_index(regions["village_id"].astype("str"))["county_id"].astype("str")
        group = county.reindex(frame[id_column].astype("str")).fillna("").to_numpy()
    else:
        first = frame.groupby(id_column)["snapshot"].transform("min")
        exposure = (row_ns - as_datetime64(first).astype(np.int64)) / YEAR_NS + 7 / 365.25
        group = np.zeros(len(frame), dtype=np.int64)
    out = pd.DataFrame(lags, columns=lag_columns(), index=frame.index)
    out["incidents_all_history"] = counts.astype(np.float32)
    out["incident_rate_shrunk"] = shrunk_rates(counts, exposure, group, row_ns).astype(np.float32)
    return out
