"""Mixed error rate (MER) scoring for Mandarin-English code-switching ASR.

References and hypotheses are normalized and split into units (CJK characters, English words) by
:func:`espnet_cs.text.units`; :mod:`espnet_cs.text` lists the normalization's steps.

Every metric is ``(S + D + I) / N * 100`` summed over the utterances it covers, ``N`` being the
reference units, from jiwer's alignment of the units: ``overall_mer`` over all utterances, ``cs_mer``
over code-switched ones, ``zh_cer`` over Mandarin-only ones (character units), ``en_wer`` over
English-only ones (word units). This is the mixed error rate of the CS literature, not jiwer's
``mer`` (match error rate); it exceeds 100 when insertions outnumber hits. A category without
utterances (or, for the code-switching metrics below, without the units they cover) has rate
``None`` (``null`` in ``scores.json``), not 0.

Code-switching metrics, from the same alignment (:class:`UttScore`), summed over utterances like
MER. A unit's language (:func:`espnet_cs.text.unit_language`) is Mandarin for a CJK ideograph, English for a
word with a Latin letter, neither otherwise (numbers, other scripts). An error is *attributed* to
a set of reference units as: a substitution or deletion of one of them, and an insertion whose
run of insertions lies right before or right after one of them in the alignment (between
reference units ``k-1`` and ``k``: counted if either is in the set; once, however many
neighbours are).

- ``pier``, the point-of-interest error rate (Ugan et al., ICASSP 2025, arXiv 2501.09512):
  attributed errors / points of interest, the points of interest being the English units of
  Mandarin-matrix utterances, those whose reference has more Mandarin than English units (the
  embedded-language words).
- ``switch_point_er``: attributed errors / switch-point units, the two reference units at each
  change between Mandarin and English (units of neither language skipped: in ``有 3 apples``
  ``有`` and ``apples`` are a switch).
- ``language_accuracy``: over the aligned pairs (C and S), the percentage whose hypothesis unit
  has the language of its reference unit.

``details`` holds every metric's sums, and ``per_utterance`` every utterance's category and counts
(``hits``, ``substitutions``, ``deletions``, ``insertions``, ``ref_units``; the same under
``pier`` and ``switch_point``; ``pairs`` and ``matches`` under ``language``), so intervals over
utterances (:mod:`espnet_cs.bootstrap`) need only ``scores.json`` (:func:`rate_terms`).

With an ``utt2condition`` (:mod:`espnet_cs.conditions`), ``by_condition`` holds, for each acoustic
condition class with utterances, their number and the rates of :data:`METRICS` over them (those
whose category it has); ``result.txt`` gets the same as a table.

Edge cases: an empty hypothesis scores all reference units as deletions; an utterance without
a hypothesis is scored as an empty hypothesis, logged as a warning and listed in
``missing_hypotheses``; a hypothesis for an utterance not in the reference, a reference that is
empty after normalization, and an ``utt2category`` that misses an utterance or has a category
other than cs/zh/en raise :class:`ValueError`.
"""

from __future__ import annotations

import json
import logging
import unicodedata
from collections import Counter
from dataclasses import dataclass, fields
from itertools import zip_longest
from pathlib import Path
from typing import TypeVar

import jiwer

from espnet_cs.conditions import CLASSES, read_condition_classes
from espnet_cs.kaldi_dir import read_kaldi_map, write_atomic
from espnet_cs.text import CATEGORIES, Language, infer_category, unit_language, units

logger = logging.getLogger(__name__)

# scores.json / result.txt metric name -> utterance category it covers (None: all)
METRICS: dict[str, str | None] = {"overall_mer": None, "cs_mer": "cs", "zh_cer": "zh", "en_wer": "en"}
# scores.json name of each code-switching error rate -> its counts in per_utterance (UttScore attribute)
CS_METRICS: dict[str, str] = {"pier": "pier", "switch_point_er": "switch_point"}

_S = TypeVar("_S", bound="_Summable")


class _Summable:
    """A dataclass of integer counts that add field by field."""

    def __add__(self: _S, other: _S) -> _S:
        return type(self)(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(self)))


