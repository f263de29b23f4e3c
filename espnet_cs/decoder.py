"""Whisper's text decoder as an ESPnet decoder and batch scorer, with a key/value cache."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Iterator, Optional

import torch
import whisper
from espnet.nets.scorer_interface import BatchScorerInterface
from espnet2.asr.decoder.abs_decoder import AbsDecoder

from espnet_cs.adapters import AdapterConfig, attach_adapters
from espnet_cs.backbone import load_whisper
from espnet_cs.encoder import equal_length_groups
from espnet_cs.prompts import PromptConfig, SoftPrompts, insert_prompts
from espnet_cs.tokenizer import CSTokenizer

# Maps a key/value projection module to its output for all positions so far:
# (batch, positions, d_model) for self-attention, (batch, audio frames, d_model) for cross-attention.
KVCache = dict[torch.nn.Module, torch.Tensor]
# Byte-level BPE ranks merges by frequency: the first ids are the most frequent tokens.
FREQUENT_TOKENS = 5000


class WhisperCSDecoder(AbsDecoder, BatchScorerInterface):
    """Whisper's text decoder around a loaded backbone.

    Token sequences include the decoder prompt (``<|startoftranscript|>`` ... ``<|notimestamps|>``).
    Soft prompts, if configured, go in front of it, where Whisper reads previous-text context
    (``<|startofprev|>`` + tokens): they take positions ``0..length-1`` and the token sequence
    follows. They start as the embeddings of ``<|startofprev|>`` and frequent text tokens
    (vocabulary initialization, Lester et al. 2021), so training starts from a model that reads
    them as ordinary context. They are fed with the first chunk of tokens (with a cache: the
    first call).

    Language prompts are conditioned on the utterance's zh/en distribution, detected the way
    Whisper detects languages: the backbone decoder's ``<|zh|>``/``<|en|>`` probabilities after
    ``<|startoftranscript|>`` over the (adapted) encoder states, at training and test time alike.

    Args:
        vocab_size: must equal the backbone's vocabulary size.
        encoder_output_size: must equal the backbone's width.
        whisper_model: backbone spec for :func:`espnet_cs.backbone.load_whisper`.
        cache_dir: where converted backbones are cached.
        prompts: soft prompt options (:class:`espnet_cs.prompts.PromptConfig`); none by default.
        adapters: bottleneck adapter options (:class:`espnet_cs.adapters.AdapterConfig`); none by default.
    """

    def __init__(
        self,
        vocab_size: int,
        encoder_output_size: int,
        whisper_model: str = "whisper-base",
        cache_dir: Optional[str] = None,
        prompts: Optional[dict] = None,
        adapters: Optional[dict] = None,
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
        self.cache_paused = False  # set while a forward pass must not touch the KV cache
        tokenizer = CSTokenizer.for_vocab(model.dims.n_vocab)
        self.sot = tokenizer.sot
        self.lid_tokens = [tokenizer.language_token_ids[lang] for lang in ("zh", "en")]
        config = PromptConfig.from_dict(prompts, "decoder prompts")
        max_prompt = self.n_ctx - len(tokenizer.sot_sequence) - self.n_ctx // 2
        if config.length > max_prompt:
            raise ValueError(
                f"decoder prompts: length {config.length} does not fit Whisper's text context of "
                f"{self.n_ctx} with the task prompt and {self.n_ctx // 2} output tokens (at most {max_prompt})"
            )
        language_embeddings = self.decoders.token_embedding.weight[self.lid_tokens] if config.language else None
        self.prompts = (
            SoftPrompts(config, model.dims.n_text_layer, model.dims.n_text_state, language_embeddings,
                        init=self.context_states(tokenizer, config.length))
            if config.length else None
        )
        adapter_config = AdapterConfig.from_dict(adapters, "decoder adapters", allowed=("attn", "cross_attn", "mlp"))
        self.adapters = attach_adapters(self.decoders.blocks, adapter_config, model.dims.n_text_state)

    @torch.no_grad()
    def context_states(self, tokenizer: CSTokenizer, n: int) -> torch.Tensor:
        """(n_layers, n, d_model) initial prompts: a previous-text context Whisper can read.

        The context is ``<|startofprev|>`` and ``n - 1`` tokens drawn from the most frequent BPE
        merges (vocabulary initialization, Lester et al. 2021). Set 0 is their token embeddings
        (positions are added in :meth:`logits`); set ``i`` is what block ``i`` receives for them
        when the audio is uninformative (all-zero encoder states).
        """
        dec = self.decoders
        tokens = torch.cat([torch.tensor([tokenizer.whisper.sot_prev]), torch.randint(0, FREQUENT_TOKENS, (n - 1,))])
        embeddings = dec.token_embedding.weight[tokens.to(dec.token_embedding.weight.device)]
        x = (embeddings + dec.positional_embedding[:n])[None]
        silence = x.new_zeros(1, 1, x.size(-1))
        states = [embeddings]
        for block in dec.blocks[:-1]:
            x = block(x, silence, mask=dec.mask)
            states.append(x[0])
        return torch.stack(states)

    def forward(
        self,
        hs_pad: torch.Tensor,
        hlens: Optional[torch.Tensor],
        ys_in_pad: torch.Tensor,
        ys_in_lens: Optional[torch.Tensor],
    ) -> tuple[torch.Tensor, Optional[torch.Tensor]]:
        """Teacher-forced logits.

        Whisper's cross-attention has no padding mask: utterances whose encoder states differ in
        length are decoded in separate passes, each over its own valid states, so an
        utterance's logits do not depend on its batch mates.

        Args:
            hs_pad: (batch, frames, d_model) encoder states, zero-padded.
            hlens: (batch,) valid states per utterance (None: all are valid).
            ys_in_pad: (batch, length) prompt + target tokens, padded with anything.
            ys_in_lens: (batch,) valid lengths.
        Returns:
            logits (batch, length, vocab); ys_in_lens.
        """
        if hlens is None:
            return self.logits(ys_in_pad, hs_pad), ys_in_lens
        groups = equal_length_groups(hlens)
        logits = [self.logits(ys_in_pad[rows], hs_pad[rows, : int(hlens[rows[0]])]) for rows in groups]
        if len(groups) == 1:
            return logits[0], ys_in_lens
        return torch.cat(logits)[torch.argsort(torch.cat(groups))], ys_in_lens

    def logits(
        self, tokens: torch.Tensor, memory: torch.Tensor, cache: Optional[KVCache] = None
    ) -> torch.Tensor:
        """Whisper's ``TextDecoder.forward``; with ``cache``, ``tokens`` continue the cached ones.

        Args:
            tokens: (batch, new_length) token ids.
            memory: (batch, frames, d_model) encoder states.
            cache: filled by :meth:`kv_cache`; tokens continue the cached ones.
        Returns:
            (batch, new_length, vocab) float32 logits.
        """
        dec = self.decoders
        offset = self.cached_tokens(cache)
        n_prompts = self.prompts.length if self.prompts is not None else 0
        start = n_prompts + offset  # position of the first new token
        if start + tokens.size(1) > self.n_ctx:
            raise ValueError(f"token sequence longer than the decoder context ({self.n_ctx})")
        x = dec.token_embedding(tokens) + dec.positional_embedding[start : start + tokens.size(1)]
        x = x.to(memory.dtype)
        prompts = None
        if n_prompts and offset == 0:
            lid = self.detect_language(memory) if self.prompts.language is not None else None
            prompts = self.prompts(x.size(0), lid).to(x.dtype)
        for i, block in enumerate(dec.blocks):
            if prompts is not None and self.prompts.enters_block(i):
                layer_prompts = prompts[i] + dec.positional_embedding[:n_prompts].to(x.dtype) if i == 0 else prompts[i]
                x = insert_prompts(x, layer_prompts, replace=i > 0)
            x = block(x, memory, mask=dec.mask, kv_cache=cache)
        x = dec.ln(x[:, x.size(1) - tokens.size(1):])
        return (x @ dec.token_embedding.weight.to(x.dtype).T).float()

    @torch.no_grad()
    def detect_language(self, memory: torch.Tensor) -> torch.Tensor:
        """zh/en distribution (batch, 2) of the backbone decoder after ``<|startoftranscript|>``.

        Args:
            memory: (batch, frames, d_model) encoder states.
        """
        dec = self.decoders
        x = dec.token_embedding.weight[self.sot] + dec.positional_embedding[0]
        x = x.expand(memory.size(0), 1, -1).to(memory.dtype)
        self.cache_paused = True  # this pass is not part of the cached sequence
        try:
            for block in dec.blocks:
                x = block(x, memory, mask=dec.mask)
        finally:
            self.cache_paused = False
        logits = dec.ln(x)[:, 0] @ dec.token_embedding.weight[self.lid_tokens].to(x.dtype).T
        return logits.float().softmax(dim=-1)

    def cached_tokens(self, cache: Optional[KVCache]) -> int:
        """Number of tokens held in ``cache`` (soft prompt positions not counted)."""
        if not cache:
            return 0
        positions = cache[self.decoders.blocks[0].attn.key].size(1)
        return positions - (self.prompts.length if self.prompts is not None else 0)

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
            if self.cache_paused:
                return output
            if module in cache:
                output = torch.cat([cache[module], output], dim=1)
            cache[module] = output.detach()
            return cache[module]

        def store(module: torch.nn.Module, _: Any, output: torch.Tensor) -> torch.Tensor:
            if not self.cache_paused:
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

    @contextmanager
    def capture_attention(self) -> Iterator[dict[int, list[torch.Tensor]]]:
        """Self-attention probabilities of every layer and head while inside the block.

        Yields ``{layer: [(batch, heads, positions, positions), ...]}``, one entry per pass
        (:meth:`forward` makes one pass per encoder length; :func:`in_batch_order` joins them),
        differentiable (for the guidance loss). Whisper's attention returns
        detached scores, and none at all with PyTorch's fused attention, so the probabilities
        are recomputed from the same query and key projections. Outside the block nothing is
        recomputed: decoding is not slowed down.
        """
        captured: dict[int, list[torch.Tensor]] = {}

        def hook(layer: int):
            def capture(module: torch.nn.Module, args: tuple, kwargs: dict, output: Any) -> None:
                if kwargs.get("kv_cache") is not None:
                    raise RuntimeError("attention capture is for teacher-forced passes, not cached decoding")
                x, mask = args[0], kwargs.get("mask")
                q, k = module.query(x), module.key(x)
                heads, n = module.n_head, x.size(1)
                scale = (q.size(-1) // heads) ** -0.25
                q = q.view(*q.shape[:2], heads, -1).transpose(1, 2) * scale
                k = k.view(*k.shape[:2], heads, -1).transpose(1, 2) * scale
                scores = (q @ k.transpose(-1, -2)).float()
                if mask is not None:
                    scores = scores + mask[:n, :n]
                captured.setdefault(layer, []).append(scores.softmax(dim=-1))
            return capture

        hooks = [block.attn.register_forward_hook(hook(i), with_kwargs=True) for i, block in enumerate(self.decoders.blocks)]
        try:
            yield captured
        finally:
            for h in hooks:
                h.remove()

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
        new_tokens = ys[:, self.cached_tokens(cache):]
        with self.kv_cache(cache):
            logits = self.logits(new_tokens, xs, cache)[:, -1]
        new_states = [{module: t[i] for module, t in cache.items()} for i in range(ys.size(0))]
        return torch.log_softmax(logits, dim=-1), new_states


def in_batch_order(captured: dict[int, list[torch.Tensor]], hlens: Optional[torch.Tensor]) -> dict[int, torch.Tensor]:
    """``{layer: (batch, heads, positions, positions)}`` of a teacher-forced :meth:`WhisperCSDecoder.forward`
    over encoder states of lengths ``hlens``, from what :meth:`WhisperCSDecoder.capture_attention` captured."""
    if hlens is None:
        return {layer: torch.cat(parts) for layer, parts in captured.items()}
    order = torch.argsort(torch.cat(equal_length_groups(hlens)))
    return {layer: torch.cat(parts)[order.to(parts[0].device)] for layer, parts in captured.items()}
