"""Choices made on the validation set: the soft-prompt family's settings, each candidate against its reference run."""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatch

from espnet_cs.report.cells import markdown_table, section
from espnet_cs.report.curves import best_epoch, learning_rate_cell
from espnet_cs.report.rows import Row, Tables
from espnet_cs.report.tables import rate_cell
from espnet_cs.report.variants import difference_cells


@dataclass(frozen=True)
class Choice:
    """A setting decided on the validation set: the systems ``candidates`` match (``fnmatch`` patterns of system
    names: a YAML, or a run of asr.sh ``--exp_tag``) against ``reference``, the run they differ from in that
    setting alone, on the same training budget."""

    question: str
    reference: str
    candidates: tuple[str, ...]

    def matches(self, system: str) -> bool:
        return system != self.reference and any(fnmatch(system, pattern) for pattern in self.candidates)


# The learning rates are swept first (--exp_tag _lr<rate>, the papers' 1e-3 the reference); the other
# settings are compared at the chosen rate, 1e-2, each YAML against the run of SPT4ASR at that rate.
CHOICES: tuple[Choice, ...] = (
    Choice("learning rate of SPT4ASR", "spt4asr_lr1e-3", ("spt4asr_lr*",)),
    Choice("learning rate of deep prompts", "dpt_lr1e-3", ("dpt_lr*",)),
    Choice(
        "residual MLP start: LayerNorm gain 0, or identity with a zero last layer",
        "spt4asr_lr1e-2",
        ("spt4asr_zero_last",),
    ),
    Choice(
        "decoder prompt start: random frequent tokens, or a text's embeddings", "spt4asr_lr1e-2", ("spt4asr_init_text",)
    ),
    Choice("weight decay on the prompt vectors, or none", "spt4asr_lr1e-2", ("spt4asr_no_prompt_decay",)),
    Choice("task tokens: `<|zh|><|en|>`, or `<|zh|>`", "spt4asr_lr1e-2", ("spt4asr_single",)),
)


def best_loss_cell(row: Row) -> str:
    """The lowest validation loss of the last training run of ``row``, with its epoch."""
    curves = row.training.get("curves") or []
    best = best_epoch(curves[-1]["valid_loss"]) if curves else None
    return "—" if best is None else f"{best[1]:.2f} (epoch {best[0]})"


def choice_cells(question: str, test_set: str, row: Row, reference: Row) -> list[str]:
    return [
        question,
        test_set,
        f"`{row.system}`",
        learning_rate_cell(row.training),
        best_loss_cell(row),
        rate_cell(row, "overall_mer"),
        *difference_cells(row, reference),
    ]


def choices_section(tables: Tables) -> list[str]:
    """Per set and :data:`CHOICES` entry with at least one candidate scored beside its reference: the
    reference first, then each candidate with its paired difference from the reference."""
    cells = []
    for choice in CHOICES:
        for test_set, rows in sorted(tables.items()):
            by_system = {row.system: row for row in rows if not row.guarded and not row.decode_variant}
            reference = by_system.get(choice.reference)
            scored = [row for name, row in sorted(by_system.items()) if choice.matches(name)]
            if reference is None or not scored:
                continue
            cells += [choice_cells(choice.question, test_set, row, reference) for row in [reference, *scored]]
    if not cells:
        return []
    note = (
        "Each setting of the soft-prompt family decided by a comparison on the same training budget: the reference "
        "run first (the papers' learning rate; for the later settings SPT4ASR at the chosen rate), then each "
        "candidate, with the lowest validation loss of its training (the criterion of stage 7's averaging), its MER "
        "and the paired difference from the reference (as in Paired comparisons; negative = lower MER)."
    )
    header = ["choice", "set", "system", "learning rate", "best validation loss", "MER", "difference", "95% interval"]
    return section("Choices on the validation set", note, table=markdown_table([*header, "p"], cells))
