"""Why a source row is rejected: the reason codes, in the order that picks a row's reason.

A row can fail several checks at once; its reject names the first reason in
``REJECT_REASONS`` (then the first column in contract order). Content problems come first
because they are what a data team fixes at the source; a time-order or a dangling reference is
judged on the row as a whole, and a duplicate only among rows that pass every other check.
"""

from __future__ import annotations

from features.contracts import CONTRACTS, Column

MALFORMED_LINE = "malformed_line"
"""A line of a text file with the wrong number of cells: not a row at all."""
BAD_DATE = "bad_date"
"""A timestamp that no accepted format parses (``05/03/2024``, ``2024-13-45``)."""
BAD_VALUE = "bad_value"
"""Not a number or boolean, or a number outside the column's range."""
BAD_CODE = "bad_code"
"""A category (or list item) that is not in the column's code list."""
UNPLACED = "unplaced"
"""Event coordinates that are missing, unreadable or in no region (outside every boundary, or
farther than the allowed distance from every region centre)."""
MISSING_VALUE = "missing_value"
"""Empty where the contract requires a value."""
DUPLICATE = "duplicate"
"""The key already appeared in an earlier row that was kept (the first valid copy is kept)."""
FUTURE_DATE = "future_date"
"""A timestamp after the as-of date of the ingest."""
TIME_ORDER = "time_order"
"""A later timestamp (mediated, closed, resolved, next project stage) before its start."""


def reference_reason(column: Column) -> str:
    """The reason for a value that is not among the accepted keys ``column`` references:
    ``unknown_village`` for a reference to ``regions.village_id``, and so on."""
    if column.references is None:
        raise ValueError(f"column {column.name!r} references no table")
    return "unknown_" + column.references.split(".", 1)[1].removesuffix("_id")


REFERENCE_REASONS = tuple(
    dict.fromkeys(reference_reason(c) for t in CONTRACTS.values() for c in t.columns if c.references)
)
REJECT_REASONS = (
    (MALFORMED_LINE, BAD_DATE, BAD_VALUE, BAD_CODE, UNPLACED, MISSING_VALUE, FUTURE_DATE, TIME_ORDER)
    + REFERENCE_REASONS
    + (DUPLICATE,)
)
"""Every reject reason, most important first."""