@dataclass
class ErrorCounts(_Summable):
    """Alignment counts (of all reference units, or of those a metric covers) summed over the
    ``num_utts`` utterances that have such units."""

    hits: int = 0
    substitutions: int = 0
    deletions: int = 0
    insertions: int = 0
    num_utts: int = 0

    @property
    def ref_units(self) -> int:
        return self.hits + self.substitutions + self.deletions

    @property
    def errors(self) -> int:
        return self.substitutions + self.deletions + self.insertions

    @property
    def error_rate(self) -> float | None:
        """``(S + D + I) / N`` in percent; ``None`` when no reference unit was counted."""
        return None if self.ref_units == 0 else 100.0 * self.errors / self.ref_units

    def utterance_dict(self) -> dict[str, int]:
        """The counts of one utterance in ``per_utterance``."""
        return {
            "ref_units": self.ref_units,
            "hits": self.hits,
            "substitutions": self.substitutions,
            "deletions": self.deletions,
            "insertions": self.insertions,
        }

    def to_dict(self) -> dict[str, float | int | None]:
        return {"error_rate": self.error_rate, **self.utterance_dict(), "num_utts": self.num_utts}


@dataclass
class LanguageCounts(_Summable):
    """Aligned (C or S) unit pairs and those whose hypothesis unit has the reference unit's
    language, summed over the ``num_utts`` utterances with aligned pairs."""

    pairs: int = 0
    matches: int = 0
    num_utts: int = 0

    @property
    def accuracy(self) -> float | None:
        """``matches / pairs`` in percent; ``None`` without aligned pairs."""
        return None if self.pairs == 0 else 100.0 * self.matches / self.pairs

    def utterance_dict(self) -> dict[str, int]:
        return {"pairs": self.pairs, "matches": self.matches}

    def to_dict(self) -> dict[str, float | int | None]:
        return {"accuracy": self.accuracy, **self.utterance_dict(), "num_utts": self.num_utts}


def attributed_counts(alignment: list[tuple[str, str | None, str | None]], targets: set[int]) -> ErrorCounts:
    """Counts of the errors attributed to the reference units at indices ``targets``: their hits,
    substitutions and deletions, and the insertions right before or after one of them (an
    insertion between reference units ``k-1`` and ``k`` counts if either is a target)."""
    ops: Counter[str] = Counter()
    k = 0  # reference units before this alignment position
    for op, _, _ in alignment:
        if op == "I":
            ops[op] += int(k - 1 in targets or k in targets)
        else:
            ops[op] += int(k in targets)
            k += 1
    return ErrorCounts(ops["C"], ops["S"], ops["D"], ops["I"], num_utts=int(bool(targets)))


def points_of_interest(languages: list[Language]) -> set[int]:
    """Indices of the English units if the units are Mandarin-matrix (more Mandarin than English
    units), else none: PIER's points of interest."""
    english = {i for i, lang in enumerate(languages) if lang == Language.EN}
    return english if languages.count(Language.ZH) > len(english) else set()


def switch_points(languages: list[Language]) -> set[int]:
    """Indices of the units on either side of each change between Mandarin and English units,
    units of neither language skipped."""
    tagged = [i for i, lang in enumerate(languages) if lang in (Language.ZH, Language.EN)]
    switches = [(i, j) for i, j in zip(tagged, tagged[1:]) if languages[i] != languages[j]]
    return {k for pair in switches for k in pair}


@dataclass
class UttScore:
    """One utterance's alignment: ``(op, ref_unit, hyp_unit)`` triples, op in ``CSDI``,
    ``None`` marking the gap of a deletion or insertion."""

    utt_id: str
    category: str
    alignment: list[tuple[str, str | None, str | None]]

    @property
    def counts(self) -> ErrorCounts:
        ops = Counter(op for op, _, _ in self.alignment)
        return ErrorCounts(ops["C"], ops["S"], ops["D"], ops["I"], num_utts=1)

    @property
    def ref_languages(self) -> list[Language]:
        """The language of each reference unit, in order."""
        return [unit_language(ref) for op, ref, _ in self.alignment if op != "I"]

    @property
    def pier(self) -> ErrorCounts:
        """Counts attributed to the points of interest (:func:`points_of_interest`)."""
        return attributed_counts(self.alignment, points_of_interest(self.ref_languages))

    @property
    def switch_point(self) -> ErrorCounts:
        """Counts attributed to the switch-point units (:func:`switch_points`)."""
        return attributed_counts(self.alignment, switch_points(self.ref_languages))

    @property
    def language(self) -> LanguageCounts:
        """Aligned pairs and those whose units have the same language (:func:`unit_language`)."""
        pairs = [(ref, hyp) for op, ref, hyp in self.alignment if op in "CS"]
        matches = sum(unit_language(ref) == unit_language(hyp) for ref, hyp in pairs)
        return LanguageCounts(len(pairs), matches, num_utts=int(bool(pairs)))

    def to_dict(self) -> dict:
        """The utterance's entry in ``per_utterance``."""
        return {
            "category": self.category,
            **self.counts.utterance_dict(),
            "pier": self.pier.utterance_dict(),
            "switch_point": self.switch_point.utterance_dict(),
            "language": self.language.utterance_dict(),
        }

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
    """Align two unit lists with jiwer: ``(op, ref_unit, hyp_unit)`` triples, op in ``CSDI``."""
    (chunks,) = jiwer.process_words(" ".join(ref), " ".join(hyp)).alignments
    return [
        (_JIWER_OPS[ch.type], r, h)
        for ch in chunks
        for r, h in zip_longest(ref[ch.ref_start_idx : ch.ref_end_idx], hyp[ch.hyp_start_idx : ch.hyp_end_idx])
    ]


