"""The whole RESULTS.md, in order, and writing it with its ``RESULTS.json``."""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from espnet_cs.kaldi_dir import write_atomic
from espnet_cs.report.attention import attention_sections, lid_heads_section
from espnet_cs.report.cells import section
from espnet_cs.report.choices import choices_section
from espnet_cs.report.comparisons import Regime, findings_section, paired_section
from espnet_cs.report.conditions import conditions_section
from espnet_cs.report.curves import curves_section
from espnet_cs.report.forgetting import forgetting_section
from espnet_cs.report.previous import Rates, comparison_section, rates
from espnet_cs.report.rows import Tables, main_tables
from espnet_cs.report.tables import legend, set_section
from espnet_cs.report.variants import variants_section


@dataclass(frozen=True)
class Previous:
    """An earlier report's rates (its ``RESULTS.json``) and what it is (commit, date, what changed)."""

    rates: Rates
    label: str


def rates_file(out: Path) -> Path:
    """The ``RESULTS.json`` written beside the report ``out``."""
    return out.with_suffix(".json")


def how_made_section(command: str, out: Path) -> list[str]:
    """The command, date and machine that made the file, and what its tables' cells mean."""
    made = (
        f"Made by `{command}` (stage 11 of `asr.sh`) on {date.today().isoformat()} ({platform.machine()}). The "
        f"rates of its tables are also in `{rates_file(out).name}`, which a later report takes as `--previous`. "
        "Each table names the data its rows were decoded from: the data dir and its audio digest (stage 2)."
    )
    return section("How this file is made", made) + ["", *legend()]


def render(
    tables: Tables,
    source: Path,
    out: Path,
    command: str,
    notes: str | None = None,
    previous: Previous | None = None,
    other: Regime | None = None,
    guarded: str = "tables",
) -> str:
    """RESULTS.md of ``tables`` read from ``source`` (exp/ or a results archive), to be written to ``out``.

    ``notes``: the recipe's hand-written notes (how each table's rows were made), put after the title;
    ``other``: another benchmark regime whose verdicts the findings are set beside; ``guarded``: where
    the guarded rows go (:data:`espnet_cs.report.rows.GUARDED`). The decode variants' rows go in their
    own section only.
    """
    variants = variants_section(tables, guarded == "all")
    tables = main_tables(tables, guarded)
    lines = ["# RESULTS"]
    if notes:
        lines += ["", notes.strip()]
    lines += how_made_section(command, out)
    for test_set, rows in sorted(tables.items()):
        lines += set_section(test_set, rows)
    lines += conditions_section(tables, source)
    lines += variants + choices_section(tables) + paired_section(tables) + forgetting_section(tables)
    lines += findings_section(tables, source, other) + curves_section(tables, source, out)
    lines += lid_heads_section(source, out) + attention_sections(source, out)
    if previous is not None:
        lines += comparison_section(tables, previous.rates, previous.label)
    return "\n".join(lines) + "\n"


def write(out: Path, text: str, tables: Tables, guarded: str = "tables") -> None:
    """Write the report ``text`` to ``out`` and the rates of the results tables of ``tables`` beside it
    (:func:`rates_file`)."""
    write_atomic(rates_file(out), json.dumps(rates(main_tables(tables, guarded)), indent=1, ensure_ascii=False) + "\n")
    write_atomic(out, text)
