"""The two papers' claims, the systems that test each, and a verdict from paired bootstrap intervals.

A claim is a list of comparisons ``(better, worse)``: the claim says ``better`` has the lower
error rate on the sets of its kind (code-switched test sets, or the monolingual forgetting sets).
Each comparison present in the results gets the paired-bootstrap difference
``rate(better) - rate(worse)`` and its 95% interval (:func:`espnet_cs.bootstrap.paired_difference`):

- *confirmed*: the interval lies below zero (better is better);
- *contradicted*: the interval lies above zero (better is worse);
- *not resolved*: the interval holds zero.

A claim is confirmed when all its comparisons are, contradicted when any is, and otherwise not
resolved; a claim none of whose systems were scored is left out. Each claim is tested on the
hypotheses as decoded and, where both systems have them, on those cut by the repetition guard
(``<system>_guard``, :data:`HYPOTHESES`): a verdict that holds only as decoded may rest on one
system's looping hypotheses rather than on what it recognizes. A report can set each verdict beside
that of the same claim, set and hypotheses in another benchmark regime (:func:`agreement_cells`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from espnet_cs.bootstrap import PairedDifference
from espnet_cs.methods import methods, single_prompt_variants

SINGLE_PROMPT_VARIANTS = tuple(single_prompt_variants())  # dpt among them (conf/tuning: family spt, combines none)
TWO_PHASE, TWO_PHASE_ALL, TWO_PHASE_RANDOM = (
    methods()[name].system for name in ("adapter_ag_phase2", "adapter_ag_phase2_all", "adapter_ag_phase2_random50")
)


@dataclass(frozen=True)
class Claim:
    """A claim of a paper: ``comparisons`` are ``(better, worse)`` system names.

    ``forgetting`` claims are tested on the monolingual sets, the others on the code-switched ones.
    """

    paper: str
    text: str
    comparisons: tuple[tuple[str, str], ...]
    forgetting: bool = False


CLAIMS: tuple[Claim, ...] = (
    Claim(
        "SPT",
        "deep prompts are the best single SPT variant",
        tuple(("dpt", v) for v in SINGLE_PROMPT_VARIANTS if v != "dpt"),
    ),
    Claim("SPT", "SPT4ASR is the best SPT", tuple(("spt4asr", v) for v in SINGLE_PROMPT_VARIANTS)),
    Claim("SPT", "LoRA is still ahead of SPT4ASR", (("lora", "spt4asr"),)),
    Claim("SPT", "full fine-tuning with prompts beats full fine-tuning", (("fft_spt", "fft"),)),
    Claim(
        "SPT",
        "full fine-tuning forgets: worse than the backbone and than SPT4ASR and LoRA on monolingual sets",
        (("zeroshot_zh_en", "fft"), ("spt4asr", "fft"), ("lora", "fft")),
        forgetting=True,
    ),
    Claim("AG", "attention guidance beats plain adapters", (("adapter_ag", "adapter"), (TWO_PHASE, "adapter"))),
    Claim("AG", "two phases beat one", ((TWO_PHASE, "adapter_ag"),)),
    Claim("AG", "guiding random heads fails", ((TWO_PHASE, TWO_PHASE_RANDOM),)),
    Claim("AG", "the top 60% of the LID heads are at least as good as all of them", ((TWO_PHASE, TWO_PHASE_ALL),)),
)
HYPOTHESES = (("as decoded", ""), ("guard", "_guard"))  # (table cell, system-name suffix)


def comparison_verdict(result: PairedDifference) -> str:
    """Where the interval of ``rate(better) - rate(worse)`` lies."""
    if result.interval.high < 0:
        return "confirmed"
    if result.interval.low > 0:
        return "contradicted"
    return "not resolved"


def claim_verdict(verdicts: Sequence[str]) -> str:
    """All comparisons confirmed: confirmed; any contradicted: contradicted; else not resolved."""
    if not verdicts:
        raise ValueError("a verdict needs at least one comparison")
    if all(v == "confirmed" for v in verdicts):
        return "confirmed"
    return "contradicted" if "contradicted" in verdicts else "not resolved"


Compare = Callable[[str, str, str], PairedDifference | None]  # (test set, better, worse) -> paired result


@dataclass(frozen=True)
class Finding:
    """A claim tested on one set with one kind of hypotheses (a cell of :data:`HYPOTHESES`).

    ``cells`` describe the comparisons run (``better − worse: difference [interval]``), ``run`` of
    the claim's; ``verdict`` is :func:`claim_verdict` of theirs.
    """

    claim: Claim
    test_set: str
    hypotheses: str
    cells: tuple[str, ...]
    verdict: str
    run: int

    @property
    def key(self) -> tuple[str, str, str]:
        """What the same finding shares in another report: claim, set and hypotheses."""
        return self.claim.text, self.test_set, self.hypotheses

    @property
    def verdict_cell(self) -> str:
        """The verdict, with how many comparisons it rests on where some were not run."""
        total = len(self.claim.comparisons)
        return self.verdict if self.run == total else f"{self.verdict} ({self.run} of its {total} comparisons run)"

    def row(self, *extra: str) -> str:
        """``| paper | claim | set | hypotheses | comparisons | verdict | *extra |``"""
        cells = [self.claim.paper, self.claim.text, self.test_set, self.hypotheses, "; ".join(self.cells)]
        return "| " + " | ".join([*cells, self.verdict_cell, *extra]) + " |"


def findings(claims: Sequence[Claim], test_sets: dict[str, bool], compare: Compare) -> list[Finding]:
    """The claims with results, on each set of their kind, for each of :data:`HYPOTHESES`.

    ``test_sets``: ``{set: monolingual}``; ``compare`` gives the paired result of two systems on a
    set, or None when either lacks per-utterance scores there.
    """
    found = []
    for claim in claims:
        for test_set, monolingual in sorted(test_sets.items()):
            if monolingual == claim.forgetting:
                found += [
                    finding
                    for hypotheses, suffix in HYPOTHESES
                    if (finding := _finding(claim, test_set, hypotheses, suffix, compare)) is not None
                ]
    return found


def agreement_cells(finding: Finding, other: dict[tuple[str, str, str], Finding]) -> tuple[str, str]:
    """The verdict of the same finding in another report (``other``, by :attr:`Finding.key`) and whether
    it agrees (the same verdict, however many comparisons each rests on); ``—`` where it was not tested there."""
    theirs = other.get(finding.key)
    if theirs is None:
        return "—", "—"
    return theirs.verdict_cell, "yes" if theirs.verdict == finding.verdict else "no"


def _finding(claim: Claim, test_set: str, hypotheses: str, suffix: str, compare: Compare) -> Finding | None:
    cells, verdicts = [], []
    for better, worse in claim.comparisons:
        better, worse = better + suffix, worse + suffix
        result = compare(test_set, better, worse)
        if result is None:
            continue
        verdicts.append(comparison_verdict(result))
        cells.append(
            f"`{better}` − `{worse}`: {result.difference:+.1f} [{result.interval.low:+.1f}, {result.interval.high:+.1f}]"
        )
    if not verdicts:
        return None
    return Finding(claim, test_set, hypotheses, tuple(cells), claim_verdict(verdicts), len(verdicts))
