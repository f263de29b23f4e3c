"""Loop control while decoding: the repetition guard, no-repeat n-gram blocking and openai-whisper's
temperature fallback (its ``transcribe``'s rule: re-decode a hypothesis that compresses too well or
is too improbable at rising temperatures)."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from whisper.utils import compression_ratio


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


def repeated_ngram_tokens(tokens: Sequence[int], size: int) -> set[int]:
    """Tokens that would repeat an n-gram of ``size`` already in ``tokens`` (transformers' ``no_repeat_ngram_size``).

    The last ``size - 1`` tokens are the n-gram's beginning; every token that followed that
    beginning before is blocked.
    """
    start = len(tokens) - size + 1
    if start < 0:
        return set()
    prefix = list(tokens[start:])
    return {tokens[i + size - 1] for i in range(start) if list(tokens[i : i + size - 1]) == prefix}


@dataclass(frozen=True)
class Fallback:
    """openai-whisper's temperature fallback (its ``transcribe`` defaults).

    A hypothesis whose text's gzip compression ratio exceeds ``compression_ratio_threshold`` or
    whose average log-probability (end of text included) is below ``logprob_threshold`` is decoded
    again by sampling ``best_of`` candidates at the next of ``temperatures``, keeping the most
    probable; the last temperature's result stands. Sampling is seeded by ``seed``, the audio and
    the temperature, so a rerun (and any batching) gives the same hypotheses.
    """

    temperatures: tuple[float, ...] = (0.2, 0.4, 0.6, 0.8, 1.0)
    compression_ratio_threshold: float | None = 2.4
    logprob_threshold: float | None = -1.0
    best_of: int = 5
    seed: int = 0

    def __post_init__(self) -> None:
        if not self.temperatures or any(t <= 0 for t in self.temperatures):
            raise ValueError(
                f"fallback temperatures must be positive (the first decode is at 0): got {list(self.temperatures)}"
            )
        if self.best_of < 1:
            raise ValueError(f"best_of must be >= 1: got {self.best_of}")

    def needs_fallback(self, text: str, avg_logprob: float) -> bool:
        """True if a hypothesis with ``text`` and ``avg_logprob`` is decoded again."""
        too_repetitive = (
            self.compression_ratio_threshold is not None and compression_ratio(text) > self.compression_ratio_threshold
        )
        too_improbable = self.logprob_threshold is not None and avg_logprob < self.logprob_threshold
        return too_repetitive or too_improbable

    def seed_of(self, audio_digest: bytes, temperature: float, candidate: int) -> int:
        """The sampling seed of one candidate of one audio (sha256 of its samples) at ``temperature``."""
        key = f"{self.seed}:{temperature!r}:{candidate}:".encode() + audio_digest
        return int.from_bytes(hashlib.sha256(key).digest()[:8], "little") & (2**63 - 1)
