"""Language prompts: a prompt shift conditioned on the utterance's zh/en distribution.

The distribution is detected the way Whisper detects languages: the decoder's ``<|zh|>`` and
``<|en|>`` probabilities after ``<|startoftranscript|>`` over the (prompted, adapted) encoder
states. It is the same at training and at test time, so no reference language is needed.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from whisper.model import TextDecoder

from espnet_cs.precision import widened


class LanguageEncoder(nn.Module):
    """Maps a zh/en language distribution (batch, 2) to a prompt shift (batch, d_model).

    Args:
        language_embeddings: (2, d_model) Whisper's ``<|zh|>``, ``<|en|>`` token embeddings (kept frozen).
        bottleneck: hidden size of the MLP, whose output layer starts at zero (no shift at first).
    """

    def __init__(self, language_embeddings: torch.Tensor, bottleneck: int) -> None:
        super().__init__()
        d_model = language_embeddings.size(1)
        self.register_buffer("language_embeddings", language_embeddings.detach().clone(), persistent=False)
        self.mlp = nn.Sequential(nn.Linear(d_model, bottleneck), nn.GELU(), nn.Linear(bottleneck, d_model))
        nn.init.zeros_(self.mlp[2].weight)
        nn.init.zeros_(self.mlp[2].bias)

    def forward(self, lid: torch.Tensor) -> torch.Tensor:
        return self.mlp(lid.to(self.language_embeddings.dtype) @ self.language_embeddings)


@torch.no_grad()
def detect_language(
    decoder: TextDecoder,
    memory: torch.Tensor,
    sot: int,
    lid_tokens: Sequence[int],
    cross_kv: dict[torch.nn.Module, torch.Tensor] | None = None,
) -> torch.Tensor:
    """zh/en distribution (batch, 2) of ``decoder`` after ``<|startoftranscript|>``.

    Run it outside any key/value cache: this pass is not part of the decoded sequence.

    Args:
        decoder: Whisper's text decoder.
        memory: (batch, frames, d_model) encoder states.
        sot: id of ``<|startoftranscript|>``.
        lid_tokens: ids of ``<|zh|>`` and ``<|en|>``.
        cross_kv: the blocks' cross-attention keys and values over ``memory``, keyed by
            projection module (else projected here); self-attention never reads them.
    """
    x = decoder.token_embedding.weight[sot] + decoder.positional_embedding[0]
    x = x.expand(memory.size(0), 1, -1).to(memory.dtype)
    for block in decoder.blocks:
        x = block(x, memory, mask=decoder.mask, kv_cache=cross_kv)
    logits = decoder.ln(x)[:, 0] @ decoder.token_embedding.weight[list(lid_tokens)].to(x.dtype).T
    return widened(logits).softmax(dim=-1)
