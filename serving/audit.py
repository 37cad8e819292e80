"""The audit log: one JSON line per request — when, which token, which route, which entity, what
status — appended to a file that the server only ever appends to. No payloads, no query values
other than the entity asked about, no client addresses."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path


class AuditLog:
    """Appends records to ``path`` (opened ``O_APPEND``: each line is written by one ``write``
    call, so concurrent writers never interleave within a line)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def record(self, token_id: str | None, method: str, route: str, entity: str | None, status: int) -> None:
        line = json.dumps({"time": datetime.now(UTC).isoformat(timespec="milliseconds"), "token": token_id,
                           "method": method, "route": route, "entity": entity, "status": status},
                          ensure_ascii=False, separators=(",", ":"))
        os.write(self._fd, (line + "\n").encode())

    def close(self) -> None:
        os.close(self._fd)
