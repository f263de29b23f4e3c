"""Choices made on the validation set: the soft-prompt family's settings, each candidate against the default."""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatch

from espnet_cs.report.cells import markdown_table, section
from espnet_cs.report.curves import best_epoch
from espnet_cs.report.rows import Row, Tables
from espnet_cs.report.tables import rate_cell
from espnet_cs.report.variants import difference_cells


@dataclass(frozen=True)
class Choice:
    """A setting decided by comparing the systems ``candidates`` match (``fnmatch`` patterns of system names:
    a YAML, or a run of asr.sh ``--exp_tag``) with ``default``, the system its YAML trains."""

    question: str
    default: str
    candidates: tuple[str, ...]

    def matches(self, system: str) -> bool:
        return any(fnmatch(system, pattern) for pattern in self.candidates)


CHOICES: tuple[Choice, ...] = (
    Choice("learning rate of SPT4ASR", "spt4asr", ("spt4asr_lr*",)),  # e.g. spt4asr_lr3e-3: --exp_tag _lr3e-3
    Choice("learning rate of deep prompts", "dpt", ("dpt_lr*",)),
    Choice(
        "residual MLP start: LayerNorm gain 0, or identity with a zero last layer", "spt4asr", ("spt4asr_zero_last",)
    ),
    Choice("decoder prompt start: random frequent tokens, or a text's embeddings", "spt4asr", ("spt4asr_init_text",)),
    Choice("weight decay on the prompt vectors, or none", "spt4asr", ("spt4asr_no_prompt_decay",)),
    Choice("task tokens: `<|zh|><|en|>`, or `<|zh|>`", "spt4asr", ("spt4asr_single",)),
)


def best_loss_cell(row: Row) -> str:
    """The lowest validation loss of the last training run of ``row``, with its epoch."""
    curves = row.training.get("curves") or []
    best = best_epoch(curves[-1]["valid_loss"]) if curves else None
    return "—" if best is None else f"{best[1]:.2f} (epoch {best[0]})"


def choice_cells(question: str, test_set: str, row: Row, default: Row) -> list[str]:
    rate = row.training.get("learning_rate")
    return [
        question,
        test_set,
        f"`{row.system}`",
        "—" if rate is None else f"{rate:g}",
        best_loss_cell(row),
        rate_cell(row, "overall_mer"),
        *difference_cells(row, default),
    ]


def choices_section(tables: Tables) -> list[str]:
    """Per set and :data:`CHOICES` entry with at least one candidate scored beside its default: the
    default first, then each candidate with its paired difference from the default."""
    cells = []
    for choice in CHOICES:
        for test_set, rows in sorted(tables.items()):
            by_system = {row.system: row for row in rows if not row.guarded and not row.decode_variant}
            default = by_system.get(choice.default)
            scored = [row for name, row in sorted(by_system.items()) if choice.matches(name)]
            if default is None or not scored:
                continue
            cells += [choice_cells(choice.question, test_set, row, default) for row in [default, *scored]]
    if not cells:
        return []
    note = (
        "Each setting of the soft-prompt family decided by a comparison: the default (its YAML) first, then each "
        "candidate, with the lowest validation loss of its training (the criterion of stage 7's averaging), its MER "
        "and the paired difference from the default (as in Paired comparisons; negative = lower MER)."
    )
    header = ["choice", "set", "system", "learning rate", "best validation loss", "MER", "difference", "95% interval"]
    return section("Choices on the validation set", note, table=markdown_table([*header, "p"], cells))
