"""Speech to text with the Whisper encoder and decoder classes: batches of 16-kHz audio in, text out."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch
from whisper.audio import N_SAMPLES

from espnet_cs.decoder import WhisperCSDecoder
from espnet_cs.decoding import GreedyConfig, greedy_decode, guard_cut, RepetitionGuard
from espnet_cs.encoder import WhisperCSEncoder
from espnet_cs.tokenizer import CSTokenizer, Language

SAMPLE_RATE = 16000


@dataclass
class Hypothesis:
    """One decoded utterance."""

    tokens: list[int]
    text: str
    languages: list[Language]

    @classmethod
    def from_tokens(cls, tokens: Sequence[int], tokenizer: CSTokenizer) -> "Hypothesis":
        tokens = list(tokens)
        return cls(tokens, tokenizer.decode(tokens), tokenizer.language_tags(tokens))


class Transcriber:
    """Greedy transcription of batches of audio with a Whisper encoder and decoder."""

    def __init__(
        self,
        encoder: WhisperCSEncoder,
        decoder: WhisperCSDecoder,
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
    def from_backbone(
        cls,
        whisper_model: str = "whisper-base",
        prompt: str = "cs",
        pad_to_30s: bool = True,
        config: GreedyConfig = GreedyConfig(),
        device: str = "cpu",
        cache_dir: Optional[str] = None,
    ) -> "Transcriber":
        """The zero-shot backbone, nothing added."""
        encoder = WhisperCSEncoder(whisper_model=whisper_model, pad_to_30s=pad_to_30s, cache_dir=cache_dir)
        tokenizer = CSTokenizer.for_vocab(encoder.backbone_identity.dims["n_vocab"], prompt)
        decoder = WhisperCSDecoder(
            tokenizer.vocab_size, encoder.output_size(), whisper_model=whisper_model, cache_dir=cache_dir
        )
        return cls(encoder, decoder, tokenizer, config, device)

    @classmethod
    def from_trained(
        cls, train_config: str, model_file: str, config: GreedyConfig = GreedyConfig(), device: str = "cpu"
    ) -> "Transcriber":
        """A model trained by ``espnet_cs.bin.train`` (its prompts, adapters and padding)."""
        from espnet_cs.task import CSASRTask  # the task imports ESPnet's whole training stack

        model, _ = CSASRTask.build_model_from_file(train_config, model_file, device)
        return cls(model.encoder, model.decoder, model.tokenizer, config, device)

    @torch.no_grad()
    def __call__(self, audios: Sequence[np.ndarray]) -> list[Hypothesis]:
        """Transcribe a batch.

        Whisper's encoder has no padding mask, so padding changes its output. On true length
        each utterance is padded to its next whole second, and only utterances of the same padded
        length share an encoder pass: a hypothesis then does not depend on its batch mates (nor
        on --batch_size or --nj).

        Args:
            audios: 1-D float arrays of 16-kHz audio, each at most 30 s.
        Returns:
            one hypothesis per audio, in order.
        """
        padded = [self.padded_samples(len(a)) for a in audios]
        hyps: list[Optional[Hypothesis]] = [None] * len(audios)
        for width in sorted(set(padded)):
            group = [i for i, p in enumerate(padded) if p == width]
            speech = torch.zeros(len(group), width)
            for row, i in enumerate(group):
                speech[row, : len(audios[i])] = torch.as_tensor(audios[i], dtype=torch.float32)
            lengths = torch.full((len(group),), width)
            memory, _, _ = self.encoder(speech.to(self.device), lengths.to(self.device))
            seconds = [len(audios[i]) / SAMPLE_RATE for i in group]
            for i, tokens in zip(group, greedy_decode(self.decoder, memory, self.tokenizer, self.config, seconds)):
                hyps[i] = Hypothesis.from_tokens(tokens, self.tokenizer)
        return hyps

    def padded_samples(self, samples: int) -> int:
        """Samples an utterance of ``samples`` is padded to: Whisper's window, or its next whole second."""
        if self.encoder.pad_to_30s:
            return N_SAMPLES
        return min(N_SAMPLES, max(1, math.ceil(samples / SAMPLE_RATE)) * SAMPLE_RATE)


def apply_guard(hypothesis: Hypothesis, seconds: float, guard: RepetitionGuard, tokenizer: CSTokenizer) -> Hypothesis:
    """The hypothesis greedy decoding would have produced with ``guard`` on (a prefix)."""
    cut = guard_cut(hypothesis.tokens, seconds, guard)
    return hypothesis if cut is None else Hypothesis.from_tokens(hypothesis.tokens[:cut], tokenizer)