@dataclass
class ScoreReport:
    """Per-utterance alignments and the metrics aggregated from them; ``conditions``: the acoustic
    condition class of every utterance (:data:`espnet_cs.conditions.CLASSES`), if known."""

    utts: list[UttScore]
    missing_hypotheses: list[str]
    conditions: dict[str, str] | None = None

    def counts(self, category: str | None = None) -> ErrorCounts:
        """Counts over the utterances of ``category`` (all utterances for ``None``)."""
        return sum((u.counts for u in self.utts if category in (None, u.category)), ErrorCounts())

    def cs_counts(self, name: str) -> ErrorCounts:
        """Counts of the code-switching error rate ``name`` (in :data:`CS_METRICS`) over all utterances."""
        return sum((getattr(u, CS_METRICS[name]) for u in self.utts), ErrorCounts())

    def language_counts(self) -> LanguageCounts:
        return sum((u.language for u in self.utts), LanguageCounts())

    def by_condition(self) -> dict[str, dict[str, float | int]]:
        """``{class: {"utterances": n, metric: rate}}`` for each condition class with utterances, the
        rates of :data:`METRICS` whose category the class has; empty without ``conditions``."""
        if self.conditions is None:
            return {}
        by_class = {}
        for condition in CLASSES:
            report = ScoreReport([u for u in self.utts if self.conditions[u.utt_id] == condition], [])
            if report.utts:
                rates = {name: report.counts(category).error_rate for name, category in METRICS.items()}
                by_class[condition] = {
                    "utterances": len(report.utts),
                    **{name: rate for name, rate in rates.items() if rate is not None},
                }
        return by_class

    def to_dict(self) -> dict:
        details = {name: self.counts(category) for name, category in METRICS.items()}
        details |= {name: self.cs_counts(name) for name in CS_METRICS}
        language = self.language_counts()
        scores = {
            **{name: c.error_rate for name, c in details.items()},
            "language_accuracy": language.accuracy,
            "utterances": len(self.utts),
            "details": {name: c.to_dict() for name, c in details.items()} | {"language_accuracy": language.to_dict()},
            "missing_hypotheses": self.missing_hypotheses,
            "per_utterance": {u.utt_id: u.to_dict() for u in self.utts},
        }
        return scores | {"by_condition": self.by_condition()} if self.conditions is not None else scores

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def summary(self) -> str:
        """Human-readable table of the metrics (``result.txt``)."""
        header = f"{'metric':<16}{'rate(%)':>9}{'utts':>7}{'ref_units':>12}{'hits':>8}{'sub':>7}{'del':>7}{'ins':>7}"
        lines = [header, "-" * len(header)]
        counts = [(name, self.counts(category)) for name, category in METRICS.items()]
        for name, c in counts + [(name, self.cs_counts(name)) for name in CS_METRICS]:
            rate = "n/a" if c.error_rate is None else f"{c.error_rate:.2f}"
            lines.append(
                f"{name:<16}{rate:>9}{c.num_utts:>7}{c.ref_units:>12}{c.hits:>8}"
                f"{c.substitutions:>7}{c.deletions:>7}{c.insertions:>7}"
            )
        language = self.language_counts()
        accuracy = "n/a" if language.accuracy is None else f"{language.accuracy:.2f}%"
        lines.append(f"language accuracy: {accuracy} of {language.pairs} aligned pairs")
        lines.append(f"missing hypotheses: {len(self.missing_hypotheses)}")
        return "\n".join(lines + self.condition_summary()) + "\n"

    def condition_summary(self) -> list[str]:
        """The lines of the rates by condition class in ``result.txt`` (none without ``conditions``)."""
        if self.conditions is None:
            return []
        header = f"{'condition':<19}{'utts':>6}" + "".join(f"{name:>13}" for name in METRICS)
        lines = ["", "by acoustic condition (rate %)", header, "-" * len(header)]
        for condition, values in self.by_condition().items():
            rates = (values.get(name) for name in METRICS)
            cells = "".join(f"{'n/a' if rate is None else f'{rate:.2f}':>13}" for rate in rates)
            lines.append(f"{condition:<19}{values['utterances']:>6}{cells}")
        return lines

    def alignments(self) -> str:
        """Per-utterance alignments (``alignments.txt``)."""
        return "\n".join(u.pralign() for u in self.utts)


