"""The fast path for the export's own timestamps reads exactly what the general parser reads:
the same instants for the cells it takes, and every other cell left to the general parser."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
from fixtures.clean_export import AS_OF, clean_export
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.contracts import CONTRACTS
from features.ingest.mapping import DEFAULT_DATE_FORMATS
from features.ingest.parsing import ParseOptions, as_text, export_timestamps, general_timestamps, parse_timestamps
from pipelines.simulate.dirty import ALTERNATIVE_FORMATS, INVALID_DATES, inject_dirty

OPTIONS = ParseOptions(DEFAULT_DATE_FORMATS, "Europe/Berlin", warehouse_timezone="Asia/Shanghai")
"""Naive times in a zone with daylight saving, stored in another: both paths must agree anyway."""


def _general_only(cells: pd.Series) -> tuple[pd.Series, pd.Series]:
    """The reference: every non-empty cell through the general parser."""
    text = as_text(cells, OPTIONS.null_values)
    parsed = pd.Series(pd.NaT, index=text.index, dtype=f"datetime64[us, {OPTIONS.warehouse_timezone}]")
    present = text.notna()
    parsed[present] = general_timestamps(text[present], OPTIONS)
    return parsed, parsed.isna() & present


def _assert_same_as_general_parser(cells: list[str | None]) -> None:
    series = pd.Series(cells, dtype="str")
    parsed, bad = parse_timestamps(series, OPTIONS)
    expected, expected_bad = _general_only(series)
    pd.testing.assert_series_equal(parsed, expected)
    pd.testing.assert_series_equal(bad, expected_bad)


def _export_text(moment: datetime, offset_minutes: int) -> str:
    sign = "-" if offset_minutes < 0 else "+"
    return f"{moment:%Y-%m-%d %H:%M:%S}{sign}{abs(offset_minutes) // 60:02d}:{abs(offset_minutes) % 60:02d}"


_MOMENTS = st.datetimes(min_value=datetime(1000, 1, 1), max_value=datetime(2999, 12, 31))
_OFFSETS = st.integers(-(23 * 60 + 59), 23 * 60 + 59)
_EXPORT = st.builds(_export_text, _MOMENTS, _OFFSETS)
_OTHER_FORMATS = st.builds(lambda m, f: m.strftime(f), _MOMENTS,
                           st.sampled_from((*ALTERNATIVE_FORMATS, "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S%z")))
_INVALID = st.builds(lambda m, render: render(pd.Timestamp(m)),
                     st.datetimes(datetime(1990, 1, 1), datetime(2030, 1, 1)), st.sampled_from(INVALID_DATES))
_NEAR_MISSES = st.builds(
    lambda text, at, char: text[:at] + char + text[at + 1:],
    _EXPORT, st.integers(0, 24), st.sampled_from(list("0123456789 -:+T/Z9")),
)
"""Export timestamps with one character changed: impossible dates (02-30, month 13, hour 24,
second 60), a missing offset colon, a 'T', a 'Z' … — the cells a fast path could misread."""
_CELLS = st.lists(st.one_of(_EXPORT, _OTHER_FORMATS, _INVALID, _NEAR_MISSES, st.none(),
                            st.text(alphabet="0123456789-: +T", max_size=26)), max_size=40)


@settings(max_examples=100, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(_CELLS)
def test_fast_path_and_general_parser_agree_on_any_mix_of_cells(cells):
    _assert_same_as_general_parser(cells)


def test_fast_path_reads_export_timestamps_and_leaves_every_other_shape_to_the_general_parser():
    cells = pa.array([
        "2024-03-05 14:23:00+08:00", "2024-03-05 14:23:00-05:30", "2024-02-29 23:59:59+00:00",
        "2024-02-30 14:23:00+08:00", "2023-02-29 10:00:00+08:00", "2024-03-05 24:00:00+08:00",
        "2024-03-05 14:23:60+08:00", "2024-03-05 14:23:00+0800", "2024-03-05T14:23:00+08:00",
        "2024-03-05 14:23:00Z", "2024-03-05 14:23:00", "2024-3-5 14:23:00+08:00", None,
    ], type=pa.large_string())
    instants = export_timestamps(cells).to_pylist()
    expected = [pd.Timestamp(t, tz="UTC") for t in ("2024-03-05 06:23", "2024-03-05 19:53", "2024-02-29 23:59:59")]
    assert instants[:3] == expected
    assert instants[3:] == [None] * 10, "impossible dates and other shapes are not the fast path's"


def test_fast_path_agrees_with_the_general_parser_on_the_dirty_worlds_date_columns():
    tables, log = inject_dirty(clean_export(), np.random.default_rng(5), rate=0.25, as_of=AS_OF)
    assert {"invalid_date_format", "alternative_date_format"} <= set(log["kind"])
    checked = 0
    for name, frame in tables.items():
        for column in CONTRACTS[name].columns:
            if column.kind == "timestamp" and column.name in frame.columns:
                _assert_same_as_general_parser(frame[column.name].tolist())
                checked += 1
    assert checked >= 8


def test_an_offset_near_a_day_is_read_exactly():
    moment = datetime(2024, 12, 31, 23, 59, 59)
    for minutes in (23 * 60 + 59, -(23 * 60 + 59), 0):
        parsed, bad = parse_timestamps(pd.Series([_export_text(moment, minutes)], dtype="str"), OPTIONS)
        assert not bad.iloc[0]
        assert parsed.iloc[0] == pd.Timestamp(moment, tz="UTC") - timedelta(minutes=minutes)
