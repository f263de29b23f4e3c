"""The report's rows: one scored system on one test set, ``<source>/<system>/decode_<set>``.

A system decoded under a decode variant (asr.sh ``--decode_variant``: ``<system>_<variant>``) is
reported beside its decode without one (:mod:`espnet_cs.report.variants`); the results tables and
the sections made from them hold the decodes without a variant (:func:`main_tables`).
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from espnet_cs.results_archive import system_training, trained_dir
from espnet_cs.scoring import rate_terms

GUARDED = ("tables", "all", "none")  # where the guarded rows (<system>_guard) are reported: report --guarded
DECODING_KEYS = ("data_dir", "audio_sha256", "task_tokens", "guard", "pad_to_30s", "real_time_factor")


class ReportError(ValueError):
    """A file the report reads is missing or lacks what the report needs."""


@dataclass(frozen=True)
class Row:
    """A system scored on a test set.

    ``scores``: its ``scores.json`` (stage 9); ``decoding``: its ``decode_info.json`` (stages 3 and 8);
    ``training``: its training summary (:func:`espnet_cs.results_archive.training_summary`), empty
    for a system that trained nothing.
    """

    system: str
    scores: dict
    decoding: dict
    training: dict

    @property
    def trained(self) -> bool:
        return bool(self.training)

    @property
    def guarded(self) -> bool:
        """Whether the row's hypotheses are those of another decode dir cut by the repetition guard (``<system>_guard``)."""
        return "derived_from" in self.decoding

    @property
    def decode_variant(self) -> str:
        """The name of the decoding options (asr.sh ``--decode_variant``), empty for a decode without one."""
        return self.decoding.get("decode_variant", "")

    @property
    def base_system(self) -> str:
        """The system without its decode variant and guard suffixes: ``spt4asr`` of ``spt4asr_beam5_guard``."""
        name = self.system.removesuffix("_guard") if self.guarded else self.system
        return name.removesuffix(f"_{self.decode_variant}") if self.decode_variant else name

    def terms(self, key: str) -> dict[str, tuple[int, int]]:
        """``utt_id -> (numerator, denominator)`` of a rate (:func:`espnet_cs.scoring.rate_terms`)."""
        return rate_terms(self.scores, key)


Tables = dict[str, list[Row]]  # {test set: its rows, zero-shot rows first}


def columns(terms: dict[str, tuple[int, int]], utts: list[str]) -> tuple[list[int], list[int]]:
    """Numerators and denominators of ``utts``, in that order."""
    return [terms[u][0] for u in utts], [terms[u][1] for u in utts]


def read_row(decode_dir: Path, trainings: dict[Path, dict]) -> Row:
    """The row of ``decode_dir``; ``trainings`` caches the training summaries by experiment dir."""
    scores_file, info_file = decode_dir / "scores.json", decode_dir / "decode_info.json"
    if not info_file.exists():
        raise ReportError(f"{info_file} does not exist: decode {decode_dir.parent.name} again (stage 3 or 8)")
    scores, info = json.loads(scores_file.read_text()), json.loads(info_file.read_text())
    if "per_utterance" not in scores:
        raise ReportError(f"{scores_file} holds no per-utterance counts: score it again (stage 9)")
    if any("ref_tokens" in counts for counts in scores["per_utterance"].values()):
        raise ReportError(f"{scores_file} counts ref_tokens, renamed ref_units: score it again (stage 9)")
    missing = [key for key in DECODING_KEYS if key not in info]
    if missing:
        raise ReportError(f"{info_file} lacks {', '.join(missing)}: decode {decode_dir.parent.name} again")
    trained = trained_dir(decode_dir, info)
    if trained not in trainings:
        trainings[trained] = system_training(decode_dir.parent, decode_dir, info)
    return Row(decode_dir.parent.name, scores, info, trainings[trained])


def select(tables: Tables, keep: Callable[[Row], bool]) -> Tables:
    """The rows of ``tables`` that ``keep`` keeps; sets left without rows are dropped."""
    kept = {test_set: [row for row in rows if keep(row)] for test_set, rows in tables.items()}
    return {test_set: rows for test_set, rows in kept.items() if rows}


def main_tables(tables: Tables, guarded: str = "tables") -> Tables:
    """The rows of the results tables: decodes without a decode variant, the guarded ones unless
    ``guarded`` is ``none`` (:data:`GUARDED`)."""
    if guarded not in GUARDED:
        raise ValueError(f"guarded rows go in {', '.join(GUARDED)}, not {guarded!r}")
    return select(tables, lambda row: not row.decode_variant and (guarded != "none" or not row.guarded))


def collect(source: Path) -> Tables:
    """The rows of every ``<source>/*/decode_*/scores.json``, by test set, zero-shot rows first.

    Raises:
        ReportError: a decode dir lacks ``decode_info.json`` or per-utterance counts.
        espnet_cs.trainer.CheckpointError: a trained system's checkpoint cannot be read.
    """
    tables: Tables = defaultdict(list)
    trainings: dict[Path, dict] = {}
    for scores_file in sorted(source.glob("*/decode_*/scores.json")):
        tables[scores_file.parent.name.removeprefix("decode_")].append(read_row(scores_file.parent, trainings))
    for rows in tables.values():
        rows.sort(key=lambda row: (row.trained, row.system))
    return dict(tables)
