"""Preparation of real corpora as Kaldi data dirs: SEAME, ASRU 2019, AISHELL-1 test, LibriSpeech test-clean."""

from __future__ import annotations


class CorpusError(Exception):
    """A corpus cannot be prepared; ``problems`` names every place found wrong (path, ``file:line``)."""

    def __init__(self, problems: list[str]):
        super().__init__(f"{len(problems)} problem(s):\n" + "\n".join(f"  {p}" for p in problems))
        self.problems = problems
