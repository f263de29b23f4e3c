"""The attention-guidance loss and what the model needs to add it (``model_conf.guidance``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass

import torch

from espnet_cs.config_yaml import ConfigError
from espnet_cs.decoder import CSWhisperDecoder
from espnet_cs.guidance.capture import CapturedAttention, capture_attention
from espnet_cs.guidance.heads import SELECTIONS, Head, LidHeads, selected_lid_attention
from espnet_cs.guidance.rows import WordRows
from espnet_cs.options import check_options
from espnet_cs.renamed import RENAMED_GUIDANCE_OPTIONS, refuse_renamed_keys
from espnet_cs.tokenizer import CSTokenizer

TokenHeadLoss = Callable[[torch.Tensor, torch.Tensor, float], torch.Tensor]
"""``(lid, languages, target) -> (tokens, heads)`` loss of each word token at each selected head.

``lid``: (tokens, heads, 2) attention on the (zh, en) columns; ``languages``: (tokens,) each
token's ``Language.ZH``/``EN``; ``target``: c (:class:`GuidanceConfig`)."""

# guidance loss name -> TokenHeadLoss
LOSSES: dict[str, TokenHeadLoss] = {}


def register_loss(name: str) -> Callable[[TokenHeadLoss], TokenHeadLoss]:
    """Function decorator: make ``loss: name`` of the guidance options use it."""

    def add(loss: TokenHeadLoss) -> TokenHeadLoss:
        LOSSES[name] = loss
        return loss

    return add


@register_loss("squared_error")
def squared_error(lid: torch.Tensor, languages: torch.Tensor, target: float) -> torch.Tensor:
    """The paper's: squared error against the code-switching map (c on the token's own language's
    column, 0 on the other), summed over the two columns."""
    goal = torch.nn.functional.one_hot(languages, 2).float() * target  # (tokens, 2): zh, en
    return ((lid - goal.to(lid)[:, None]) ** 2).sum(-1)


@dataclass(frozen=True)
class GuidanceConfig:
    """Attention guidance options.

    Attributes:
        lid_heads: stage 4's ``lid_heads.json`` (the ranked LID heads of the backbone).
        selection: a registered selection (:data:`~espnet_cs.guidance.heads.SELECTIONS`): ``top``
            (the ``fraction`` of the LID heads ranked first; the paper's best is 0.6), ``all`` (every
            LID head) or ``random`` (a random ``fraction`` of all heads, the ablation).
        fraction: see ``selection``.
        seed: of the ``random`` selection.
        weight: lambda: the loss is cross-entropy + weight * guidance.
        target: c, the attention the guided heads should put on the LID column of each word
            token's own language (0 on the other).
        loss: a registered loss (:data:`LOSSES`): ``squared_error`` (the paper's).
    """

    lid_heads: str
    selection: str = "top"
    fraction: float = 0.6
    seed: int = 0
    weight: float = 1.0
    target: float = 0.5
    loss: str = "squared_error"

    @classmethod
    def from_dict(cls, conf: dict) -> GuidanceConfig:
        refuse_renamed_keys(conf, RENAMED_GUIDANCE_OPTIONS, "model_conf.guidance")
        check_options(cls, conf, "model_conf.guidance")
        if "lid_heads" not in conf:
            raise ConfigError(
                "model_conf.guidance needs lid_heads: the LID heads of stage 4 (exp/lid_heads/lid_heads.json)"
            )
        config = cls(**conf)
        for option, registry in (("selection", SELECTIONS), ("loss", LOSSES)):
            if getattr(config, option) not in registry:
                raise ConfigError(
                    f"model_conf.guidance: unknown {option} {getattr(config, option)!r}; choose from {list(registry)}"
                )
        return config


def guidance_loss(
    attention: dict[int, torch.Tensor],
    heads: Sequence[Head],
    words: WordRows,
    target: float,
    n_utts: int,
    loss: str = "squared_error",
) -> torch.Tensor:
    """The registered ``loss`` of the selected heads' LID-column attention against the CS map.

    Summed over the selected heads and the word tokens, as the paper writes it, and divided by
    ``n_utts`` (:mod:`espnet_cs.guidance`). ``attention[layer]``: (batch, heads, query, key).
    """
    if len(words.rows) == 0 or not heads:
        return next(iter(attention.values())).new_zeros(())
    lid = selected_lid_attention(attention, heads, words)  # (tokens, selected, 2)
    return LOSSES[loss](lid, words.languages.to(lid.device), target).sum() / n_utts


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
        if tokenizer.task_tokens != "zh_en":
            raise ConfigError("attention guidance needs the two-LID task tokens (task_tokens: zh_en)")
        self.config = config
        self.tokenizer = tokenizer
        self.heads = LidHeads.load(config.lid_heads, backbone_sha256, n_layers, n_heads).select(
            config.selection, config.fraction, config.seed
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
        return guidance_loss(attention, self.heads, words, self.config.target, text.size(0), self.config.loss)
