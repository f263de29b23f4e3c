"""Speech to text: batched greedy decoding and beam search with a key/value cache, as openai-whisper
decodes, with its loop control (temperature fallback), no-repeat n-gram blocking and a repetition guard.

:class:`Transcriber` turns batches of 16-kHz audio into :class:`Hypothesis` objects (the one result
type of decoding, stage 8 and the Python API). With ``suppress_blank`` and ``suppress_tokens`` on
(the defaults, as in openai-whisper) and no loop control, the tokens equal ``whisper.decode`` with
``temperature=0``, the same ``beam_size`` (:mod:`espnet_cs.beam_search`) and the same task tokens.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from espnet_cs.audio import SAMPLE_RATE
from espnet_cs.beam_search import beam_search_decode
from espnet_cs.blocks import equal_length_groups
from espnet_cs.decoder import CSWhisperDecoder
from espnet_cs.encoder import CSWhisperEncoder
from espnet_cs.few_rows import few_rows_linears
from espnet_cs.loop_control import RepetitionGuard, guard_cut, guard_cut_last
from espnet_cs.model import CSWhisperModel
from espnet_cs.search import (
    Decoded,
    DecodingConfig,
    TokenFilter,
    best_candidate,
    decoding_memory_bytes,
    free_memory_bytes,
    keep_rows_,
    max_new_tokens,
)
from espnet_cs.tokenizer import CSTokenizer, Language


@torch.no_grad()
def greedy_decode(
    decoder: CSWhisperDecoder,
    memory: torch.Tensor,
    tokenizer: CSTokenizer,
    config: DecodingConfig = DecodingConfig(),
    seconds: Sequence[float] | None = None,
    temperature: float = 0.0,
    generators: Sequence[torch.Generator] | None = None,
) -> list[Decoded]:
    """Decode a batch greedily, or by sampling at ``temperature`` > 0 (openai-whisper's ``GreedyDecoder``).

    Args:
        decoder: the text decoder.
        memory: (batch, frames, d_model) encoder states.
        tokenizer: gives the task tokens and the suppressed tokens.
        config: options; a guard needs ``seconds``.
        seconds: (batch,) audio durations, for the guard's token budget.
        temperature: 0: the most probable token; > 0: sampled from the softmax of logits / temperature.
        generators: (batch,) the random generator of each utterance when sampling, on ``memory``'s device.
    Returns:
        the sampled tokens of each utterance, without task tokens and end of text; their
        log-probability only when sampling or with ``config.fallback``.
    """
    if config.guard is not None and seconds is None:
        raise ValueError("the repetition guard needs the audio durations")
    batch = memory.size(0)
    if temperature > 0 and (generators is None or len(generators) != batch):
        raise ValueError("sampling needs one random generator per utterance")
    task = torch.tensor(tokenizer.sot_sequence, device=memory.device).repeat(batch, 1)
    eot = tokenizer.eot
    token_filter = TokenFilter(tokenizer, config, memory.device)
    tracked = temperature > 0 or config.fallback is not None
    sum_logprobs = [0.0] * batch

    sampled: list[list[int]] = [[] for _ in range(batch)]
    active = list(range(batch))  # utterance of each row still decoded
    finished = [False] * batch
    tokens = task
    cross_kv = decoder.cross_attention_kv(memory, heads_contiguous=True)
    prompts = decoder.prompt_states(memory, cross_kv)
    with decoder.kv_cache(cross_kv) as cache, few_rows_linears(decoder.decoders):
        for step in range(max_new_tokens(decoder, tokenizer, config)):
            logits = decoder.logits(tokens, memory, prompts, cache)[:, -1]
            token_filter(logits, step, [sampled[i] for i in active])
            if temperature > 0:
                probs = torch.softmax(logits.float() / temperature, dim=-1)
                next_tokens = torch.cat(
                    [torch.multinomial(probs[row], 1, generator=generators[i]) for row, i in enumerate(active)]
                )
            else:
                next_tokens = logits.argmax(dim=-1)
            logprobs = (
                torch.log_softmax(logits.float(), dim=-1).gather(1, next_tokens[:, None])[:, 0].tolist()
                if tracked
                else None
            )
            for row, (i, token) in enumerate(zip(active, next_tokens.tolist())):
                if finished[i]:
                    next_tokens[row] = eot
                    continue
                if tracked:
                    sum_logprobs[i] += logprobs[row]
                if token == eot:
                    finished[i] = True
                else:
                    sampled[i].append(token)
                    cut = None if config.guard is None else guard_cut_last(sampled[i], seconds[i], config.guard)
                    if cut is not None:
                        del sampled[i][cut:]
                        finished[i] = True
            if all(finished[i] for i in active):
                break
            if config.drop_finished and any(finished[i] for i in active):
                rows = [row for row, i in enumerate(active) if not finished[i]]
                active = [active[row] for row in rows]
                index = torch.tensor(rows, device=memory.device)
                memory, next_tokens = memory[index], next_tokens[index]
                for module, states in cache.items():
                    cache[module] = keep_rows_(states, rows)
            tokens = next_tokens[:, None]
    return [Decoded(tokens, total if tracked else None) for tokens, total in zip(sampled, sum_logprobs)]


@dataclass(frozen=True)
class Hypothesis:
    """One decoded utterance.

    ``tokens`` are the token ids (no task tokens, no end of text); ``pieces`` pairs every token's
    text with its language, ``"zh"``, ``"en"`` or ``"other"``
    (:meth:`espnet_cs.tokenizer.CSTokenizer.language_tags`); a character split over two byte-level
    tokens shows as U+FFFD in each piece.
    """

    text: str
    tokens: list[int]
    languages: list[Language]
    pieces: list[tuple[str, str]]

    @classmethod
    def from_tokens(cls, tokens: Sequence[int], tokenizer: CSTokenizer) -> Hypothesis:
        tokens = list(tokens)
        languages = tokenizer.language_tags(tokens)
        texts = [
            tokenizer.whisper.encoding.decode_single_token_bytes(t).decode("utf-8", errors="replace") for t in tokens
        ]
        return cls(
            tokenizer.decode(tokens), tokens, languages, [(t, lang.name.lower()) for t, lang in zip(texts, languages)]
        )


class Transcriber:
    """Transcription of batches of audio with a Whisper encoder and decoder: greedy, or beam search
    with ``config.beam_size`` > 1, each with the loop control of ``config``."""

    def __init__(
        self,
        encoder: CSWhisperEncoder,
        decoder: CSWhisperDecoder,
        tokenizer: CSTokenizer,
        config: DecodingConfig = DecodingConfig(),
        device: str = "cpu",
    ) -> None:
        self.encoder = encoder.to(device).eval()
        self.decoder = decoder.to(device).eval()
        self.tokenizer = tokenizer
        self.config = config
        self.device = device

    @classmethod
    def from_model(
        cls, model: CSWhisperModel, config: DecodingConfig = DecodingConfig(), device: str = "cpu"
    ) -> Transcriber:
        """Decode with ``model``'s encoder, decoder and task tokens (e.g. ``CSWhisperModel.from_backbone(...)``)."""
        return cls(model.encoder, model.decoder, model.tokenizer, config, device)

    @classmethod
    def from_trained(
        cls, train_config: str, model_file: str, config: DecodingConfig = DecodingConfig(), device: str = "cpu"
    ) -> Transcriber:
        """A model trained by ``espnet_cs.bin.train`` (its prompts, adapters and padding; not its
        guidance loss, whose LID-head file decoding does not read)."""
        from espnet_cs.task import CSASRTask  # the task imports ESPnet's whole training stack

        model, _ = CSASRTask.build_inference_model(train_config, model_file, device)
        return cls.from_model(model, config, device)

    def check_memory(self, batch_size: int) -> None:
        """Raise ValueError if decoding a batch of ``batch_size`` 30-s windows is estimated to need
        more memory than the device has free (:func:`espnet_cs.search.decoding_memory_bytes`)."""
        frames = self.encoder.encoders.positional_embedding.size(0) + self.encoder.soft_prompts.length
        needed = decoding_memory_bytes(self.decoder, self.config, batch_size, frames)
        free = free_memory_bytes(torch.device(self.device))
        if needed > free:
            rows = batch_size * max(self.config.beam_size, self.config.fallback.best_of if self.config.fallback else 1)
            raise ValueError(
                f"beam size {self.config.beam_size} with batch size {batch_size} ({rows} rows) needs about "
                f"{needed / 2**30:.1f} GiB for 30-s windows; {self.device} has {free / 2**30:.1f} GiB free: "
                "lower the beam size or the batch size"
            )

    @torch.no_grad()
    def __call__(self, audios: Sequence[np.ndarray]) -> list[Hypothesis]:
        """Transcribe a batch; a hypothesis does not depend on its batch mates (nor on --batch_size or --nj).

        The encoder pads each utterance by its padding policy
        (:meth:`espnet_cs.encoder.CSWhisperEncoder.padded_samples`), and utterances whose encoder
        states differ in length are decoded in separate passes.

        Args:
            audios: 1-D float arrays of 16-kHz audio, each at most 30 s.
        Returns:
            one hypothesis per audio, in order.
        """
        lengths = torch.tensor([len(a) for a in audios])
        speech = torch.zeros(len(audios), int(lengths.max()))
        for row, audio in enumerate(audios):
            speech[row, : len(audio)] = torch.as_tensor(audio, dtype=torch.float32)
        memory, memory_lengths, _ = self.encoder(speech.to(self.device), lengths.to(self.device))
        hyps: list[Hypothesis | None] = [None] * len(audios)
        for rows in equal_length_groups(memory_lengths.cpu()):
            group = rows.tolist()
            seconds = [len(audios[i]) / SAMPLE_RATE for i in group]
            group_memory = memory[rows.to(memory.device), : int(memory_lengths[rows[0]])]
            decoded = self.search(group_memory, seconds)
            if self.config.fallback is not None:
                decoded = self.fall_back(group_memory, decoded, [audios[i] for i in group])
            for i, result, duration in zip(group, decoded, seconds):
                tokens = result.tokens
                if self.guard_after_search and (cut := guard_cut(tokens, duration, self.config.guard)) is not None:
                    tokens = tokens[:cut]
                hyps[i] = Hypothesis.from_tokens(tokens, self.tokenizer)
        return hyps

    @property
    def guard_after_search(self) -> bool:
        """Whether the guard cuts the searched hypotheses rather than greedy decoding as it runs:
        with beam search, and with fallback (which judges the hypotheses uncut)."""
        return self.config.guard is not None and (self.config.beam_size > 1 or self.config.fallback is not None)

    def search(self, memory: torch.Tensor, seconds: Sequence[float]) -> list[Decoded]:
        """The first decode of a group: beam search or greedy (guarded as it runs where the guard allows)."""
        if self.config.beam_size > 1:
            return beam_search_decode(self.decoder, memory, self.tokenizer, self.config)
        config = replace(self.config, guard=None) if self.guard_after_search else self.config
        return greedy_decode(self.decoder, memory, self.tokenizer, config, seconds)

    def fall_back(self, memory: torch.Tensor, decoded: list[Decoded], audios: Sequence[np.ndarray]) -> list[Decoded]:
        """openai-whisper's temperature fallback (:class:`espnet_cs.loop_control.Fallback`) of a group's hypotheses.

        Args:
            memory: (utterances, frames, d_model) encoder states of the group.
            decoded: the first decode of each utterance.
            audios: the audio of each utterance (it seeds the sampling).
        """
        fallback = self.config.fallback
        decoded = list(decoded)
        digests = [hashlib.sha256(np.ascontiguousarray(a, dtype=np.float32).tobytes()).digest() for a in audios]
        config = replace(self.config, guard=None)
        for temperature in fallback.temperatures:
            redo = [
                i
                for i, d in enumerate(decoded)
                if fallback.needs_fallback(self.tokenizer.decode(d.tokens), d.avg_logprob)
            ]
            if not redo:
                break
            n = fallback.best_of
            generators = [
                torch.Generator(memory.device).manual_seed(fallback.seed_of(digests[i], temperature, k))
                for i in redo
                for k in range(n)
            ]
            rows = memory[torch.tensor(redo, device=memory.device)].repeat_interleave(n, dim=0)
            samples = greedy_decode(self.decoder, rows, self.tokenizer, config, None, temperature, generators)
            for j, i in enumerate(redo):
                decoded[i] = best_candidate(samples[j * n : (j + 1) * n], self.config.length_penalty)
        return decoded


def apply_guard(hypothesis: Hypothesis, seconds: float, guard: RepetitionGuard, tokenizer: CSTokenizer) -> Hypothesis:
    """The hypothesis decoding would have produced with ``guard`` on (a prefix): the guard cuts the
    searched hypothesis (greedy decoding, being causal, cuts while it runs to the same tokens)."""
    cut = guard_cut(hypothesis.tokens, seconds, guard)
    return hypothesis if cut is None else Hypothesis.from_tokens(hypothesis.tokens[:cut], tokenizer)
