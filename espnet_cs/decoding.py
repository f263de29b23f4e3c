"""Speech to text: batched greedy decoding with a key/value cache, as openai-whisper decodes, plus a repetition guard.

:class:`Transcriber` turns batches of 16-kHz audio into :class:`Hypothesis` objects (the one result
type of decoding, stage 8 and the Python API). With ``suppress_blank`` and ``suppress_tokens`` on
(the defaults, as in openai-whisper) and no guard, the tokens equal ``whisper.decode`` with
``temperature=0`` and the same task tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from espnet_cs.audio import SAMPLE_RATE
from espnet_cs.blocks import equal_length_groups
from espnet_cs.decoder import CSWhisperDecoder
from espnet_cs.encoder import CSWhisperEncoder
from espnet_cs.few_rows import few_rows_linears
from espnet_cs.model import CSWhisperModel
from espnet_cs.tokenizer import CSTokenizer, Language


@dataclass(frozen=True)
class RepetitionGuard:
    """Stops a hypothesis that loops, as Whisper does without temperature fallback.

    A hypothesis is cut where (a) its last ``max_repeats + 1`` n-grams (n <= ``max_ngram``) are
    the same n-gram, keeping one copy; or (b) it exceeds ``max_tokens_per_second`` x audio seconds
    + ``min_tokens``. Cutting only ever shortens a greedy hypothesis, so the guarded output is a
    prefix of the unguarded one (see :func:`guard_cut`).
    """

    max_ngram: int = 8
    max_repeats: int = 3
    max_tokens_per_second: float = 12.0
    min_tokens: int = 10

    def token_budget(self, seconds: float) -> int:
        return int(self.min_tokens + self.max_tokens_per_second * seconds)


def guard_cut(tokens: Sequence[int], seconds: float, guard: RepetitionGuard) -> int | None:
    """Length to cut ``tokens`` to under ``guard``, or None if it never triggers.

    The check runs on every prefix, so the result is the first position the guard fires during
    greedy decoding.
    """
    for end in range(1, len(tokens) + 1):
        cut = guard_cut_last(tokens[:end], seconds, guard)
        if cut is not None:
            return cut
    return None


@dataclass(frozen=True)
class GreedyConfig:
    """Greedy decoding options (openai-whisper's defaults)."""

    max_new_tokens: int | None = None  # default: the decoder's (half the text context, 224), as Whisper
    suppress_blank: bool = True
    suppress_tokens: bool = True
    guard: RepetitionGuard | None = None
    # Drop utterances that ended from the batch and the key/value cache (the same tokens; False
    # decodes the whole batch to its longest hypothesis, as whisper.decode does).
    drop_finished: bool = True


@torch.no_grad()
def greedy_decode(
    decoder: CSWhisperDecoder,
    memory: torch.Tensor,
    tokenizer: CSTokenizer,
    config: GreedyConfig = GreedyConfig(),
    seconds: Sequence[float] | None = None,
) -> list[list[int]]:
    """Decode a batch greedily.

    Args:
        decoder: the text decoder.
        memory: (batch, frames, d_model) encoder states.
        tokenizer: gives the task tokens and the suppressed tokens.
        config: options; a guard needs ``seconds``.
        seconds: (batch,) audio durations, for the guard's token budget.
    Returns:
        the sampled tokens of each utterance, without task tokens and end of text.
    """
    if config.guard is not None and seconds is None:
        raise ValueError("the repetition guard needs the audio durations")
    batch = memory.size(0)
    task = torch.tensor(tokenizer.sot_sequence, device=memory.device).repeat(batch, 1)
    max_new = config.max_new_tokens or decoder.max_new_tokens
    max_new = min(max_new, decoder.n_ctx - decoder.soft_prompts.length - task.size(1))
    eot = tokenizer.eot
    suppress = torch.tensor(tokenizer.suppress_tokens, device=memory.device)
    blank = torch.tensor(tokenizer.blank_tokens, device=memory.device)

    sampled: list[list[int]] = [[] for _ in range(batch)]
    active = list(range(batch))  # utterance of each row still decoded
    finished = [False] * batch
    tokens = task
    cross_kv = decoder.cross_attention_kv(memory, heads_contiguous=True)
    prompts = decoder.prompt_states(memory, cross_kv)
    with decoder.kv_cache(cross_kv) as cache, few_rows_linears(decoder.decoders):
        for step in range(max_new):
            logits = decoder.logits(tokens, memory, prompts, cache)[:, -1]
            if config.suppress_tokens:
                logits[:, suppress] = -torch.inf
            if config.suppress_blank and step == 0:
                logits[:, blank] = -torch.inf
            next_tokens = logits.argmax(dim=-1)
            for row, (i, token) in enumerate(zip(active, next_tokens.tolist())):
                if finished[i]:
                    next_tokens[row] = eot
                elif token == eot:
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
    return sampled


def keep_rows_(states: torch.Tensor, rows: Sequence[int]) -> torch.Tensor:
    """The ``rows`` (ascending) of ``states`` moved to its front in place; returns the leading view.

    Dropping finished utterances this way copies only the rows behind the first dropped one into
    memory that is already mapped, where indexing would allocate a fresh copy of the whole cache
    (for 30-s windows every block's keys and values of 1500 frames per utterance, slow to fault in on CPU).

    Args:
        states: (batch, ...) a cache tensor owned by the caller.
        rows: the rows to keep, ascending.
    Returns:
        (len(rows), ...) a view of ``states``'s storage.
    """
    for new, old in enumerate(rows):  # old >= new: a row is read before anything overwrites it
        if old != new:
            states[new] = states[old]
    return states[: len(rows)]


def guard_cut_last(tokens: Sequence[int], seconds: float, guard: RepetitionGuard) -> int | None:
    """:func:`guard_cut` checked at the last position only (the earlier ones passed already)."""
    end = len(tokens)
    if end > guard.token_budget(seconds):
        return guard.token_budget(seconds)
    for n in range(1, guard.max_ngram + 1):
        span = n * (guard.max_repeats + 1)
        if end >= span and all(tokens[end - span + i] == tokens[end - n + i % n] for i in range(span - n)):
            return end - n * guard.max_repeats
    return None


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
    """Greedy transcription of batches of audio with a Whisper encoder and decoder."""

    def __init__(
        self,
        encoder: CSWhisperEncoder,
        decoder: CSWhisperDecoder,
        tokenizer: CSTokenizer,
        config: GreedyConfig = GreedyConfig(),
        device: str = "cpu",
    ) -> None:
        self.encoder = encoder.to(device).eval()
        self.decoder = decoder.to(device).eval()
        self.tokenizer = tokenizer
        self.config = config
        self.device = device

    @classmethod
    def from_model(
        cls, model: CSWhisperModel, config: GreedyConfig = GreedyConfig(), device: str = "cpu"
    ) -> Transcriber:
        """Decode with ``model``'s encoder, decoder and task tokens (e.g. ``CSWhisperModel.from_backbone(...)``)."""
        return cls(model.encoder, model.decoder, model.tokenizer, config, device)

    @classmethod
    def from_trained(
        cls, train_config: str, model_file: str, config: GreedyConfig = GreedyConfig(), device: str = "cpu"
    ) -> Transcriber:
        """A model trained by ``espnet_cs.bin.train`` (its prompts, adapters and padding; not its
        guidance loss, whose LID-head file decoding does not read)."""
        from espnet_cs.task import CSASRTask  # the task imports ESPnet's whole training stack

        model, _ = CSASRTask.build_inference_model(train_config, model_file, device)
        return cls.from_model(model, config, device)

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
            seconds = [len(audios[i]) / SAMPLE_RATE for i in rows.tolist()]
            group_memory = memory[rows.to(memory.device), : int(memory_lengths[rows[0]])]
            for i, tokens in zip(
                rows.tolist(), greedy_decode(self.decoder, group_memory, self.tokenizer, self.config, seconds)
            ):
                hyps[i] = Hypothesis.from_tokens(tokens, self.tokenizer)
        return hyps


def apply_guard(hypothesis: Hypothesis, seconds: float, guard: RepetitionGuard, tokenizer: CSTokenizer) -> Hypothesis:
    """The hypothesis greedy decoding would have produced with ``guard`` on (a prefix)."""
    cut = guard_cut(hypothesis.tokens, seconds, guard)
    return hypothesis if cut is None else Hypothesis.from_tokens(hypothesis.tokens[:cut], tokenizer)