def rate_terms(scores: dict, metric: str) -> dict[str, tuple[int, int]] | None:
    """``utt_id -> (numerator, denominator)`` of a rate of ``scores.json`` (a key of :data:`METRICS`,
    :data:`CS_METRICS` or ``language_accuracy``) for each utterance it covers, the rate being
    ``100 * sum(numerators) / sum(denominators)``: errors and reference units (of the category, of
    the covered units), or matching and aligned pairs; ``None`` for a ``scores.json`` written
    before it held ``per_utterance``."""
    if "per_utterance" not in scores:
        return None
    utts = scores["per_utterance"].items()
    if metric == "language_accuracy":
        terms = {u: (d["language"]["matches"], d["language"]["pairs"]) for u, d in utts}
    elif metric in CS_METRICS:
        terms = {u: _error_terms(d[CS_METRICS[metric]]) for u, d in utts}
    else:
        terms = {u: _error_terms(d) for u, d in utts if METRICS[metric] in (None, d["category"])}
    return {u: t for u, t in terms.items() if t[1] > 0}


def _error_terms(counts: dict[str, int]) -> tuple[int, int]:
    """(errors, reference units) of a ``per_utterance`` count dict."""
    return counts["substitutions"] + counts["deletions"] + counts["insertions"], counts["ref_units"]


def score(refs: dict[str, str], hyps: dict[str, str], categories: dict[str, str] | None = None) -> ScoreReport:
    """Score hypotheses against references, both ``utt_id -> raw text``.

    ``categories`` (``utt_id -> cs|zh|en``, e.g. from ``utt2category``) must cover every
    reference utterance; without it the category is inferred from the reference units.
    """
    if not refs:
        raise ValueError("no reference utterances")
    unknown = sorted(hyps.keys() - refs.keys())
    if unknown:
        raise ValueError(f"{len(unknown)} hypotheses for utterances not in the reference: {_first_ids(unknown)}")
    if categories is not None:
        uncategorized = sorted(refs.keys() - categories.keys())
        if uncategorized:
            raise ValueError(f"{len(uncategorized)} utterances have no category: {_first_ids(uncategorized)}")
        invalid = sorted(u for u in refs if categories[u] not in CATEGORIES)
        if invalid:
            raise ValueError(f"category not in {CATEGORIES} for utterances: {_first_ids(invalid)}")
    missing = sorted(refs.keys() - hyps.keys())
    if missing:
        logger.warning("%d utterances have no hypothesis, scored as empty: %s", len(missing), _first_ids(missing))

    utts = []
    for utt_id in sorted(refs):
        ref = units(refs[utt_id])
        if not ref:
            raise ValueError(f"reference of utterance {utt_id!r} is empty after normalization: {refs[utt_id]!r}")
        category = categories[utt_id] if categories is not None else infer_category(ref)
        utts.append(UttScore(utt_id, category, align(ref, units(hyps.get(utt_id, "")))))
    return ScoreReport(utts, missing)


def score_dir(data_dir: Path, hyp_file: Path, out_dir: Path, conditions: Path | None = None) -> ScoreReport:
    """Score a Kaldi-format hypothesis file against ``data_dir/text`` (categories from
    ``data_dir/utt2category`` if present) and write ``scores.json``, ``result.txt`` and
    ``alignments.txt`` into ``out_dir``; with ``conditions`` (an ``utt2condition`` covering every
    reference utterance), the rates by acoustic condition class too.

    Raises:
        ValueError: ``conditions`` is malformed or misses a reference utterance, naming them.
    """
    data_dir, out_dir = Path(data_dir), Path(out_dir)
    category_file = data_dir / "utt2category"
    categories = read_kaldi_map(category_file) if category_file.exists() else None
    report = score(read_kaldi_map(data_dir / "text"), read_kaldi_map(Path(hyp_file)), categories)
    if conditions is not None:
        report.conditions = read_condition_classes(conditions)
        unknown = sorted(u.utt_id for u in report.utts if u.utt_id not in report.conditions)
        if unknown:
            raise ValueError(f"{conditions} has no condition for {len(unknown)} utterances: {_first_ids(unknown)}")
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


def _first_ids(ids: list[str], n: int = 5) -> str:
    """The first ``n`` ids, for error messages."""
    return ", ".join(ids[:n]) + (", ..." if len(ids) > n else "")
