"""Text: the one normalization, scoring units and the language of a character or unit.

The language of a character (:func:`char_language`) is the one classifier behind the tokenizer's
language tags (:mod:`espnet_cs.tokenizer`), scoring's units and categories (:mod:`espnet_cs.scoring`),
stage 2's transcript check (:mod:`espnet_cs.data_format`) and the corpus transcript convention
(:mod:`espnet_cs.corpora.text_norm`), so they agree on every character.

References and hypotheses go through the same :func:`normalize_text`:

1. NFKC: full-width letters, digits and punctuation become half-width (``ｐｒｏｊｅｃｔ`` ->
   ``project``, ``（`` -> ``(``), compatibility ideographs become unified ones.
2. OpenCC ``t2s``: traditional Chinese becomes simplified (``這個`` -> ``这个``).
3. Lowercase.
4. Whisper's non-speech markers are removed with their content: ``[music]``, ``(laughs)``,
   ``<noise>`` (full-width brackets included, by step 1); ``♪`` goes in step 6 as a symbol.
5. Apostrophes (``'``, and ``’ ‘ ʼ`` mapped to it) are kept only between two letters/digits of a
   word (``don't``, ``it's``); anywhere else they are quotes and removed.
6. All other punctuation (Unicode ``P*``: ASCII and CJK ``，。！？、；：“”‘’（）《》…``),
   symbols (``S*``) and control/format characters (``C*``) become spaces. Hyphens are
   punctuation, so hyphenated words are split (``e-mail`` -> ``e mail``), as in Whisper's
   BasicTextNormalizer: ``email`` against ``e-mail`` counts as errors.
7. Whitespace is collapsed.

:func:`units` turns normalized text into scoring units: every CJK ideograph (:data:`IDEOGRAPHS`)
is a unit, and every run of other letters/digits (with inner apostrophes) is a word unit, so
``这个project的deadline`` -> ``这 个 project 的 deadline``.
"""

from __future__ import annotations

import enum
import re
import unicodedata

import opencc

CATEGORIES = ("cs", "zh", "en")
"""The categories of an utterance: code-switched, Mandarin only, English only."""


class Language(enum.IntEnum):
    """Language tag of a token or scoring unit; integer values are used in tensors."""

    ZH = 0
    EN = 1
    OTHER = 2


IDEOGRAPHS = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
"""The CJK ideograph blocks as the body of a regular-expression class: extension A, the unified and
the compatibility ideographs, extensions B-G and the compatibility supplement; no other character
lies in them (radicals, strokes, ``〇``, ``々``, ``。`` lie outside). Extensions H and I (Unicode 15,
15.1) wait until Python's Unicode database knows them (14.0 in Python 3.11): until then the
normalization drops them as unassigned."""

_IDEOGRAPH = re.compile(f"[{IDEOGRAPHS}]")
_WORD_CHAR = rf"[^\W_{IDEOGRAPHS}]"  # a letter or digit that is not a CJK ideograph
_UNIT_RE = re.compile(rf"[{IDEOGRAPHS}]|{_WORD_CHAR}+(?:'{_WORD_CHAR}+)*")
_NON_SPEECH_RE = re.compile(r"\[[^\]]*\]|\([^)]*\)|<[^>]*>")
_APOSTROPHE_RE = re.compile("[\u2019\u2018\u02bc]")
_QUOTE_RE = re.compile(rf"(?<!{_WORD_CHAR})'|'(?!{_WORD_CHAR})")
_T2S = opencc.OpenCC("t2s")


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


def canonical(text: str) -> str:
    """Steps 1-3 of the normalization: NFKC, traditional -> simplified Chinese, lowercase."""
    return _T2S.convert(unicodedata.normalize("NFKC", text)).lower()


def normalize_text(text: str) -> str:
    """Normalize a reference or hypothesis for scoring (see the module docstring)."""
    text = _NON_SPEECH_RE.sub(" ", canonical(text))
    text = _QUOTE_RE.sub(" ", _APOSTROPHE_RE.sub("'", text))
    text = "".join(" " if c != "'" and unicodedata.category(c)[0] in "PSC" else c for c in text)
    return " ".join(text.split())


def units(text: str) -> list[str]:
    """Scoring units of ``text`` after normalization: single CJK ideographs and words."""
    return _UNIT_RE.findall(normalize_text(text))


def unit_language(unit: str) -> Language:
    """Language of a scoring unit: ``ZH`` for a CJK ideograph, ``EN`` for a word with a Latin
    letter, ``OTHER`` for anything else (numbers, words of other scripts)."""
    if is_ideograph(unit):
        return Language.ZH
    return Language.EN if any(char_language(c) == Language.EN for c in unit) else Language.OTHER


def infer_category(units: list[str]) -> str:
    """``cs`` if ``units`` mix Mandarin and English characters (:func:`char_language`), ``zh`` if
    they have Mandarin but no English ones (digits do not count as English), ``en`` otherwise."""
    if not units:
        raise ValueError("cannot infer the category of an empty reference")
    languages = {char_language(c) for unit in units for c in unit}
    has_zh, has_en = Language.ZH in languages, Language.EN in languages
    return "cs" if has_zh and has_en else "zh" if has_zh else "en"
