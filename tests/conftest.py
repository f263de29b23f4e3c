"""Shared fixtures: a tiny random-initialized multilingual Whisper saved as an openai-whisper checkpoint; noise audio batches."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
import whisper

TINY_DIMS = whisper.model.ModelDimensions(
    n_mels=80,
    n_audio_ctx=1500,
    n_audio_state=64,
    n_audio_head=4,
    n_audio_layer=2,
    n_vocab=51865,
    n_text_ctx=448,
    n_text_state=64,
    n_text_head=4,
    n_text_layer=2,
)


def make_tiny_whisper(seed: int = 0) -> whisper.model.Whisper:
    """A multilingual Whisper with tiny widths, its weights scaled so that greedy decoding samples
    varied text tokens (special tokens get zero embeddings, so they never win the argmax)."""
    torch.manual_seed(seed)
    model = whisper.model.Whisper(TINY_DIMS)
    with torch.no_grad():
        model.decoder.positional_embedding.normal_(std=1.0)
        model.decoder.token_embedding.weight.normal_(std=0.5)
        model.decoder.token_embedding.weight[50257:] = 0
    return model.eval()


@pytest.fixture(scope="session")
def tiny_whisper_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Path of a tiny Whisper checkpoint (``{"dims", "model_state_dict"}``)."""
    path = tmp_path_factory.mktemp("tiny_whisper") / "tiny.pt"
    model = make_tiny_whisper()
    torch.save({"dims": asdict(model.dims), "model_state_dict": model.state_dict()}, path)
    return path


def audio_batch(seconds=(1.3, 2.0)):
    rng = np.random.default_rng(0)
    return [(0.1 * rng.standard_normal(int(s * 16000))).astype(np.float32) for s in seconds]


def padded(audios):
    """(batch, samples) padded with noise, which the encoder must ignore, and the lengths."""
    lengths = torch.tensor([len(a) for a in audios])
    speech = torch.randn(len(audios), int(lengths.max()))
    for i, a in enumerate(audios):
        speech[i, : len(a)] = torch.from_numpy(a)
    return speech, lengths
