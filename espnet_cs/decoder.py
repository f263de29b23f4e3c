"""Whisper's text decoder as an ESPnet decoder and batch scorer, with a key/value cache."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Optional

import torch
import whisper
from espnet.nets.scorer_interface import BatchScorerInterface
from espnet2.asr.decoder.abs_decoder import AbsDecoder

from espnet_cs.backbone import load_whisper

# Maps a key/value projection module to its output for all positions so far:
# (batch, positions, d_model) for self-attention, (batch, audio frames, d_model) for cross-attention.
KVCache = dict[torch.nn.Module, torch.Tensor]


class WhisperCSDecoder(AbsDecoder, BatchScorerInterface):
    """Whisper's text decoder around a loaded backbone.

    Token sequences include the decoder prompt (``<|startoftranscript|>`` ... ``<|notimestamps|>``).

    Args:
        vocab_size: must equal the backbone's vocabulary size.
        encoder_output_size: must equal the backbone's width.
        whisper_model: backbone spec for :func:`espnet_cs.backbone.load_whisper`.
        cache_dir: where converted backbones are cached.
    """

    def __init__(
        self,
        vocab_size: int,
        encoder_output_size: int,
        whisper_model: str = "whisper-base",
        cache_dir: Optional[str] = None,
    ) -> None:
        super().__init__()
        model, self.backbone_identity = load_whisper(whisper_model, cache_dir=cache_dir)
        self.decoders: whisper.model.TextDecoder = model.decoder
        if vocab_size != model.dims.n_vocab or encoder_output_size != model.dims.n_text_state:
            raise ValueError(
                f"decoder of {whisper_model!r} has vocabulary {model.dims.n_vocab} and width "
                f"{model.dims.n_text_state}; got vocab_size={vocab_size}, "
                f"encoder_output_size={encoder_output_size}"
            )
        self.n_ctx = model.dims.n_text_ctx

    def forward(
        self,
        hs_pad: torch.Tensor,
        hlens: torch.Tensor,
        ys_in_pad: torch.Tensor,
        ys_in_lens: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced logits.

        Args:
            hs_pad: (batch, frames, d_model) encoder states.
            hlens: (batch,) unused: Whisper attends to every frame.
            ys_in_pad: (batch, length) prompt + target tokens, padded with anything.
            ys_in_lens: (batch,) valid lengths.
        Returns:
            logits (batch, length, vocab); ys_in_lens.
        """
        return self.logits(ys_in_pad, hs_pad), ys_in_lens

    def logits(
        self, tokens: torch.Tensor, memory: torch.Tensor, cache: Optional[KVCache] = None
    ) -> torch.Tensor:
        """Whisper's ``TextDecoder.forward``; with ``cache``, ``tokens`` continue the cached ones.

        Args:
            tokens: (batch, new_length) token ids.
            memory: (batch, frames, d_model) encoder states.
            cache: filled by :meth:`kv_cache`; positions start after the cached ones.
        Returns:
            (batch, new_length, vocab) float32 logits.
        """
        dec = self.decoders
        offset = self.cached_length(cache)
        if offset + tokens.size(1) > self.n_ctx:
            raise ValueError(f"token sequence longer than the decoder context ({self.n_ctx})")
        x = dec.token_embedding(tokens) + dec.positional_embedding[offset : offset + tokens.size(1)]
        x = x.to(memory.dtype)
        for block in dec.blocks:
            x = block(x, memory, mask=dec.mask, kv_cache=cache)
        x = dec.ln(x)
        return (x @ dec.token_embedding.weight.to(x.dtype).T).float()

    def cached_length(self, cache: Optional[KVCache]) -> int:
        """Number of token positions held in ``cache``."""
        if not cache:
            return 0
        return cache[self.decoders.blocks[0].attn.key].size(1)

    @contextmanager
    def kv_cache(self, cache: Optional[KVCache] = None) -> Iterator[KVCache]:
        """Cache keys and values while inside the block.

        Self-attention projections append the new positions; cross-attention projections are
        computed on the first call and reused (Whisper's attention reads them from the cache).
        openai-whisper's own hooks tell the two apart by length (> text context), which fails for
        encoder outputs shorter than 448 frames, hence these hooks.
        """
        cache = {} if cache is None else cache

        def append(module: torch.nn.Module, _: Any, output: torch.Tensor) -> torch.Tensor:
            if module in cache:
                output = torch.cat([cache[module], output], dim=1)
            cache[module] = output.detach()
            return cache[module]

        def store(module: torch.nn.Module, _: Any, output: torch.Tensor) -> torch.Tensor:
            cache[module] = output.detach()
            return output

        hooks = []
        for block in self.decoders.blocks:
            hooks += [block.attn.key.register_forward_hook(append),
                      block.attn.value.register_forward_hook(append),
                      block.cross_attn.key.register_forward_hook(store),
                      block.cross_attn.value.register_forward_hook(store)]
        try:
            yield cache
        finally:
            for hook in hooks:
                hook.remove()

    # ESPnet scorer interface: states are per-hypothesis caches, {module: (positions, d_model)}.

    def score(self, ys: torch.Tensor, state: Any, x: torch.Tensor) -> tuple[torch.Tensor, Any]:
        logp, states = self.batch_score(ys.unsqueeze(0), [state], x.unsqueeze(0))
        return logp.squeeze(0), states[0]

    def batch_score(
        self, ys: torch.Tensor, states: list[Any], xs: torch.Tensor
    ) -> tuple[torch.Tensor, list[Any]]:
        """Next-token log-probabilities of each prefix, feeding only tokens not yet cached.

        Args:
            ys: (n_hyps, length) prefixes.
            states: per-hypothesis caches from the previous call (None at the start).
            xs: (n_hyps, frames, d_model) encoder states.
        Returns:
            (n_hyps, vocab) log-probabilities and the updated per-hypothesis caches.
        """
        if any(state is None for state in states):
            cache: KVCache = {}
        else:
            cache = {module: torch.stack([s[module] for s in states]) for module in states[0]}
        new_tokens = ys[:, self.cached_length(cache):]
        with self.kv_cache(cache):
            logits = self.logits(new_tokens, xs, cache)[:, -1]
        new_states = [{module: t[i] for module, t in cache.items()} for i in range(ys.size(0))]
        return torch.log_softmax(logits, dim=-1), new_states
