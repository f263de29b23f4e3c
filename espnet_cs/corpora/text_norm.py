"""Transcript normalization shared by the corpus preparations.

Written transcripts follow the repo's convention (as ``espnet_cs.synth`` writes them): lowercase,
Mandarin characters unspaced, one space between English words and at every Mandarin-English
boundary, no punctuation (``这个 project 的 deadline``). That is how Whisper writes, so it is what
training teaches; scoring splits Mandarin into characters itself (:func:`espnet_cs.text.units`),
and a written transcript scores exactly as the units it was made from.

:func:`normalize_transcript` does, in order:

1. :func:`espnet_cs.text.canonical`: NFKC (full-width letters, digits, brackets and punctuation become
   half-width: ``ＰＲＯＪＥＣＴ`` -> ``project``), OpenCC ``t2s`` (``這個`` -> ``这个``), lowercase;
2. :func:`remove_markers`: annotations in brackets go with their content (``(ppl)``, ``<unk>``,
   ``<v-noise>``, ``[S]``, ``{...}``); a bracket left without its partner becomes a space, so an
   unbalanced bracket never swallows words;
3. :func:`to_words`: punctuation and symbols become spaces (apostrophes inside words stay:
   ``don't``), and the scoring units are joined as above.

Corpus-specific conventions (SEAME's bracketed discourse particles, stray noise words) are
handled by the corpus modules before step 2.
"""

from __future__ import annotations

import re

from espnet_cs.text import canonical, infer_category, is_ideograph, units

_MARKER = re.compile(r"\([^()]*\)|\[[^\[\]]*\]|<[^<>]*>|\{[^{}]*\}")
_BRACKET = re.compile(r"[()\[\]<>{}]")


def remove_markers(text: str) -> str:
    """Drop bracketed annotations with their content, then any unpaired bracket character."""
    return _BRACKET.sub(" ", _MARKER.sub(" ", text))


def join_units(units: list[str]) -> str:
    """Join scoring units: no space between two Mandarin characters, one space elsewhere."""
    pieces = []
    for previous, unit in zip([""] + units, units):
        if previous and not (is_ideograph(previous) and is_ideograph(unit)):
            pieces.append(" ")
        pieces.append(unit)
    return "".join(pieces)


def to_words(text: str) -> str:
    """Punctuation and symbols out, units joined by the corpus convention."""
    return join_units(units(text))


def normalize_transcript(text: str) -> str:
    """A raw transcript in the corpus convention; empty if nothing spoken is left."""
    return to_words(remove_markers(canonical(text)))


def category(text: str) -> str:
    """``cs``, ``zh`` or ``en`` of a non-empty normalized transcript (as scoring infers it)."""
    return infer_category(units(text))
