"""Where the word tokens of a teacher-forced batch are output, and where the LID columns are."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

from espnet_cs.tokenizer import CSTokenizer, Language


@dataclass(frozen=True)
class WordRows:
    """The word tokens of a teacher-forced batch.

    ``batch``, ``rows`` and ``languages`` are 1-D, one entry per word token: its utterance, the
    position that outputs it, and its language (``Language.ZH``/``EN``). ``zh_column`` and
    ``en_column`` are the positions of ``<|zh|>`` and ``<|en|>``.
    """

    batch: torch.Tensor
    rows: torch.Tensor
    languages: torch.Tensor
    zh_column: int
    en_column: int

    @classmethod
    def from_tags(
        cls, tags: Sequence[Sequence[Language]], first_target_row: int, zh_column: int, en_column: int
    ) -> WordRows:
        """From per-utterance target tags; target ``i`` is output at row ``first_target_row + i``."""
        entries = [
            (b, first_target_row + i, int(tag))
            for b, utt in enumerate(tags)
            for i, tag in enumerate(utt)
            if tag in (Language.ZH, Language.EN)
        ]
        batch, rows, languages = (
            (torch.tensor(column, dtype=torch.long) for column in zip(*entries))
            if entries
            else (torch.zeros(0, dtype=torch.long),) * 3
        )
        return cls(batch, rows, languages, zh_column, en_column)

    @classmethod
    def of_targets(
        cls, tokenizer: CSTokenizer, text: torch.Tensor, text_lengths: torch.Tensor, n_soft_prompts: int
    ) -> WordRows:
        """The word tokens of target ids ``text`` (batch, length), decoded after ``n_soft_prompts`` soft prompts."""
        if tokenizer.task_tokens != "zh_en":
            raise ValueError("LID columns need the two-LID task tokens (task_tokens: zh_en)")
        tags = [tokenizer.language_tags(t[:n].tolist()) for t, n in zip(text, text_lengths)]
        lid = tokenizer.lid_positions
        first_target_row = n_soft_prompts + len(tokenizer.sot_sequence) - 1
        return cls.from_tags(tags, first_target_row, n_soft_prompts + lid["zh"], n_soft_prompts + lid["en"])

    def lid_attention(self, attention: torch.Tensor) -> torch.Tensor:
        """(tokens, heads, 2) attention on the (zh, en) columns of each word token's row.

        Args:
            attention: (batch, heads, positions, positions) one layer's probabilities.
        """
        rows = attention[self.batch.to(attention.device), :, self.rows.to(attention.device)]
        return rows[..., [self.zh_column, self.en_column]]
