"""Mixed error rate (MER) scoring for Mandarin-English code-switching ASR.

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

:func:`tokenize` turns normalized text into tokens: every CJK ideograph
(:data:`espnet_cs.languages.IDEOGRAPHS`) is a token, and every run of other letters/digits (with
inner apostrophes) is a word token, so
``这个project的deadline`` -> ``这 个 project 的 deadline``.

Every metric is ``(S + D + I) / N * 100`` summed over the utterances it covers, ``N`` being the
reference tokens, from jiwer's token alignment: ``overall_mer`` over all utterances, ``cs_mer``
over code-switched ones, ``zh_cer`` over Mandarin-only ones (character tokens), ``en_wer`` over
English-only ones (word tokens). This is the mixed error rate of the CS literature, not jiwer's
``mer`` (match error rate); it exceeds 100 when insertions outnumber hits. A category without
utterances has rate ``None`` (``null`` in ``scores.json``), not 0.

Edge cases: an empty hypothesis scores all reference tokens as deletions; an utterance without
a hypothesis is scored as an empty hypothesis, logged as a warning and listed in
``missing_hypotheses``; a hypothesis for an utterance not in the reference, a reference that is
empty after normalization, and an ``utt2category`` that misses an utterance or has a category
other than cs/zh/en raise :class:`ValueError`.
"""

from __future__ import annotations

import json
import logging
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass, fields
from itertools import zip_longest
from pathlib import Path

import jiwer
import opencc

from espnet_cs.kaldi_dir import read_kaldi_map, write_atomic
from espnet_cs.languages import IDEOGRAPHS, Language, char_language

logger = logging.getLogger(__name__)

CATEGORIES = ("cs", "zh", "en")
# scores.json / result.txt metric name -> utterance category it covers (None: all)
METRICS: dict[str, str | None] = {"overall_mer": None, "cs_mer": "cs", "zh_cer": "zh", "en_wer": "en"}

_WORD_CHAR = rf"[^\W_{IDEOGRAPHS}]"  # a letter or digit that is not a CJK ideograph
_TOKEN_RE = re.compile(rf"[{IDEOGRAPHS}]|{_WORD_CHAR}+(?:'{_WORD_CHAR}+)*")
_NON_SPEECH_RE = re.compile(r"\[[^\]]*\]|\([^)]*\)|<[^>]*>")
_APOSTROPHE_RE = re.compile("[\u2019\u2018\u02bc]")
_QUOTE_RE = re.compile(rf"(?<!{_WORD_CHAR})'|'(?!{_WORD_CHAR})")
_T2S = opencc.OpenCC("t2s")


def normalize_text(text: str) -> str:
    """Normalize a reference or hypothesis for scoring (see the module docstring)."""
    text = _T2S.convert(unicodedata.normalize("NFKC", text)).lower()
    text = _NON_SPEECH_RE.sub(" ", text)
    text = _QUOTE_RE.sub(" ", _APOSTROPHE_RE.sub("'", text))
    text = "".join(" " if c != "'" and unicodedata.category(c)[0] in "PSC" else c for c in text)
    return " ".join(text.split())


def tokenize(text: str) -> list[str]:
    """Scoring tokens of ``text`` after normalization: single CJK ideographs and words."""
    return _TOKEN_RE.findall(normalize_text(text))


def infer_category(tokens: list[str]) -> str:
    """``cs`` if ``tokens`` mix Mandarin and English characters (:func:`espnet_cs.languages.char_language`),
    ``zh`` if they have Mandarin but no English ones (digits do not count as English), ``en`` otherwise."""
    if not tokens:
        raise ValueError("cannot infer the category of an empty reference")
    languages = {char_language(c) for token in tokens for c in token}
    has_zh, has_en = Language.ZH in languages, Language.EN in languages
    return "cs" if has_zh and has_en else "zh" if has_zh else "en"


@dataclass
class ErrorCounts:
    """Alignment counts summed over ``num_utts`` utterances."""

    hits: int = 0
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    num_utts: int = 0

    def __add__(self, other: ErrorCounts) -> ErrorCounts:
        return ErrorCounts(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))

    @property
    def ref_tokens(self) -> int:
        return self.hits + self.substitutions + self.deletions

    @property
    def error_rate(self) -> float | None:
        """``(S + D + I) / N`` in percent; ``None`` when no utterance was counted."""
        if self.num_utts == 0:
            return None
        return 100.0 * (self.substitutions + self.deletions + self.insertions) / self.ref_tokens

    def to_dict(self) -> dict[str, float | int | None]:
        return {
            "error_rate": self.error_rate,
            "ref_tokens": self.ref_tokens,
            **{f.name: getattr(self, f.name) for f in fields(self)},
        }


@dataclass
class UttScore:
    """One utterance's alignment: ``(op, ref_token, hyp_token)`` triples, op in ``CSDI``,
    ``None`` marking the gap of a deletion or insertion."""

    utt_id: str
    category: str
    alignment: list[tuple[str, str | None, str | None]]

    @property
    def counts(self) -> ErrorCounts:
        ops = Counter(op for op, _, _ in self.alignment)
        return ErrorCounts(ops["C"], ops["S"], ops["D"], ops["I"], num_utts=1)

    def pralign(self) -> str:
        """sclite-pralign-like block: id, category, counts, and the aligned REF/HYP/Eval lines."""
        c = self.counts
        rows: list[list[str]] = [["REF:"], ["HYP:"], ["Eval:"]]
        for op, ref, hyp in self.alignment:
            width = max(_width(ref or ""), _width(hyp or ""))
            for row, cell in zip(rows, (ref, hyp, "" if op == "C" else op)):
                row.append(_pad("*" * width if cell is None else cell, width))
        lines = [
            f"id: {self.utt_id}",
            f"category: {self.category}",
            f"Scores: (#C #S #D #I) {c.hits} {c.substitutions} {c.deletions} {c.insertions}",
        ]
        return "\n".join(lines + [" ".join([_pad(r[0], 5), *r[1:]]).rstrip() for r in rows]) + "\n"


