"""Forgetting: trained systems against the zero-shot backbone on the sets of one language only."""

from __future__ import annotations

from espnet_cs.report.cells import markdown_table, percent, section
from espnet_cs.report.rows import Row, Tables

MONOLINGUAL_RATES = {"zh": ("zh_cer", "ZH CER"), "en": ("en_wer", "EN WER")}  # language: (scores.json key, name)


def monolingual_language(row: Row) -> str | None:
    """``zh`` or ``en`` if every utterance ``row`` scored is of that category, else None."""
    for language, (key, _) in MONOLINGUAL_RATES.items():
        if (row.scores["details"].get(key) or {}).get("num_utts") == row.scores["utterances"] > 0:
            return language
    return None


def zero_shot_baseline(rows: list[Row], row: Row) -> Row | None:
    """The zero-shot row decoded with the task tokens and guard setting of ``row``."""
    same = ("task_tokens", "guard")
    return next(
        (r for r in rows if not r.trained and all(r.decoding[k] == row.decoding[k] for k in same)),
        None,
    )


def forgetting_section(tables: Tables) -> list[str]:
    """Each trained system against its :func:`zero_shot_baseline` on the monolingual sets."""
    cells = []
    for test_set, rows in sorted(tables.items()):
        language = monolingual_language(rows[0])
        if language is None:
            continue
        key, name = MONOLINGUAL_RATES[language]
        for row in rows:
            baseline = zero_shot_baseline(rows, row)
            if not row.trained or baseline is None or row.scores[key] is None or baseline.scores[key] is None:
                continue
            change = row.scores[key] - baseline.scores[key]
            cells.append(
                [
                    test_set,
                    name,
                    f"`{row.system}`",
                    f"{percent(baseline.scores[key])} (`{baseline.system}`)",
                    percent(row.scores[key]),
                    f"{change:+.1f}",
                ]
            )
    if not cells:
        return []
    note = (
        "Each trained system against the zero-shot backbone decoded with the same task tokens and guard setting, "
        "on the sets whose utterances are all Mandarin (ZH CER) or all English (EN WER); change in points, "
        "positive = worse after adaptation."
    )
    header = ["set", "metric", "system", "zero-shot", "trained", "change"]
    return section("Forgetting on monolingual sets", note, table=markdown_table(header, cells))
