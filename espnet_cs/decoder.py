"""Whisper's text decoder as an ESPnet decoder and batch scorer, with soft prompts and a key/value cache."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
import whisper
from espnet.nets.scorer_interface import BatchScorerInterface
from espnet2.asr.decoder.abs_decoder import AbsDecoder

from espnet_cs.adapters import DECODER_SUBLAYERS, AdapterConfig, attach_adapters
from espnet_cs.backbone import load_whisper
from espnet_cs.blocks import KVCache, decoder_block_with_unread_prefix, equal_length_groups, run_block
from espnet_cs.few_rows import few_rows_linear, few_rows_linears
from espnet_cs.precision import widened
from espnet_cs.prompts import SoftPrompts
from espnet_cs.prompts.language import detect_language
from espnet_cs.tokenizer import CSTokenizer


class CSWhisperDecoder(AbsDecoder, BatchScorerInterface):
    """Whisper's text decoder around a loaded backbone.

    Token sequences start with the task tokens (``<|startoftranscript|>`` ... ``<|notimestamps|>``,
    :attr:`espnet_cs.tokenizer.CSTokenizer.sot_sequence`). Soft prompts, if configured, go in
    front of them, where Whisper reads previous-text context: they take positions
    ``0..length-1`` and every token position is shifted by ``length`` (:mod:`espnet_cs.prompts`).
    They are computed once per batch of encoder states by :meth:`prompt_states`, outside any
    key/value cache, and fed with the first chunk of tokens.

    Args:
        vocab_size: must equal the backbone's vocabulary size.
        encoder_output_size: must equal the backbone's width.
        whisper_model: backbone spec for :func:`espnet_cs.backbone.load_whisper`.
        cache_dir: where converted backbones are cached.
        soft_prompts: soft prompt options (:class:`espnet_cs.prompts.PromptConfig`); none by default.
        adapters: bottleneck adapter options (:class:`espnet_cs.adapters.AdapterConfig`); none by default.
        activation_checkpointing: recompute each block in the backward pass instead of keeping its
            activations (training only; see :func:`espnet_cs.blocks.run_block`).
    """

    def __init__(
        self,
        vocab_size: int,
        encoder_output_size: int,
        whisper_model: str = "whisper-base",
        cache_dir: str | None = None,
        soft_prompts: dict | None = None,
        adapters: dict | None = None,
        activation_checkpointing: bool = False,
    ) -> None:
        super().__init__()
        self.activation_checkpointing = activation_checkpointing
        model, self.backbone_identity = load_whisper(whisper_model, cache_dir=cache_dir)
        self.decoders: whisper.model.TextDecoder = model.decoder
        if vocab_size != model.dims.n_vocab or encoder_output_size != model.dims.n_text_state:
            raise ValueError(
                f"decoder of {whisper_model!r} has vocabulary {model.dims.n_vocab} and width "
                f"{model.dims.n_text_state}; got vocab_size={vocab_size}, "
                f"encoder_output_size={encoder_output_size}"
            )
        self.n_ctx = model.dims.n_text_ctx
        tokenizer = CSTokenizer.for_vocab(model.dims.n_vocab)
        self.sot = tokenizer.sot
        self.lid_tokens = [tokenizer.language_token_ids[lang] for lang in ("zh", "en")]
        # Whisper samples at most half its context: prompts must leave room for that and the task tokens.
        max_prompts = self.n_ctx - len(tokenizer.sot_sequence) - self.max_new_tokens
        self.soft_prompts = SoftPrompts.for_decoder(
            soft_prompts, self.decoders, tokenizer.whisper, self.lid_tokens, max_prompts
        )
        adapter_config = AdapterConfig.from_dict(adapters, "decoder adapters", allowed=DECODER_SUBLAYERS)
        self.adapters = attach_adapters(self.decoders.blocks, adapter_config, model.dims.n_text_state)

    @property
    def max_new_tokens(self) -> int:
        """Tokens Whisper samples at most after the task tokens: half its text context (224)."""
        return self.n_ctx // 2

    def cross_attention_kv(self, memory: torch.Tensor, heads_contiguous: bool = False) -> KVCache:
        """Every block's cross-attention keys and values over ``memory``, (batch, frames, d_model) each.

        Whisper's attention reads them instead of projecting ``memory`` again wherever they are
        passed as its ``kv_cache``: computed once, they serve language detection, the teacher-forced
        pass and every decoding step.

        With ``heads_contiguous`` each is (batch, frames, heads, head_dim) over head-major memory
        (a permuted (batch, heads, frames, head_dim) tensor): Whisper's attention splits heads with
        a ``view`` that leaves this shape as it is, so scaled-dot-product attention reads every head
        contiguously, with the same values (faster per decoding step on CPU: ``benchmarks/RESULTS.md``).
        """
        cache = {}
        for block in self.decoders.blocks:
            for projection in (block.cross_attn.key, block.cross_attn.value):
                states = projection(memory)
                if heads_contiguous:
                    batch, frames, _ = states.shape
                    states = states.view(batch, frames, block.cross_attn.n_head, -1).transpose(1, 2).contiguous()
                    states = states.transpose(1, 2)
                cache[projection] = states
        return cache

    def prompt_states(self, memory: torch.Tensor, cross_kv: KVCache | None = None) -> torch.Tensor | None:
        """The soft prompts of a batch, (sets, batch, length, d_model), or None without prompts.

        Language prompts are conditioned on the zh/en distribution the decoder detects over
        ``memory`` (:func:`espnet_cs.prompts.language.detect_language`); call this before
        entering :meth:`kv_cache`, whose hooks must not see that pass.

        Args:
            memory: (batch, frames, d_model) encoder states.
            cross_kv: :meth:`cross_attention_kv` of ``memory``, if at hand.
        """
        lid = (
            detect_language(self.decoders, memory, self.sot, self.lid_tokens, cross_kv)
            if self.soft_prompts.needs_language
            else None
        )
        return self.soft_prompts(memory.size(0), lid)

    def teacher_forced_logits(self, tokens: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """:meth:`logits` of whole token sequences, prompts included; language detection and this
        pass share the cross-attention keys and values.

        Args:
            tokens: (batch, length); memory: (batch, frames, d_model) valid encoder states only.
        Returns:
            (batch, length, vocab)
        """
        cross_kv = self.cross_attention_kv(memory) if self.soft_prompts.needs_language else None
        return self.logits(tokens, memory, self.prompt_states(memory, cross_kv), cross_kv=cross_kv)

    def forward(
        self,
        hs_pad: torch.Tensor,
        hlens: torch.Tensor | None,
        ys_in_pad: torch.Tensor,
        ys_in_lens: torch.Tensor | None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Teacher-forced logits.

        Whisper's cross-attention has no padding mask: utterances whose encoder states differ in
        length are decoded in separate passes, each over its own valid states, so an
        utterance's logits do not depend on its batch mates.

        Args:
            hs_pad: (batch, frames, d_model) encoder states, zero-padded.
            hlens: (batch,) valid states per utterance (None: all are valid).
            ys_in_pad: (batch, length) task + target tokens, padded with anything.
            ys_in_lens: (batch,) valid lengths.
        Returns:
            logits (batch, length, vocab); ys_in_lens.
        """
        if hlens is None:
            return self.teacher_forced_logits(ys_in_pad, hs_pad), ys_in_lens
        groups = equal_length_groups(hlens)
        logits = []
        for rows in groups:
            logits.append(self.teacher_forced_logits(ys_in_pad[rows], hs_pad[rows, : int(hlens[rows[0]])]))
        if len(groups) == 1:
            return logits[0], ys_in_lens
        return torch.cat(logits)[torch.argsort(torch.cat(groups))], ys_in_lens

    def logits(
        self,
        tokens: torch.Tensor,
        memory: torch.Tensor,
        prompts: torch.Tensor | None,
        cache: KVCache | None = None,
        cross_kv: KVCache | None = None,
        beams: int = 1,
    ) -> torch.Tensor:
        """Whisper's ``TextDecoder.forward``; with ``cache``, ``tokens`` continue the cached ones.

        Args:
            tokens: (batch, new_length) token ids.
            memory: (batch, frames, d_model) encoder states.
            prompts: :meth:`prompt_states` of ``memory``; used only with the first tokens (the
                cache holds them afterwards).
            cache: filled by :meth:`kv_cache` (it may start with :meth:`cross_attention_kv`).
            cross_kv: :meth:`cross_attention_kv` of ``memory`` without a ``cache``.
            beams: rows of ``tokens`` per row of ``memory`` (consecutive; beam search after its
                first step, see :func:`decoder_block_with_unread_prefix`).
        Returns:
            (batch, new_length, vocab) logits in the model's dtype, at least float32 (:func:`widened`).
        """
        dec = self.decoders
        offset = self.cached_tokens(cache)
        n_prompts = self.soft_prompts.length
        start = n_prompts + offset  # position of the first new token
        if start + tokens.size(1) > self.n_ctx:
            raise ValueError(f"token sequence longer than the decoder context ({self.n_ctx})")
        x = dec.token_embedding(tokens) + dec.positional_embedding[start : start + tokens.size(1)]
        x = x.to(memory.dtype)
        if offset:
            prompts = None  # in the cache already
        elif n_prompts and prompts is None:
            raise ValueError("the first tokens need the soft prompts: pass prompt_states(memory)")
        checkpointed = self.activation_checkpointing and self.training and cache is None
        for i, block in enumerate(dec.blocks):
            x = self.soft_prompts.enter(x, i, prompts, positions=dec.positional_embedding[:n_prompts])
            # Only the token positions' outputs are read after the last block.
            unread = (
                self.soft_prompts.unread_outputs(i, len(dec.blocks), kept_in_output=False) if prompts is not None else 0
            )
            x = run_block(
                decoder_block_with_unread_prefix,
                checkpointed,
                block,
                x,
                memory,
                unread,
                mask=dec.mask,  # by keyword: checkpointing lists positional tensors among its saved activations
                kv_cache=cache if cache is not None else cross_kv,
                beams=beams,
            )
        x = dec.ln(x[:, x.size(1) - tokens.size(1) :])
        # The output layer is the token embedding; a decoding step's few rows take the faster product.
        return widened(few_rows_linear(x, dec.token_embedding.weight.to(x.dtype)))

    def cached_tokens(self, cache: KVCache | None) -> int:
        """Number of tokens held in ``cache`` (soft prompt positions not counted)."""
        key = self.decoders.blocks[0].attn.key
        if not cache or key not in cache:
            return 0
        return cache[key].size(1) - self.soft_prompts.length

    @contextmanager
    def kv_cache(self, cache: KVCache | None = None) -> Iterator[KVCache]:
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
            hooks += [
                block.attn.key.register_forward_hook(append),
                block.attn.value.register_forward_hook(append),
                block.cross_attn.key.register_forward_hook(store),
                block.cross_attn.value.register_forward_hook(store),
            ]
        try:
            yield cache
        finally:
            for hook in hooks:
                hook.remove()

    # ESPnet scorer interface: states are per-hypothesis caches, {module: (positions, d_model)}.

    def score(self, ys: torch.Tensor, state: Any, x: torch.Tensor) -> tuple[torch.Tensor, Any]:
        logp, states = self.batch_score(ys.unsqueeze(0), [state], x.unsqueeze(0))
        return logp.squeeze(0), states[0]

    def batch_score(self, ys: torch.Tensor, states: list[Any], xs: torch.Tensor) -> tuple[torch.Tensor, list[Any]]:
        """Next-token log-probabilities of each prefix, feeding only tokens not yet cached.

        Args:
            ys: (n_hyps, length) prefixes.
            states: per-hypothesis caches from the previous call (None at the start).
            xs: (n_hyps, frames, d_model) encoder states.
        Returns:
            (n_hyps, vocab) log-probabilities and the updated per-hypothesis caches.
        """
        if any(state is None for state in states):
            cache = self.cross_attention_kv(xs)
            prompts = self.prompt_states(xs, cache)
        else:
            cache = {module: torch.stack([s[module] for s in states]) for module in states[0]}
            prompts = None
        new_tokens = ys[:, self.cached_tokens(cache) :]
        with self.kv_cache(cache), few_rows_linears(self.decoders):
            logits = self.logits(new_tokens, xs, prompts, cache)[:, -1]
        new_states = [{module: t[i] for module, t in cache.items()} for i in range(ys.size(0))]
        return torch.log_softmax(logits, dim=-1), new_states
