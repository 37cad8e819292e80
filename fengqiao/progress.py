"""How a long job tells its caller how far it is, without knowing how that is shown.

Library code (the simulator, ingest, training) takes a ``Progress`` callback and calls it as
work advances; the CLI shows it as a step line and a progress bar, a test may record it.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str, int, int], None]
"""Told ``(step, done, total)`` as a job advances: ``done`` of ``total`` units of the step (rows,
days, batches); ``total`` 0 when a step starts without a count."""


def quiet(step: str, done: int, total: int) -> None:
    """A ``Progress`` that ignores everything: the default of library functions."""