_JIWER_OPS = {"equal": "C", "substitute": "S", "delete": "D", "insert": "I"}


def align(ref: list[str], hyp: list[str]) -> list[tuple[str, str | None, str | None]]:
    """Align two token lists with jiwer: ``(op, ref_token, hyp_token)`` triples, op in ``CSDI``."""
    (chunks,) = jiwer.process_words(" ".join(ref), " ".join(hyp)).alignments
    return [
        (_JIWER_OPS[ch.type], r, h)
        for ch in chunks
        for r, h in zip_longest(ref[ch.ref_start_idx : ch.ref_end_idx], hyp[ch.hyp_start_idx : ch.hyp_end_idx])
    ]


@dataclass
class ScoreReport:
    """Per-utterance alignments and the metrics aggregated from them."""

    utts: list[UttScore]
    missing_hypotheses: list[str]

    def counts(self, category: str | None = None) -> ErrorCounts:
        """Counts over the utterances of ``category`` (all utterances for ``None``)."""
        return sum((u.counts for u in self.utts if category in (None, u.category)), ErrorCounts())

    def to_dict(self) -> dict:
        details = {name: self.counts(category) for name, category in METRICS.items()}
        return {
            **{name: c.error_rate for name, c in details.items()},
            "utterances": len(self.utts),
            "details": {name: c.to_dict() for name, c in details.items()},
            "missing_hypotheses": self.missing_hypotheses,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def summary(self) -> str:
        """Human-readable table of the metrics (``result.txt``)."""
        header = f"{'metric':<12}{'rate(%)':>9}{'utts':>7}{'ref_tokens':>12}{'hits':>8}{'sub':>7}{'del':>7}{'ins':>7}"
        lines = [header, "-" * len(header)]
        for name, category in METRICS.items():
            c = self.counts(category)
            rate = "n/a" if c.error_rate is None else f"{c.error_rate:.2f}"
            lines.append(
                f"{name:<12}{rate:>9}{c.num_utts:>7}{c.ref_tokens:>12}{c.hits:>8}"
                f"{c.substitutions:>7}{c.deletions:>7}{c.insertions:>7}"
            )
        lines.append(f"missing hypotheses: {len(self.missing_hypotheses)}")
        return "\n".join(lines) + "\n"

    def alignments(self) -> str:
        """Per-utterance alignments (``alignments.txt``)."""
        return "\n".join(u.pralign() for u in self.utts)


def score(refs: dict[str, str], hyps: dict[str, str], categories: dict[str, str] | None = None) -> ScoreReport:
    """Score hypotheses against references, both ``utt_id -> raw text``.

    ``categories`` (``utt_id -> cs|zh|en``, e.g. from ``utt2category``) must cover every
    reference utterance; without it the category is inferred from the reference tokens.
    """
    if not refs:
        raise ValueError("no reference utterances")
    unknown = sorted(hyps.keys() - refs.keys())
    if unknown:
        raise ValueError(f"{len(unknown)} hypotheses for utterances not in the reference: {_head(unknown)}")
    if categories is not None:
        uncategorized = sorted(refs.keys() - categories.keys())
        if uncategorized:
            raise ValueError(f"{len(uncategorized)} utterances have no category: {_head(uncategorized)}")
        invalid = sorted(u for u in refs if categories[u] not in CATEGORIES)
        if invalid:
            raise ValueError(f"category not in {CATEGORIES} for utterances: {_head(invalid)}")
    missing = sorted(refs.keys() - hyps.keys())
    if missing:
        logger.warning("%d utterances have no hypothesis, scored as empty: %s", len(missing), _head(missing))

    utts = []
    for utt_id in sorted(refs):
        ref = tokenize(refs[utt_id])
        if not ref:
            raise ValueError(f"reference of utterance {utt_id!r} is empty after normalization: {refs[utt_id]!r}")
        category = categories[utt_id] if categories is not None else infer_category(ref)
        utts.append(UttScore(utt_id, category, align(ref, tokenize(hyps.get(utt_id, "")))))
    return ScoreReport(utts, missing)


def score_dir(data_dir: Path, hyp_file: Path, out_dir: Path) -> ScoreReport:
    """Score a Kaldi-format hypothesis file against ``data_dir/text`` (categories from
    ``data_dir/utt2category`` if present) and write ``scores.json``, ``result.txt`` and
    ``alignments.txt`` into ``out_dir``."""
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    category_file = data_dir / "utt2category"
    categories = read_kaldi_map(category_file) if category_file.exists() else None
    report = score(read_kaldi_map(data_dir / "text"), read_kaldi_map(Path(hyp_file)), categories)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_atomic(out_dir / "scores.json", report.to_json() + "\n")
    write_atomic(out_dir / "result.txt", report.summary())
    write_atomic(out_dir / "alignments.txt", report.alignments())
    return report


def _width(text: str) -> int:
    """Display width: wide (CJK) and full-width characters take two columns."""
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))


def _head(ids: list[str], n: int = 5) -> str:
    """The first ``n`` ids, for error messages."""
    return ", ".join(ids[:n]) + (", ..." if len(ids) > n else "")
