"""``RESULTS.json``: the rates of every table, written beside RESULTS.md; a later report's ``--previous``.

Its content is ``{test set: {system: {scores.json key: rate}}}`` for every rate of
:data:`espnet_cs.report.tables.RATES` (None where a system has none).
"""

from __future__ import annotations

import json
from pathlib import Path

from espnet_cs.report.cells import markdown_table, percent, section
from espnet_cs.report.rows import ReportError, Tables
from espnet_cs.report.tables import ERROR_RATES, RATES

Rates = dict[str, dict[str, dict[str, float | None]]]


def rates(tables: Tables) -> Rates:
    """The content of ``RESULTS.json`` for ``tables``."""
    return {
        test_set: {row.system: {rate.key: row.scores.get(rate.key) for rate in RATES} for row in rows}
        for test_set, rows in sorted(tables.items())
    }


def read_rates(path: Path) -> Rates:
    """The rates of a ``RESULTS.json`` this report wrote."""
    try:
        content = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ReportError(f"{path} cannot be read as the RESULTS.json of a report: {error}") from None
    if not isinstance(content, dict) or not all(isinstance(systems, dict) for systems in content.values()):
        raise ReportError(f"{path} is not the RESULTS.json of a report: expected {{test set: {{system: rates}}}}")
    return content


def comparison_section(tables: Tables, before: Rates, label: str) -> list[str]:
    """Per test set, the error rates of the systems in both ``tables`` and ``before``: ``then → now``."""
    lines = []
    header = ["system"] + [f"{rate.header}: {label} → now" for rate in ERROR_RATES]
    for test_set, rows in sorted(tables.items()):
        then = before.get(test_set, {})
        cells = [
            [f"`{row.system}`"]
            + [f"{percent(then[row.system].get(r.key))} → {percent(row.scores.get(r.key))}" for r in ERROR_RATES]
            for row in rows
            if row.system in then
        ]
        if cells:
            lines += section(f"{test_set}: against {label}", table=markdown_table(header, cells))
    return lines
