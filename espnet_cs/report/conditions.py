"""MER by acoustic condition class (clean, reverberant, noisy, both) on the sets whose conditions the archive keeps."""

from __future__ import annotations

from pathlib import Path

from espnet_cs.conditions import CLASSES, read_condition_classes
from espnet_cs.report.cells import markdown_table, pooled_rate_cell, section
from espnet_cs.report.rows import ReportError, Row, Tables, columns
from espnet_cs.results_archive import archived_conditions


def class_cell(row: Row, utts: list[str]) -> str:
    """``MER [low, high] (n)`` of ``row`` over ``utts``, ``—`` if it scored none of them."""
    terms = row.terms("overall_mer")
    covered = [u for u in utts if u in terms]
    if not covered:
        return "—"
    return f"{pooled_rate_cell(*columns(terms, covered))} ({len(covered)})"


def condition_rows(test_set: str, rows: list[Row], conditions: Path, audio: str) -> list[list[str]]:
    """The cells of the rows decoded from ``audio``, the audio that ``conditions`` describes."""
    classes = read_condition_classes(conditions)
    by_class = {c: sorted(u for u, uc in classes.items() if uc == c) for c in CLASSES}
    cells = []
    for row in rows:
        if row.decoding["audio_sha256"] != audio:
            continue
        unknown = sorted(row.scores["per_utterance"].keys() - classes.keys())
        if unknown:
            raise ReportError(f"{conditions} has no condition for {len(unknown)} utterances {row.system} scored")
        cells.append([test_set, f"`{row.system}`", *(class_cell(row, by_class[c]) for c in CLASSES)])
    return cells


def conditions_section(tables: Tables, source: Path) -> list[str]:
    """MER per condition class of each row of a set whose ``utt2condition`` ``source`` keeps
    (:func:`espnet_cs.results_archive.archived_conditions`), rows of the audio it describes only."""
    cells = []
    for test_set, rows in sorted(tables.items()):
        archived = archived_conditions(source, test_set)
        if archived is not None:
            cells += condition_rows(test_set, rows, *archived)
    if not cells:
        return []
    note = (
        "MER of each system on the utterances of each acoustic condition class of the set's `utt2condition` "
        f"(`{source}/data/<set>/utt2condition`, with the audio digest it describes): clean (no room, no noise), reverberant (a simulated room, "
        "no noise), noisy (no room, additive noise) and both; speed and level are not part of the class. Each "
        "cell is `MER [low, high] (n)`: its 95% bootstrap interval over the class's utterances (as in the "
        "results tables) and the n utterances of the class."
    )
    header = ["set", "system", *CLASSES]
    return section("By acoustic condition", note, table=markdown_table(header, cells))
