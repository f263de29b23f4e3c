"""Running Whisper's blocks: activation checkpointing, blocks whose leading rows go unread, equal-length groups.

Shared by the encoder, the decoder and the attention capture of guidance.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import whisper
from torch.utils.checkpoint import checkpoint

# Maps a key/value projection module to its output for all positions so far:
# (batch, positions, d_model) for self-attention, (batch, audio frames, d_model) for cross-attention.
KVCache = dict[torch.nn.Module, torch.Tensor]


def run_block(block: Callable[..., torch.Tensor], checkpointed: bool, *args: Any, **kwargs: Any) -> torch.Tensor:
    """``block(*args, **kwargs)`` (a block or a function running one); with ``checkpointed`` and
    autograd on, its activations are recomputed in the backward pass instead of kept
    (non-reentrant ``torch.utils.checkpoint``)."""
    if checkpointed and torch.is_grad_enabled():
        return checkpoint(block, *args, use_reentrant=False, **kwargs)
    return block(*args, **kwargs)


def encoder_block_with_unread_prefix(
    block: whisper.model.ResidualAttentionBlock, x: torch.Tensor, unread: int
) -> torch.Tensor:
    """An encoder block whose first ``unread`` positions serve only as keys and values.

    Their outputs would go unread (deep prompts replace them at the next block), so only the other
    positions' queries, attention outputs and feed-forward are computed; the first ``unread`` rows
    are passed through as they came in. The other rows equal ``block(x)``'s up to float rounding.

    Args:
        block: an encoder block (no cross-attention).
        x: (batch, time, d_model).
        unread: leading positions whose outputs nothing reads (0: ``block(x)``).
    Returns:
        (batch, time, d_model)
    """
    if not unread:
        return block(x)
    h = block.attn_ln(x)
    y = x[:, unread:] + block.attn(h[:, unread:], h)[0]  # queries: the read rows; keys, values: all
    y = y + block.mlp(block.mlp_ln(y))
    return torch.cat([x[:, :unread], y], dim=1)


def equal_length_groups(lengths: torch.Tensor) -> list[torch.Tensor]:
    """Row indices of the entries of ``lengths`` (batch,) that are equal, one tensor per value, shortest first.

    Utterances of different padded widths never share a Whisper pass (see
    :meth:`espnet_cs.encoder.CSWhisperEncoder.forward`); ``torch.argsort(torch.cat(groups))`` restores batch order.
    """
    return [torch.nonzero(lengths == n).flatten() for n in torch.unique(lengths)]


def decoder_block_with_unread_prefix(
    block: whisper.model.ResidualAttentionBlock,
    x: torch.Tensor,
    memory: torch.Tensor,
    unread: int,
    *,
    mask: torch.Tensor,
    kv_cache: KVCache | None,
    beams: int = 1,
) -> torch.Tensor:
    """A decoder block whose first ``unread`` positions serve only as self-attention keys and values,
    and whose rows may be the beams of fewer utterances.

    Self-attention runs as Whisper runs it, on every position (its hooks and key/value cache see
    what they always see); cross-attention and the feed-forward run on the other positions only,
    and the first ``unread`` rows are passed through as they came in. With ``beams`` > 1, every
    ``beams`` consecutive rows continue one utterance: cross-attention reads them as that many
    more queries of the utterance, so its keys and values (``memory``, or the cross-attention
    entries of ``kv_cache``) stay one row per utterance. The other rows equal
    ``block(x, memory, ...)``'s (with ``memory`` repeated per beam) up to float rounding.

    Args:
        x: (utterances x beams, length, d_model).
        memory: (utterances, frames, d_model) encoder states.
        unread: leading positions whose outputs nothing reads (0: the whole block).
        mask: Whisper's causal mask.
        beams: rows per utterance.
    Returns:
        (utterances x beams, length, d_model)
    """
    if not unread and beams == 1:
        return block(x, memory, mask=mask, kv_cache=kv_cache)
    y = x + block.attn(block.attn_ln(x), mask=mask, kv_cache=kv_cache)[0]
    y = y[:, unread:]
    rows, length, width = y.shape
    queries = block.cross_attn_ln(y).reshape(rows // beams, beams * length, width)
    y = y + block.cross_attn(queries, memory, kv_cache=kv_cache)[0].reshape(rows, length, width)
    y = y + block.mlp(block.mlp_ln(y))
    return torch.cat([x[:, :unread], y], dim=1) if unread else y
