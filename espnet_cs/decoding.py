"""Batched greedy decoding with a key/value cache, as openai-whisper decodes, plus a repetition guard.

With ``suppress_blank`` and ``suppress_tokens`` on (the defaults, as in openai-whisper) and no
guard, the tokens equal ``whisper.decode`` with ``temperature=0`` and the same prompt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch

from espnet_cs.decoder import WhisperCSDecoder
from espnet_cs.tokenizer import CSTokenizer


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


def guard_cut(tokens: Sequence[int], seconds: float, guard: RepetitionGuard) -> Optional[int]:
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

    max_new_tokens: Optional[int] = None  # default: half the text context (224), as Whisper
    suppress_blank: bool = True
    suppress_tokens: bool = True
    guard: Optional[RepetitionGuard] = None


@torch.no_grad()
def greedy_decode(
    decoder: WhisperCSDecoder,
    memory: torch.Tensor,
    tokenizer: CSTokenizer,
    config: GreedyConfig = GreedyConfig(),
    seconds: Optional[Sequence[float]] = None,
) -> list[list[int]]:
    """Decode a batch greedily.

    Args:
        decoder: the text decoder.
        memory: (batch, frames, d_model) encoder states.
        tokenizer: gives the prompt and the suppressed tokens.
        config: options; a guard needs ``seconds``.
        seconds: (batch,) audio durations, for the guard's token budget.
    Returns:
        the sampled tokens of each utterance, without prompt and end of text.
    """
    if config.guard is not None and seconds is None:
        raise ValueError("the repetition guard needs the audio durations")
    batch = memory.size(0)
    prompt = torch.tensor(tokenizer.sot_sequence, device=memory.device).repeat(batch, 1)
    max_new = config.max_new_tokens or decoder.n_ctx // 2
    max_new = min(max_new, decoder.n_ctx - prompt.size(1))
    eot = tokenizer.eot
    suppress = torch.tensor(tokenizer.suppress_tokens, device=memory.device)
    blank = torch.tensor(tokenizer.blank_tokens, device=memory.device)

    sampled: list[list[int]] = [[] for _ in range(batch)]
    finished = torch.zeros(batch, dtype=torch.bool, device=memory.device)
    tokens = prompt
    with decoder.kv_cache() as cache:
        for step in range(max_new):
            logits = decoder.logits(tokens, memory, cache)[:, -1]
            if config.suppress_tokens:
                logits[:, suppress] = -torch.inf
            if config.suppress_blank and step == 0:
                logits[:, blank] = -torch.inf
            next_tokens = logits.argmax(dim=-1)
            next_tokens[finished] = eot
            for i in torch.nonzero(~finished).flatten().tolist():
                token = int(next_tokens[i])
                if token == eot:
                    finished[i] = True
                    continue
                sampled[i].append(token)
                if config.guard is not None:
                    cut = guard_cut_last(sampled[i], seconds[i], config.guard)
                    if cut is not None:
                        del sampled[i][cut:]
                        finished[i] = True
            if bool(finished.all()):
                break
            tokens = next_tokens[:, None]
    return sampled


def guard_cut_last(tokens: Sequence[int], seconds: float, guard: RepetitionGuard) -> Optional[int]:
    """:func:`guard_cut` checked at the last position only (the earlier ones passed already)."""
    end = len(tokens)
    if end > guard.token_budget(seconds):
        return guard.token_budget(seconds)
    for n in range(1, guard.max_ngram + 1):
        span = n * (guard.max_repeats + 1)
        if end >= span and all(
            tokens[end - span + i] == tokens[end - n + i % n] for i in range(span - n)
        ):
            return end - n * guard.max_repeats
    return None
