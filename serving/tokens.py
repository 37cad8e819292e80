"""API tokens: created once, shown once, stored only as SHA-256 digests.

A token reads ``fq_<id>_<secret>``: ``id`` (8 hex digits) is public and names the token in the
audit log; ``secret`` is 32 random bytes (URL-safe base 64). The store — a JSON file, by default
``<data_root>/secrets/api_tokens.json``, mode 0600 — keeps per token its id, scope, creation time,
an optional note and ``sha256(token)``. A 256-bit random secret needs no slow password hash: the
digest cannot be reversed or guessed. Digests are compared with :func:`hmac.compare_digest`, and a
token with an unknown id is compared against a dummy digest, so that timing tells nothing.

Scopes: ``city`` (every county), ``county:<county_id>`` (that county's villages and projects
only), ``admin`` (every county, and ``POST /admin/reload``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
import threading
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

from fengqiao.errors import ConfigurationError
from fengqiao.publish import write_atomic

FORMAT = "fengqiao-tokens/1"
SCOPE = re.compile(r"city|admin|county:[0-9A-Za-z_-]{1,32}")
_TOKEN = re.compile(r"fq_([0-9a-f]{8})_[A-Za-z0-9_-]{43}")
_DUMMY_DIGEST = hashlib.sha256(b"no such token").hexdigest()


@dataclass(frozen=True)
class Principal:
    """Who is asking: the token's public id and its scope."""

    token_id: str
    scope: str

    @property
    def county(self) -> str | None:
        """The one county a ``county:<id>`` token may see; None for city and admin tokens."""
        return self.scope.removeprefix("county:") if self.scope.startswith("county:") else None

    @property
    def is_admin(self) -> bool:
        return self.scope == "admin"


@dataclass(frozen=True)
class TokenRecord:
    """One token as stored: never the token itself."""

    id: str
    scope: str
    sha256: str
    created_at: str
    note: str = ""


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_scope(scope: str) -> str:
    """``scope`` if it is ``city``, ``admin`` or ``county:<id>``; else a ConfigurationError."""
    if not SCOPE.fullmatch(scope):
        raise ConfigurationError(f"scope {scope!r} is not city, admin or county:<county_id> (e.g. county:610722)")
    return scope


def read_records(path: Path) -> list[TokenRecord]:
    """The token records of a store file; a missing, unreadable or malformed store is a
    ConfigurationError naming the file and the entry and field at fault."""
    path = Path(path)
    if not path.exists():
        raise ConfigurationError(f"token store {path} does not exist: create a token with "
                                 "`fengqiao token create --scope city` (or set FENGQIAO_API_TOKENS_FILE)")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ConfigurationError(f"token store {path} is not readable JSON ({type(err).__name__}): "
                                 "restore it or create a new one with `fengqiao token create`") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT or not isinstance(document.get("tokens"), list):
        raise ConfigurationError(f"token store {path}: expected an object with format {FORMAT!r} and a list 'tokens'")
    records = []
    for i, entry in enumerate(document["tokens"]):
        where = f"token store {path}, tokens[{i}]"
        if not isinstance(entry, dict):
            raise ConfigurationError(f"{where}: not an object")
        for name in ("id", "scope", "sha256", "created_at"):
            if not isinstance(entry.get(name), str):
                raise ConfigurationError(f"{where}: field {name!r} is missing or not a string")
        if not re.fullmatch(r"[0-9a-f]{8}", entry["id"]):
            raise ConfigurationError(f"{where}: field 'id' is not 8 hex digits")
        if not re.fullmatch(r"[0-9a-f]{64}", entry["sha256"]):
            raise ConfigurationError(f"{where}: field 'sha256' is not a SHA-256 hex digest")
        if not SCOPE.fullmatch(entry["scope"]):
            raise ConfigurationError(f"{where}: field 'scope' is not city, admin or county:<id>")
        records.append(TokenRecord(entry["id"], entry["scope"], entry["sha256"], entry["created_at"],
                                   str(entry.get("note", ""))))
    return records


def _write_records(path: Path, records: list[TokenRecord]) -> None:
    document = {"format": FORMAT, "tokens": [asdict(r) for r in records]}

    def write(staged: Path) -> None:
        staged.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        staged.chmod(0o600)

    write_atomic(Path(path), write)


def create_token(path: Path, scope: str, note: str = "") -> tuple[str, TokenRecord]:
    """A new random token of ``scope``, added to the store at ``path`` (created if missing).
    Returns the token — the only time it exists outside its holder's hands — and its record."""
    check_scope(scope)
    records = read_records(path) if Path(path).exists() else []
    taken = {r.id for r in records}
    token_id = secrets.token_hex(4)
    while token_id in taken:
        token_id = secrets.token_hex(4)
    token = f"fq_{token_id}_{secrets.token_urlsafe(32)}"
    record = TokenRecord(token_id, scope, digest(token), datetime.now(UTC).isoformat(timespec="seconds"), note)
    _write_records(path, [*records, record])
    return token, record


def revoke_token(path: Path, token_id: str) -> TokenRecord:
    """Remove the token ``token_id`` from the store; a ConfigurationError if there is none."""
    records = read_records(path)
    kept = [r for r in records if r.id != token_id]
    if len(kept) == len(records):
        raise ConfigurationError(f"token store {path} has no token with id {token_id!r} (`fengqiao token list`)")
    _write_records(path, kept)
    return next(r for r in records if r.id == token_id)


class TokenStore:
    """The tokens a running server accepts. It re-reads the file when it changes (checked at most
    once per ``recheck_seconds``), so that a token created or revoked takes effect without a
    restart; a store damaged while serving is reported and the last good one kept."""

    def __init__(self, path: Path, recheck_seconds: float = 1.0) -> None:
        self.path = Path(path)
        self.recheck_seconds = recheck_seconds
        self._lock = threading.Lock()
        self._by_id = self._load()
        if not self._by_id:
            raise ConfigurationError(f"token store {self.path} holds no token: create one with "
                                     "`fengqiao token create --scope city`")
        self._stamp = self._file_stamp()
        self._checked = time.monotonic()
        self.load_error: str | None = None

    def _load(self) -> dict[str, TokenRecord]:
        return {r.id: r for r in read_records(self.path)}

    def _file_stamp(self) -> tuple[int, int]:
        stat = os.stat(self.path)
        return stat.st_mtime_ns, stat.st_size

    def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._checked < self.recheck_seconds:
            return
        with self._lock:
            self._checked = now
            try:
                stamp = self._file_stamp()
                if stamp != self._stamp:
                    self._by_id, self._stamp, self.load_error = self._load(), stamp, None
            except (OSError, ConfigurationError) as err:
                self.load_error = str(err)

    def authenticate(self, token: str) -> Principal | None:
        """The principal of a presented token, or None when it is not a token of this store."""
        self._refresh()
        match = _TOKEN.fullmatch(token)
        record = self._by_id.get(match.group(1)) if match else None
        expected = record.sha256 if record else _DUMMY_DIGEST
        if hmac.compare_digest(digest(token), expected) and record is not None:
            return Principal(record.id, record.scope)
        return None
