"""The paired comparisons of the papers' systems and the verdicts on their claims (:mod:`espnet_cs.findings`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from espnet_cs.bootstrap import RESAMPLES, SEED, PairedDifference, paired_difference
from espnet_cs.findings import CLAIMS, Finding, agreement_cells, findings
from espnet_cs.report.cells import markdown_table, percent, section
from espnet_cs.report.forgetting import monolingual_language
from espnet_cs.report.rows import Row, Tables, columns

# (system, against): the comparisons of the papers' claims on code-switched sets, the claimed better first,
# then guided soft prompts (a method neither paper has) against SPT4ASR
PAIRED_COMPARISONS: list[tuple[str, str]] = [
    *(pair for claim in CLAIMS if not claim.forgetting for pair in claim.comparisons),
    ("spt4asr_ag", "spt4asr"),
]
BOOTSTRAP = (
    f"{RESAMPLES} resamples of the utterances, numpy `default_rng({SEED})`, each resample the same utterances "
    "for both systems"
)


def paired_result(row: Row, against: Row) -> PairedDifference | None:
    """The paired bootstrap of two systems' MER difference; None if they were scored on other utterances."""
    terms, against_terms = row.terms("overall_mer"), against.terms("overall_mer")
    if terms.keys() != against_terms.keys():
        return None
    utts = sorted(terms)
    return paired_difference(columns(terms, utts), columns(against_terms, utts))


def paired_cells(test_set: str, row: Row, against: Row) -> list[str]:
    """MERs of two systems and the paired bootstrap of their difference (none on other utterances)."""
    mer, against_mer = row.scores["overall_mer"], against.scores["overall_mer"]
    cells = [test_set, f"`{row.system}`", f"`{against.system}`", percent(mer), percent(against_mer)]
    result = paired_result(row, against)
    if result is None:
        return cells + [f"{mer - against_mer:+.1f}", "— (not the same utterances)", "—"]
    p_value = f"< {1 / RESAMPLES:g}" if result.p_value == 0 else f"{result.p_value:.3f}"
    return cells + [f"{result.difference:+.1f}", f"[{result.interval.low:+.1f}, {result.interval.high:+.1f}]", p_value]


def paired_section(tables: Tables) -> list[str]:
    """The pairs of :data:`PAIRED_COMPARISONS` whose two systems were both scored on a test set."""
    rows = []
    for test_set, set_rows in sorted(tables.items()):
        by_system = {row.system: row for row in set_rows}
        rows += [
            paired_cells(test_set, by_system[system], by_system[against])
            for system, against in PAIRED_COMPARISONS
            if system in by_system and against in by_system
        ]
    if not rows:
        return []
    note = (
        "MER of each system against the one it is compared with in the papers (and of guided soft prompts, "
        "`spt4asr_ag`, against `spt4asr`), on the same utterances: "
        f"difference in points (negative = lower MER), its 95% paired-bootstrap interval ({BOOTSTRAP}) and the "
        "two-sided p-value: twice the share of resamples whose difference lies on the other side of zero (ties "
        "counted), at most 1 (Koehn's paired bootstrap test, two-sided)."
    )
    header = ["set", "system", "against", "MER", "against MER", "difference", "95% interval", "p"]
    return section("Paired comparisons", note, table=markdown_table(header, rows))


@dataclass(frozen=True)
class Regime:
    """Another benchmark regime's rows (read from its results archive, ``source``) and what it is."""

    tables: Tables
    source: Path
    label: str


def claim_findings(tables: Tables) -> list[Finding]:
    """The papers' claims (:data:`espnet_cs.findings.CLAIMS`) tested with the systems of ``tables``."""
    by_system = {test_set: {row.system: row for row in rows} for test_set, rows in tables.items()}
    monolingual = {test_set: monolingual_language(rows[0]) is not None for test_set, rows in tables.items()}

    def compare(test_set: str, better: str, worse: str) -> PairedDifference | None:
        systems = by_system[test_set]
        return paired_result(systems[better], systems[worse]) if better in systems and worse in systems else None

    return findings(CLAIMS, monolingual, compare)


def findings_section(tables: Tables, source: Path, other: Regime | None = None) -> list[str]:
    """The papers' claims tested with the systems of ``tables`` (:func:`claim_findings`), with the verdicts
    of ``other`` beside them if given, and the attention of the guided heads (stage 10,
    ``<source>/attention/<set>/attention.json``) as the evidence of the AG claims."""
    found = claim_findings(tables)
    if not found:
        return []
    note = (
        "Each claim of the two papers tested with the systems scored here: for every comparison, the MER "
        "difference (CER or WER on a monolingual set) of the system the claim says is better minus the other, in "
        "points, with its 95% paired-bootstrap interval (as in Paired comparisons). A comparison is confirmed when "
        "its interval lies below zero, contradicted when above, not resolved when it holds zero; a claim is "
        "confirmed when all its comparisons are, contradicted when any is (`espnet_cs/findings.py`). Each claim is "
        "tested on the hypotheses as decoded and, where both systems have them, on those cut by the repetition "
        "guard (`<system>_guard`): a verdict that holds only as decoded may rest on looping hypotheses."
    )
    header = ["paper", "claim", "set", "hypotheses", "comparisons (better − worse [95% interval])", "verdict"]
    rows = [finding.row() for finding in found]
    if other is not None:
        theirs = {finding.key: finding for finding in claim_findings(other.tables)}
        note += (
            f" The last two columns: the verdict of the same claim, set and hypotheses in {other.label}, made the "
            f"same way from its results (`{other.source}`), and whether the two verdicts agree (— where it was not "
            "tested there)."
        )
        header += [f"verdict in {other.label}", "agrees"]
        rows = [finding.row(*agreement_cells(finding, theirs)) for finding in found]
    lines = section("Findings", note, table=[*markdown_table(header, []), *rows])
    for report in sorted(source.glob("attention/*/attention.json")):
        systems = json.loads(report.read_text())["systems"]
        shares = ", ".join(f"`{name}` {100 * v['own_language']:.1f}%" for name, v in systems.items())
        lines += [
            "",
            f"AG evidence on {report.parent.name}: own-language share of the guided heads' LID attention: {shares}.",
        ]
    return lines
