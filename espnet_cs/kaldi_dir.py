"""Reading and atomically writing Kaldi-style ``key value`` files (``text``, ``utt2spk``, ...).

kaldiio reads ``wav.scp``/``ark`` files but has no reader for plain-text maps, hence these few lines.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable, Mapping


def read_kaldi_map(path: str | Path) -> dict[str, str]:
    """``{key: rest of line}``; a line with a key only maps to ``""``.

    Raises:
        ValueError: on a duplicate key, naming the file and line.
    """
    result: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip():
                continue
            key, _, value = line.strip().partition(" ")
            if key in result:
                raise ValueError(f"{path}:{number}: duplicate key {key!r}")
            result[key] = value.strip()
    return result


def write_atomic(path: str | Path, content: str) -> None:
    """Write ``content`` to ``path`` through a temporary file, so a reader never sees half of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(content, encoding="utf-8")
    os.replace(tmp, path)


def write_kaldi_map(path: str | Path, entries: Mapping[str, str] | Iterable[tuple[str, str]]) -> None:
    """Write ``key value`` lines sorted by key (Kaldi's order), atomically."""
    items = entries.items() if isinstance(entries, Mapping) else entries
    write_atomic(path, "".join(f"{k} {v}".rstrip() + "\n" for k, v in sorted(items)))
