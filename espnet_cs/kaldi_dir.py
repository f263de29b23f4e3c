"""Reading and atomically writing Kaldi-style ``key value`` files (``text``, ``utt2spk``, ...).

kaldiio reads ``wav.scp``/``ark`` files but has no reader for plain-text maps, hence these few lines.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterable, Mapping


def read_kaldi_map(path: str | Path) -> dict[str, str]:
    """``{key: rest of line}`` of a ``<key> [value...]`` file; a key alone maps to ``""``.

    Raises:
        ValueError: on a duplicate key, naming the file and line.
    """
    table: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            parts = line.split(maxsplit=1)
            if not parts:
                continue
            if parts[0] in table:
                raise ValueError(f"{path}:{number}: duplicate key {parts[0]!r}")
            table[parts[0]] = parts[1].strip() if len(parts) == 2 else ""
    return table


def write_atomic(path: str | Path, content: str | bytes) -> None:
    """Write ``content`` through a temporary file renamed over ``path``: readers never see half of it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(content.encode("utf-8") if isinstance(content, str) else content)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def write_kaldi_map(path: str | Path, entries: Mapping[str, object] | Iterable[tuple[str, object]]) -> None:
    """Write ``key value`` lines sorted by key (Kaldi's order), atomically."""
    items = entries.items() if isinstance(entries, Mapping) else entries
    write_atomic(path, "".join(f"{k} {v}".rstrip() + "\n" for k, v in sorted(items)))
