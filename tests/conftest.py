"""Shared fixtures: a tiny random-initialized multilingual Whisper saved as an openai-whisper checkpoint."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import pytest
import torch
import whisper

TINY_DIMS = whisper.model.ModelDimensions(
    n_mels=80, n_audio_ctx=1500, n_audio_state=64, n_audio_head=4, n_audio_layer=2,
    n_vocab=51865, n_text_ctx=448, n_text_state=64, n_text_head=4, n_text_layer=2,
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
