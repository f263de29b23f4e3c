"""What the audio files of a data dir are: the sha256 of each file's bytes, cached by the file's identity.

Stage 2 keeps a formatted dir only if every audio file it was made from has the same bytes now.
Reading every file on every rerun would cost a pass over the corpus, so each digest is recorded
with the file's identity (:func:`identity`: size, modification and change times, inode and
device) and read again only when that identity differs. The change time (``st_ctime_ns``) is
what makes the cache sound: writing a file's bytes sets it to the current time, and no tool
(``cp -p``, ``rsync -a``, ``tar``, ``touch -r``, ``os.utime``) can set it back; only the
modification time can be.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

MISSING = "missing"
"""The digest recorded for a file that does not exist or cannot be read (stage 2 reports it)."""


@dataclass(frozen=True)
class Record:
    """An audio file's identity when it was read, and the sha256 of its bytes then."""

    identity: tuple[int, ...]
    sha256: str

    def to_json(self) -> list:
        return [*self.identity, self.sha256]

    @classmethod
    def from_json(cls, fields: list) -> Record:
        return cls(tuple(fields[:-1]), fields[-1])


def identity(stat: os.stat_result) -> tuple[int, ...]:
    """Size, modification time, change time, inode and device of a file: any write changes one."""
    return stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_ino, stat.st_dev


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes."""
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def read_records(paths: Iterable[Path], cache: Mapping[str, Record]) -> dict[str, Record]:
    """A record of each file of ``paths``: from ``cache`` where the file's identity is the cached
    one, otherwise read from the file (one that cannot be read gets the digest :data:`MISSING`)."""
    records = {}
    for path in paths:
        cached = cache.get(str(path))
        try:
            now = identity(path.stat())
            records[str(path)] = cached if cached and cached.identity == now else Record(now, file_sha256(path))
        except OSError:
            records[str(path)] = Record((), MISSING)
    return records


def changed_files(before: Mapping[str, Record], now: Mapping[str, Record]) -> list[str]:
    """Each file whose bytes differ between two sets of records, and how (``<path>: <why>``)."""
    changes = []
    for path in sorted(before.keys() | now.keys()):
        old, new = before.get(path), now.get(path)
        if old is None:
            changes.append(f"{path}: new")
        elif new is None:
            changes.append(f"{path}: no longer named")
        elif new.sha256 == MISSING:
            changes.append(f"{path}: missing")
        elif old.sha256 != new.sha256:
            same = old.identity[:2] == new.identity[:2]
            changes.append(f"{path}: other bytes{' of the same size and modification time' if same else ''}")
    return changes
