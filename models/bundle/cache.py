"""Local copies of registry bundles, so that a command that only needs the champions (``fengqiao
plan``) does not start MLflow: importing it and opening its store take about 7 of the 15 seconds
such a command otherwise spends.

A copy is used only while it is provably what the registry would answer:

- ``runs:/…`` and ``models:/<name>/<number>`` name content that never changes: their copy is good
  for ever;
- an alias (``models:/<name>@champion``) or ``models:/<name>/latest`` can move. With the embedded
  SQLite store its copy is good while the store's database file and journals are byte for byte
  the same size and modification time as when the copy was resolved: moving an alias, in
  ``fengqiao promote`` or in MLflow's UI, writes to that file. With any other store (a tracking
  server) an alias is resolved every time.

Each copy is an ordinary bundle folder, checked on reading like any other (checksums), so a
damaged copy is refused and fetched again rather than served.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
from pathlib import Path

from models.bundle.format import META_FILE, BundleError, read_arrays, read_meta
from models.bundle.scoring import ScoringBundle, download_bundle, is_registry_uri, load_bundle

SOURCE_FILE = "source.json"
"""Beside each copy: the URI and store it came from, the registry version, and the store's state."""
SQLITE_PREFIX = "sqlite:///"
JOURNALS = ("", "-wal", "-journal", "-shm")


def _moves(source: str) -> bool:
    """Whether the URI can resolve to other content later (an alias, or the latest version)."""
    if source.startswith("runs:/"):
        return False
    name = source.removeprefix("models:/")
    return "@" in name or not name.rpartition("/")[2].isdigit()


def store_state(tracking_uri: str) -> list[list] | None:
    """The size and modification time (ns) of an SQLite store's database file and journals;
    ``None`` for any other store, whose changes cannot be seen from here."""
    if not tracking_uri.startswith(SQLITE_PREFIX):
        return None
    database = Path(tracking_uri.removeprefix(SQLITE_PREFIX))
    state = []
    for suffix in JOURNALS:
        path = database.with_name(database.name + suffix)
        if path.exists():
            stat = path.stat()
            state.append([path.name, stat.st_size, stat.st_mtime_ns])
    return state


def _entry(cache_dir: Path, source: str, tracking_uri: str) -> Path:
    key = hashlib.sha256(f"{tracking_uri}\n{source}".encode()).hexdigest()[:24]
    return Path(cache_dir) / key


def _current_copy(entry: Path, source: str, tracking_uri: str, state: list | None) -> ScoringBundle | None:
    """The copy in ``entry`` if it is still what ``source`` resolves to, else ``None``."""
    try:
        recorded = json.loads((entry / SOURCE_FILE).read_text())
    except (OSError, ValueError):
        return None
    if recorded.get("source") != source or recorded.get("tracking_uri") != tracking_uri:
        return None
    if _moves(source) and (state is None or recorded.get("store_state") != state):
        return None
    try:
        meta = read_meta(entry)
        return ScoringBundle(meta, read_arrays(entry, meta), str(recorded["version"]))
    except (BundleError, KeyError):
        return None


def load_cached_bundle(source: str, tracking_uri: str, cache_dir: Path) -> ScoringBundle:
    """The bundle at ``source`` (a folder, or an MLflow model URI in the store at
    ``tracking_uri``), from the local copy in ``cache_dir`` while it is current (see the module
    docstring), else from MLflow, keeping a new copy. Raises ``BundleError`` as ``load_bundle``."""
    if not is_registry_uri(source):
        return load_bundle(source)
    entry = _entry(cache_dir, source, tracking_uri)
    state = store_state(tracking_uri)
    if (copy := _current_copy(entry, source, tracking_uri, state)) is not None:
        return copy
    from models.tracking import use_store

    use_store(tracking_uri)
    Path(cache_dir).mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=cache_dir))
    try:
        folder, version = download_bundle(source, staging / "download")
        meta = read_meta(folder)
        bundle = ScoringBundle(meta, read_arrays(folder, meta), version)
        fresh = staging / "copy"
        fresh.mkdir()
        for name in (meta["arrays"]["file"], META_FILE):
            shutil.copy2(folder / name, fresh / name)
        (fresh / SOURCE_FILE).write_text(json.dumps(
            {"source": source, "tracking_uri": tracking_uri, "version": version, "store_state": state}))
        _replace(entry, fresh)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return bundle


def _replace(entry: Path, fresh: Path) -> None:
    """Put ``fresh`` in place of ``entry``. Another process doing the same at once may win; its
    copy is as good, so losing the race is no error."""
    old = entry.with_name(entry.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    try:
        if entry.exists():
            entry.rename(old)
        fresh.rename(entry)
    except OSError:
        return
    shutil.rmtree(old, ignore_errors=True)
