"""Which pipeline steps are already done: fingerprints of each step's inputs and outputs.

A step is done when its inputs have the fingerprint recorded at its last success and its
outputs still have the fingerprint it left them with. A re-run with the same inputs then
skips the work, and a flow that failed half-way resumes from the first step not done. The
ledger is a small JSON file under the data root, written atomically.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import pandas as pd

from fengqiao.publish import write_atomic

_CHUNK = 1 << 22


def _hash_file(digest: hashlib._Hash, path: Path) -> None:
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)


def fingerprint(paths: Iterable[Path] = (), **values: object) -> str:
    """A content fingerprint of files and folders (every file below, by relative name) and of
    plain values (settings, options). A missing path is part of the fingerprint as missing."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(json.dumps(values, sort_keys=True, default=str).encode())
    for path in sorted(Path(p) for p in paths):
        digest.update(str(path).encode())
        if path.is_file():
            _hash_file(digest, path)
        elif path.is_dir():
            for child in sorted(c for c in path.rglob("*") if c.is_file()):
                digest.update(str(child.relative_to(path)).encode())
                _hash_file(digest, child)
        else:
            digest.update(b"<missing>")
    return digest.hexdigest()


@dataclass
class StepRecord:
    """The last success of a step: its fingerprints, when it finished and what it reported."""

    inputs: str
    outputs: str
    finished_at: str
    lines: list[str] = field(default_factory=list)


class Ledger:
    """The steps done under one data root (``<data_root>/pipeline_ledger.json``)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def _read(self) -> dict[str, dict]:
        if not self.path.exists():
            return {}
        try:
            return json.loads(self.path.read_text(encoding="utf-8"))
        except ValueError:
            return {}  # an unreadable ledger only means nothing is known to be done

    def done(self, step: str, inputs: str, outputs: str) -> StepRecord | None:
        """The record of ``step`` if it succeeded with these inputs and left these outputs."""
        found = self._read().get(step)
        if found and found["inputs"] == inputs and found["outputs"] == outputs:
            return StepRecord(**found)
        return None

    def record(self, step: str, inputs: str, outputs: str, lines: list[str]) -> StepRecord:
        """Record a success of ``step``."""
        entries = self._read()
        record = StepRecord(inputs, outputs, pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds"), lines)
        entries[step] = asdict(record)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = json.dumps(entries, indent=1, ensure_ascii=False)
        write_atomic(self.path, lambda p: p.write_text(text, encoding="utf-8"))
        return record


__all__ = ["Ledger", "StepRecord", "fingerprint"]
