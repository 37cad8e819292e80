"""Publishing outputs atomically, as a set: the one way every Fengqiao command writes files.

A command writes each of its outputs into a staging folder beside the destination (same file
system, so a move is a rename) and nothing in the destination changes until every output has
been written. Only then are the staged files renamed into place, one after the other, and the
outputs this run declared stale are removed. A command that fails half-way therefore leaves the
previous outputs exactly as they were, and a reader never sees half a file.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


class Publication:
    """The outputs of one run, staged under ``directory`` until they are published together.

    Use :func:`publishing`; write each output to ``stage(name)`` and call ``remove(name)`` for an
    output of an earlier run that this run does not replace and that must not survive it.
    """

    def __init__(self, directory: Path, staging: Path) -> None:
        self.directory = directory
        self.staging = staging
        self._removed: set[str] = set()

    def stage(self, name: str) -> Path:
        """Where to write the output that will become ``directory / name`` (sub-folders allowed)."""
        path = self.staging / name
        path.parent.mkdir(parents=True, exist_ok=True)
        self._removed.discard(name)
        return path

    def remove(self, name: str) -> None:
        """Delete ``directory / name`` when the set is published (nothing happens before)."""
        self._removed.add(name)

    def _commit(self) -> None:
        for staged in sorted(p for p in self.staging.rglob("*") if p.is_file()):
            target = self.directory / staged.relative_to(self.staging)
            target.parent.mkdir(parents=True, exist_ok=True)
            staged.replace(target)
        for name in sorted(self._removed):
            (self.directory / name).unlink(missing_ok=True)


@contextmanager
def publishing(directory: Path) -> Iterator[Publication]:
    """Stage outputs under ``directory`` and publish them together when the block ends without
    an exception; on an exception nothing in ``directory`` changes and the staging is removed."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=directory))
    try:
        publication = Publication(directory, staging)
        yield publication
        publication._commit()
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_atomic(path: Path, write: Callable[[Path], object]) -> Path:
    """Write one file through ``write(staged_path)`` and move it into place: a publication of one."""
    path = Path(path)
    with publishing(path.parent) as publication:
        write(publication.stage(path.name))
    return path
