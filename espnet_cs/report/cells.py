"""Formatting shared by the report's sections: rates and markdown tables."""

from __future__ import annotations

from collections.abc import Sequence

from espnet_cs.bootstrap import rate_interval


def percent(value: float | None) -> str:
    """A rate in percent with one decimal, ``—`` where there is none."""
    return "—" if value is None else f"{value:.1f}"


def pooled_rate_cell(counts: Sequence[int], units: Sequence[int]) -> str:
    """``rate [low, high]``: ``sum(counts) / sum(units)`` in percent, with its 95% bootstrap interval
    over the utterances (one count and one unit total each)."""
    interval = rate_interval(list(counts), list(units))
    return f"{percent(100 * sum(counts) / sum(units))} [{interval.low:.1f}, {interval.high:.1f}]"


def markdown_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """The lines of a markdown table."""
    return [markdown_row(header), "|" + "---|" * len(header), *(markdown_row(cells) for cells in rows)]


def section(title: str, *paragraphs: str, table: list[str] | None = None) -> list[str]:
    """The lines of a ``## title`` section: its paragraphs, then its table, blank lines between."""
    lines = ["", f"## {title}"]
    for paragraph in paragraphs:
        lines += ["", paragraph]
    return lines + ["", *table] if table else lines
