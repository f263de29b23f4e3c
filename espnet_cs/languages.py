"""The language of a character: Mandarin (a CJK ideograph), English (a Latin letter) or neither.

The one classifier behind the tokenizer's language tags (:mod:`espnet_cs.tokenizer`), scoring's
tokens and categories (:mod:`espnet_cs.scoring`) and the corpus transcript convention
(:mod:`espnet_cs.corpora.text_norm`), so the three agree on every character.
"""

from __future__ import annotations

import enum
import re
import unicodedata


class Language(enum.IntEnum):
    """Language tag of a token; integer values are used in tensors."""

    ZH = 0
    EN = 1
    OTHER = 2


IDEOGRAPHS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
"""The CJK ideograph blocks as the body of a regular-expression class: extension A, the unified and
the compatibility ideographs, extensions B-G and the compatibility supplement; no other character
lies in them (radicals, strokes, ``〇``, ``々``, ``。`` lie outside). Extensions H and I (Unicode 15,
15.1) wait until Python's Unicode database knows them (14.0 in Python 3.11): until then scoring's
normalization drops them as unassigned."""

_IDEOGRAPH = re.compile(f"[{IDEOGRAPHS}]")


def is_ideograph(text: str) -> bool:
    """True if ``text`` is a single CJK ideograph (:data:`IDEOGRAPHS`)."""
    return _IDEOGRAPH.fullmatch(text) is not None


def char_language(char: str) -> Language:
    """Language of one character: CJK ideographs are Mandarin, Latin letters (full-width ones and
    ones with diacritics too) English, anything else (digits, punctuation, other scripts) neither."""
    if is_ideograph(char):
        return Language.ZH
    if unicodedata.category(char).startswith("L") and unicodedata.name(char, "").startswith(
        ("LATIN", "FULLWIDTH LATIN")
    ):
        return Language.EN
    return Language.OTHER
