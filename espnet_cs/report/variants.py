"""Decode variants side by side: each system's decodes under its decode variants (asr.sh ``--decode_variant``)
beside its decode without one, with paired comparisons and the insertions that loops show as."""

from __future__ import annotations

from collections import defaultdict

from espnet_cs.bootstrap import RESAMPLES
from espnet_cs.report.cells import markdown_table, pooled_rate_cell, section
from espnet_cs.report.comparisons import BOOTSTRAP, paired_result
from espnet_cs.report.rows import Row, Tables
from espnet_cs.report.tables import rate_cell, search_words

HEADER = ["set", "system", "decode variant", "decoding", "MER", "difference", "95% interval", "p", "insertions"]


def insertion_cell(row: Row) -> str:
    """``share [low, high]``: insertions per reference unit in percent, its 95% bootstrap interval over utterances."""
    counts = [c for c in row.scores["per_utterance"].values() if c["ref_units"] > 0]
    if not counts:
        return "—"
    return pooled_rate_cell([c["insertions"] for c in counts], [c["ref_units"] for c in counts])


def difference_cells(row: Row, base: Row | None) -> list[str]:
    """MER of ``row`` minus that of ``base`` in points, its 95% paired-bootstrap interval and p-value;
    dashes for ``base`` itself, without one, or on other utterances."""
    if base is None or row is base:
        return ["—", "—", "—"]
    result = paired_result(row, base)
    if result is None:
        return ["—", "not the same utterances", "—"]
    p_value = f"< {1 / RESAMPLES:g}" if result.p_value == 0 else f"{result.p_value:.3f}"
    return [f"{result.difference:+.1f}", f"[{result.interval.low:+.1f}, {result.interval.high:+.1f}]", p_value]


def variant_cells(test_set: str, row: Row, base: Row | None) -> list[str]:
    decoding = ", ".join(search_words(row.decoding) or ["greedy"]) + (", guard" if row.decoding["guard"] else "")
    return [
        test_set,
        f"`{row.base_system}`",
        f"`{row.decode_variant}`" if row.decode_variant else "—",
        decoding,
        rate_cell(row, "overall_mer"),
        *difference_cells(row, base),
        insertion_cell(row),
    ]


def variants_section(tables: Tables, guarded: bool = False) -> list[str]:
    """Per test set and system with a decode variant: its decode without one first, then each variant,
    the guarded rows (``<system>[_<variant>]_guard``) too if ``guarded``."""
    cells = []
    for test_set, rows in sorted(tables.items()):
        systems: dict[str, list[Row]] = defaultdict(list)
        for row in rows:
            if guarded or not row.guarded:
                systems[row.base_system].append(row)
        for group in systems.values():
            if not any(row.decode_variant for row in group):
                continue
            group.sort(key=lambda row: (row.decode_variant, row.guarded))
            base = next((row for row in group if not row.decode_variant and not row.guarded), None)
            cells += [variant_cells(test_set, row, base) for row in group]
    if not cells:
        return []
    note = (
        "Each system decoded under a decode variant (`asr.sh --decode_variant <name>`: `<system>_<name>`) beside "
        "its decode without one (first, variant —). MER as in the results tables; difference: the row's MER minus "
        f"that of the decode without a variant, in points, with its 95% paired-bootstrap interval ({BOOTSTRAP}) "
        "and two-sided p-value (as in Paired comparisons); insertions: inserted units per reference unit in "
        "percent, with its 95% bootstrap interval over utterances (looping hypotheses show up here)."
    )
    if guarded:
        note += " Rows whose decoding ends in guard are the same hypotheses cut by the repetition guard."
    return section("Decoding: greedy, beam search, fallback", note, table=markdown_table(HEADER, cells))
