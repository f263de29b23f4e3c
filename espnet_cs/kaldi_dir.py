"""Kaldi-style ``key value`` files (``text``, ``utt2spk``, ...): reading, atomic writing, spk2utt.

kaldiio reads ``wav.scp``/``ark`` files but has no reader for plain-text maps, and ESPnet's
``read_2columns_text`` fails on a blank line and cannot report problems, hence these few lines.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterable, Mapping
from enum import Enum
from functools import partial
from pathlib import Path


class LineProblem(Enum):
    """A line :func:`read_kaldi_map` passes to its ``report`` callback; the value describes it."""

    BLANK = "blank"
    DUPLICATE_KEY = "duplicate key"
    NOT_UTF8 = "not UTF-8"


Report = Callable[[LineProblem, int, str], None]
"""``report(problem, line number, key)``; the key is ``""`` for a blank line."""


def read_kaldi_map(path: str | Path, report: Report | None = None, verbatim: bool = False) -> dict[str, str]:
    """``{key: rest of line}`` of a ``<key> [value...]`` file; a key alone maps to ``""``.

    The value is stripped; with ``verbatim`` the key ends at the first space and the value is the
    rest of the line as written (a hypothesis may begin with a space). Lines end at LF or CRLF
    (a lone CR is part of the line). Blank lines are skipped.
    With ``report``, every blank line, duplicate key (its first value is kept) and line that is
    not UTF-8 (kept, the bad bytes read as U+FFFD) goes to ``report`` and nothing raises.

    Raises:
        ValueError: without ``report``, on a duplicate key, naming the file and line.
        UnicodeDecodeError: without ``report``, on bytes that are not UTF-8.
    """
    errors = "strict" if report is None else "replace"
    report = report or partial(_raise_on_duplicate, path)
    table: dict[str, str] = {}
    with open(path, encoding="utf-8", errors=errors, newline="\n") as f:  # a \r inside a line does not end it
        for number, raw in enumerate(f, 1):
            line = raw.removesuffix("\n").removesuffix("\r")  # LF or CRLF (Windows) line endings
            if verbatim:
                key, _, value = line.partition(" ")
            else:
                key, value = (line.split(maxsplit=1) + ["", ""])[:2]
            if "\ufffd" in line:
                report(LineProblem.NOT_UTF8, number, key)
            if not key:
                report(LineProblem.BLANK, number, "")
            elif key in table:
                report(LineProblem.DUPLICATE_KEY, number, key)
            else:
                table[key] = value if verbatim else value.strip()
    return table


def _raise_on_duplicate(path: str | Path, problem: LineProblem, number: int, key: str) -> None:
    """:func:`read_kaldi_map`'s report without one: a duplicate key is an error, a blank line is skipped."""
    if problem is LineProblem.DUPLICATE_KEY:
        raise ValueError(f"{path}:{number}: duplicate key {key!r}")


def spk2utt(utt2spk: Mapping[str, str]) -> dict[str, list[str]]:
    """Invert ``utt2spk`` into ``{speaker: utterances}``, both sorted (Kaldi's order)."""
    speakers: dict[str, list[str]] = {}
    for utt, spk in sorted(utt2spk.items()):
        speakers.setdefault(spk, []).append(utt)
    return dict(sorted(speakers.items()))


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
