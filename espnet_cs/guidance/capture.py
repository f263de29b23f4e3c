"""Differentiable self-attention probabilities of Whisper's decoder during teacher-forced passes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch

from espnet_cs.blocks import equal_length_groups
from espnet_cs.decoder import CSWhisperDecoder
from espnet_cs.precision import widened


@dataclass
class CapturedAttention:
    """``{layer: [(batch, heads, positions, positions), ...]}``, one entry per decoder pass.

    :meth:`CSWhisperDecoder.forward <espnet_cs.decoder.CSWhisperDecoder.forward>` makes one
    teacher-forced pass per encoder length, and with language prompts one more, of one position,
    before each (the language detection of :mod:`espnet_cs.prompts.language`);
    :meth:`in_batch_order` joins the teacher-forced ones.
    """

    parts: dict[int, list[torch.Tensor]] = field(default_factory=dict)

    def in_batch_order(self, hlens: torch.Tensor | None, positions: int) -> dict[int, torch.Tensor]:
        """``{layer: (batch, heads, positions, positions)}`` of the teacher-forced passes.

        Args:
            hlens: (batch,) lengths of the encoder states the decoder read (None: one pass).
            positions: decoder positions of the teacher-forced pass (soft prompts + tokens);
                passes over other lengths are not part of it.
        """
        joined = {
            layer: torch.cat([p for p in parts if p.size(-1) == positions]) for layer, parts in self.parts.items()
        }
        if hlens is None:
            return joined
        order = torch.argsort(torch.cat(equal_length_groups(hlens))).to(next(iter(joined.values())).device)
        return {layer: attention[order] for layer, attention in joined.items()}


@contextmanager
def capture_attention(decoder: CSWhisperDecoder) -> Iterator[CapturedAttention]:
    """Capture the self-attention probabilities of every layer and head while inside the block.

    Whisper's attention returns detached scores, and none at all with PyTorch's fused attention,
    so the probabilities are recomputed from the same query and key projections, differentiable
    (for the guidance loss). Outside the block nothing is recomputed: decoding is not slowed down.
    """
    captured = CapturedAttention()

    def hook(layer: int):
        def capture(module: torch.nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
            if module.key in (kwargs.get("kv_cache") or {}):  # self-attention keys cached: decoding
                raise RuntimeError("attention capture is for teacher-forced passes, not cached decoding")
            x, mask = args[0], kwargs.get("mask")
            q, k = module.query(x), module.key(x)
            heads, n = module.n_head, x.size(1)
            scale = (q.size(-1) // heads) ** -0.25
            q = q.view(*q.shape[:2], heads, -1).transpose(1, 2) * scale
            k = k.view(*k.shape[:2], heads, -1).transpose(1, 2) * scale
            scores = widened(q @ k.transpose(-1, -2))
            if mask is not None:
                scores = scores + mask[:n, :n]
            captured.parts.setdefault(layer, []).append(scores.softmax(dim=-1))

        return capture

    blocks = decoder.decoders.blocks
    hooks = [block.attn.register_forward_hook(hook(i), with_kwargs=True) for i, block in enumerate(blocks)]
    try:
        yield captured
    finally:
        for h in hooks:
            h.remove()
