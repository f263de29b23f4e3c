"""What greedy decoding and beam search share: the options, the token filters of each step, the
result of one search and openai-whisper's rule for picking among finished candidates."""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from espnet_cs.decoder import CSWhisperDecoder
from espnet_cs.loop_control import Fallback, RepetitionGuard, repeated_ngram_tokens
from espnet_cs.tokenizer import CSTokenizer


@dataclass(frozen=True)
class DecodingConfig:
    """Decoding options; the defaults are openai-whisper's greedy decoding.

    ``beam_size`` > 1 searches as openai-whisper's ``BeamSearchDecoder``: ``patience`` x
    ``beam_size`` finished candidates end an utterance's search, and the candidate with the
    highest log-probability divided by its length penalty wins (``length_penalty`` None: the
    length; else ``((5 + length) / 6) ** length_penalty``). Loop control, all off by default:
    ``guard`` (:class:`espnet_cs.loop_control.RepetitionGuard`), ``no_repeat_ngram_size`` (0: off)
    and ``fallback`` (:class:`espnet_cs.loop_control.Fallback`).
    """

    max_new_tokens: int | None = None  # default: the decoder's (half the text context, 224), as Whisper
    suppress_blank: bool = True
    suppress_tokens: bool = True
    guard: RepetitionGuard | None = None
    # Greedy decoding: drop utterances that ended from the batch and the key/value cache (the same
    # tokens; False decodes the whole batch to its longest hypothesis, as whisper.decode does).
    # Beam search always drops them.
    drop_finished: bool = True
    beam_size: int = 1
    patience: float | None = None
    length_penalty: float | None = None
    no_repeat_ngram_size: int = 0
    fallback: Fallback | None = field(default=None)

    def __post_init__(self) -> None:
        if self.beam_size < 1:
            raise ValueError(f"beam size must be >= 1 (1: greedy): got {self.beam_size}")
        if self.patience is not None and (self.beam_size == 1 or self.patience <= 0):
            raise ValueError(f"patience needs a beam size > 1 and must be > 0: got {self.patience}")
        if self.length_penalty is not None and not 0 <= self.length_penalty <= 1:
            raise ValueError(f"length penalty must lie in [0, 1]: got {self.length_penalty}")
        if self.no_repeat_ngram_size < 0:
            raise ValueError(f"no-repeat n-gram size must be >= 0 (0: off): got {self.no_repeat_ngram_size}")

    def settings(self) -> dict:
        """The options that differ from greedy decoding's, for a decode's ``decode_info.json``."""
        settings: dict = {}
        if self.beam_size > 1:
            settings.update(beam_size=self.beam_size, patience=self.patience or 1.0)
        if self.length_penalty is not None:
            settings["length_penalty"] = self.length_penalty
        if self.no_repeat_ngram_size:
            settings["no_repeat_ngram_size"] = self.no_repeat_ngram_size
        if self.fallback is not None:
            settings["fallback"] = {
                "temperatures": list(self.fallback.temperatures),
                "compression_ratio_threshold": self.fallback.compression_ratio_threshold,
                "logprob_threshold": self.fallback.logprob_threshold,
                "best_of": self.fallback.best_of,
                "seed": self.fallback.seed,
            }
        return settings


@dataclass(frozen=True)
class Decoded:
    """One searched token sequence: ``tokens`` (no task tokens, no end of text) and
    ``sum_logprob``, the log-probability of the tokens and the end of text under the filtered
    distributions (None where greedy decoding did not track it)."""

    tokens: list[int]
    sum_logprob: float | None = None

    @property
    def avg_logprob(self) -> float:
        """openai-whisper's ``avg_logprob``: per token, the end of text counted."""
        return self.sum_logprob / (len(self.tokens) + 1)


def best_candidate(candidates: Sequence[Decoded], length_penalty: float | None) -> Decoded:
    """openai-whisper's ``MaximumLikelihoodRanker``: the first candidate of the highest penalized log-probability."""

    def score(candidate: Decoded) -> float:
        length = len(candidate.tokens)
        penalty = length if length_penalty is None else ((5 + length) / 6) ** length_penalty
        return candidate.sum_logprob / (penalty or 1)  # an empty hypothesis: its log-probability

    return max(candidates, key=score)  # max keeps the first of equal scores, as argmax


def max_new_tokens(decoder: CSWhisperDecoder, tokenizer: CSTokenizer, config: DecodingConfig) -> int:
    """Tokens sampled at most: the configured or the decoder's number, within the text context."""
    limit = config.max_new_tokens or decoder.max_new_tokens
    return min(limit, decoder.n_ctx - decoder.soft_prompts.length - len(tokenizer.sot_sequence))


class TokenFilter:
    """The tokens a step may not sample: openai-whisper's suppressed tokens, blank and end of text
    at the first step, and tokens that would repeat an n-gram (``no_repeat_ngram_size``)."""

    def __init__(self, tokenizer: CSTokenizer, config: DecodingConfig, device: torch.device) -> None:
        self.suppress = torch.tensor(tokenizer.suppress_tokens, device=device) if config.suppress_tokens else None
        self.blank = torch.tensor(tokenizer.blank_tokens, device=device) if config.suppress_blank else None
        self.ngram = config.no_repeat_ngram_size

    def __call__(self, logits: torch.Tensor, step: int, histories: Sequence[Sequence[int]]) -> None:
        """Set the logits of forbidden tokens to -inf in place.

        Args:
            logits: (rows, vocab) of one step.
            step: tokens sampled before it.
            histories: the sampled tokens of each row.
        """
        if self.suppress is not None:
            logits[:, self.suppress] = -torch.inf
        if self.blank is not None and step == 0:
            logits[:, self.blank] = -torch.inf
        if self.ngram:
            for row, history in enumerate(histories):
                banned = repeated_ngram_tokens(history, self.ngram)
                if banned:
                    logits[row, sorted(banned)] = -torch.inf


def keep_rows_(states: torch.Tensor, rows: Sequence[int]) -> torch.Tensor:
    """The ``rows`` (ascending) of ``states`` moved to its front in place; returns the leading view.

    Dropping finished utterances this way copies only the rows behind the first dropped one into
    memory that is already mapped, where indexing would allocate a fresh copy of the whole cache
    (for 30-s windows about 35 MiB per utterance on Whisper-base, slow to fault in on CPU).

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


def decoding_memory_bytes(decoder: CSWhisperDecoder, config: DecodingConfig, batch_size: int, frames: int) -> int:
    """Estimated peak memory of decoding ``batch_size`` utterances of ``frames`` encoder states.

    Rows are utterances x beams (or x fallback candidates). Per row: the self-attention keys and
    values of a full text context, twice (a step concatenates a copy), and the step's logits and
    log-probabilities. Per utterance: the cross-attention keys and values (once per fallback
    candidate when sampling) and the encoder states.
    """
    element = next(decoder.parameters()).element_size()
    width = decoder.decoders.token_embedding.embedding_dim
    vocab = decoder.decoders.token_embedding.num_embeddings
    layers = len(decoder.decoders.blocks)
    best_of = config.fallback.best_of if config.fallback is not None else 1
    rows = batch_size * max(config.beam_size, best_of)
    self_attention = rows * 2 * layers * 2 * decoder.n_ctx * width * element
    logits = rows * 3 * vocab * 4
    cross_attention = batch_size * best_of * 2 * layers * frames * width * element
    return self_attention + logits + cross_attention + batch_size * frames * width * element


def free_memory_bytes(device: torch.device) -> int:
    """Memory free for tensors on ``device``: the GPU's free memory, or the host's available memory."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
