"""The attention-guidance loss and what the model needs to add it (``model_conf.guidance``)."""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch

from espnet_cs.config_yaml import ConfigError
from espnet_cs.decoder import CSWhisperDecoder
from espnet_cs.guidance.capture import CapturedAttention, capture_attention
from espnet_cs.guidance.heads import SELECTIONS, Head, LidHeads
from espnet_cs.guidance.rows import WordRows
from espnet_cs.options import check_options
from espnet_cs.tokenizer import CSTokenizer


@dataclass(frozen=True)
class GuidanceConfig:
    """Attention guidance options.

    Attributes:
        lid_heads: stage 4's ``lid_heads.json`` (the ranked LID heads of the backbone).
        selection: ``top`` (the ``share`` of the LID heads ranked first; the paper's best is 0.6),
            ``all`` (every LID head) or ``random`` (a random ``share`` of all heads, the ablation).
        share: see ``selection``.
        seed: of the ``random`` selection.
        weight: lambda: the loss is cross-entropy + weight * guidance.
        target: c, the attention the guided heads should put on the LID column of each word
            token's own language (0 on the other).
    """

    lid_heads: str
    selection: str = "top"
    share: float = 0.6
    seed: int = 0
    weight: float = 1.0
    target: float = 0.5

    @classmethod
    def from_dict(cls, conf: dict) -> GuidanceConfig:
        check_options(cls, conf, "model_conf.guidance")
        if "lid_heads" not in conf:
            raise ConfigError(
                "model_conf.guidance needs lid_heads: the LID heads of stage 4 (exp/lid_heads/lid_heads.json)"
            )
        config = cls(**conf)
        if config.selection not in SELECTIONS:
            raise ConfigError(
                f"model_conf.guidance: unknown selection {config.selection!r}; choose from {list(SELECTIONS)}"
            )
        return config


def guidance_loss(
    attention: dict[int, torch.Tensor], heads: Sequence[Head], words: WordRows, target: float, n_utts: int
) -> torch.Tensor:
    """Squared error of the selected heads' LID-column attention against the CS map.

    Summed over the selected heads and the word tokens, as the paper writes it, and divided by
    ``n_utts`` (:mod:`espnet_cs.guidance`). ``attention[layer]``: (batch, heads, query, key).
    """
    if len(words.rows) == 0 or not heads:
        return next(iter(attention.values())).new_zeros(())
    goal = torch.nn.functional.one_hot(words.languages, 2).float() * target  # (tokens, 2): zh, en
    per_token = []
    for layer in sorted({layer for layer, _ in heads}):
        selected = [h for head_layer, h in heads if head_layer == layer]
        lid = words.lid_attention(attention[layer])[:, selected]  # (tokens, selected, 2)
        per_token.append(((lid - goal.to(lid)[:, None]) ** 2).sum(-1))
    return torch.cat(per_token, dim=1).sum() / n_utts


class AttentionGuidance:
    """The guidance a model adds to its cross-entropy: the selected heads and the loss over them.

    Args:
        config: the options.
        tokenizer: the model's (the two-LID task tokens are required).
        backbone_sha256, n_layers, n_heads: the backbone the LID heads must have been found on.
    """

    def __init__(
        self, config: GuidanceConfig, tokenizer: CSTokenizer, backbone_sha256: str, n_layers: int, n_heads: int
    ) -> None:
        if tokenizer.lid_prompt != "cs":
            raise ConfigError("attention guidance needs the two-LID task tokens (lid_prompt: cs)")
        self.config = config
        self.tokenizer = tokenizer
        self.heads = LidHeads.load(config.lid_heads, backbone_sha256, n_layers, n_heads).select(
            config.selection, config.share, config.seed
        )

    def capture(self, decoder: CSWhisperDecoder) -> AbstractContextManager[CapturedAttention]:
        """Wrap the teacher-forced decoder pass whose attention is guided."""
        return capture_attention(decoder)

    def loss(
        self,
        captured: CapturedAttention,
        memory_lengths: torch.Tensor,
        text: torch.Tensor,
        text_lengths: torch.Tensor,
        n_soft_prompts: int,
    ) -> torch.Tensor:
        """The guidance loss of a teacher-forced batch.

        Args:
            captured: the attention of the decoder pass over encoder states of ``memory_lengths``.
            text: (batch, length) target token ids padded with -1; text_lengths: (batch,)
            n_soft_prompts: the decoder's soft prompt positions, in front of the task tokens.
        """
        words = WordRows.of_targets(self.tokenizer, text, text_lengths, n_soft_prompts)
        positions = n_soft_prompts + len(self.tokenizer.sot_sequence) + text.size(1)
        attention = captured.in_batch_order(memory_lengths, positions)
        return guidance_loss(attention, self.heads, words, self.config.target, text.size(0))
