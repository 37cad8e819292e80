"""One way for the studies in experiments/ to report: a markdown table printed and written to
experiments/results/<name>.md, with the raw record beside it as <name>.json.

Imported by the scripts of this folder (run as `python experiments/<script>.py`, which puts
this folder on the import path).
"""

from __future__ import annotations

import json
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def publish(name: str, preamble: list[str], header: list[str], rows: list[dict], record: object) -> str:
    """Print the preamble lines and the table of ``rows`` (columns ``header``), write them to
    ``results/<name>.md`` and ``record`` to ``results/<name>.json``; return the text."""
    lines = [*preamble, "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(r[h]) for h in header) + " |" for r in rows]
    table = "\n".join(lines)
    print(table)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.md").write_text(table + "\n")
    (RESULTS / f"{name}.json").write_text(json.dumps(record, indent=2) + "\n")
    return table
