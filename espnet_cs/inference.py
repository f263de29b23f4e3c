"""Speech to text with the Whisper encoder and decoder classes: batches of 16-kHz audio in, text out."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import torch
from whisper.audio import SAMPLE_RATE

from espnet_cs.decoder import WhisperCSDecoder
from espnet_cs.decoding import GreedyConfig, greedy_decode, guard_cut, RepetitionGuard
from espnet_cs.encoder import WhisperCSEncoder, equal_length_groups
from espnet_cs.tokenizer import CSTokenizer, Language


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
        """Transcribe a batch; a hypothesis does not depend on its batch mates (nor on --batch_size or --nj).

        The encoder pads each utterance by its padding policy
        (:meth:`espnet_cs.encoder.WhisperCSEncoder.padded_samples`), and utterances whose encoder
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
        hyps: list[Optional[Hypothesis]] = [None] * len(audios)
        for rows in equal_length_groups(memory_lengths.cpu()):
            seconds = [len(audios[i]) / SAMPLE_RATE for i in rows.tolist()]
            group_memory = memory[rows.to(memory.device), : int(memory_lengths[rows[0]])]
            for i, tokens in zip(rows.tolist(), greedy_decode(self.decoder, group_memory, self.tokenizer, self.config, seconds)):
                hyps[i] = Hypothesis.from_tokens(tokens, self.tokenizer)
        return hyps


def apply_guard(hypothesis: Hypothesis, seconds: float, guard: RepetitionGuard, tokenizer: CSTokenizer) -> Hypothesis:
    """The hypothesis greedy decoding would have produced with ``guard`` on (a prefix)."""
    cut = guard_cut(hypothesis.tokens, seconds, guard)
    return hypothesis if cut is None else Hypothesis.from_tokens(hypothesis.tokens[:cut], tokenizer)
