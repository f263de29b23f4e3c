"""transformers Whisper checkpoints as backbones: converted by espnet_cs.backbone.hf_format, loaded by espnet_cs.backbone."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import TINY_DIMS
from transformers import WhisperForConditionalGeneration
from whisper.audio import N_SAMPLES

from espnet_cs.backbone import load_whisper
from espnet_cs.backbone.hf_format import HuggingFaceFormatError, transformers_config
from espnet_cs.decoding import DecodingConfig, Transcriber
from espnet_cs.model import CSWhisperModel


@pytest.fixture(scope="module")
def hf_dir(tmp_path_factory) -> tuple[Path, WhisperForConditionalGeneration]:
    """A random transformers Whisper saved with save_pretrained (safetensors), and the model itself."""
    torch.manual_seed(0)
    model = WhisperForConditionalGeneration(transformers_config(TINY_DIMS)).eval()
    with torch.no_grad():  # varied greedy text: position and token embeddings of weight as in conftest
        model.model.decoder.embed_positions.weight.normal_(std=1.0)
        model.model.decoder.embed_tokens.weight.normal_(std=0.5)
        model.model.decoder.embed_tokens.weight[50257:] = 0
    directory = tmp_path_factory.mktemp("hf") / "whisper-tiny-cs"
    model.save_pretrained(directory)
    return directory, model


def test_logits_equal_those_of_transformers(hf_dir, tmp_path):
    directory, hf = hf_dir
    model, identity = load_whisper(str(directory), cache_dir=tmp_path)
    assert identity.dims == asdict(TINY_DIMS)
    mel = torch.randn(1, TINY_DIMS.n_mels, 2 * TINY_DIMS.n_audio_ctx)
    tokens = torch.tensor([[50258, 50260, 50259, 50359, 50363, 220, 1000, 2000]])
    with torch.no_grad():
        ours = model(mel, tokens)
        theirs = hf(input_features=mel, decoder_input_ids=tokens).logits
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)
    assert ours.abs().max() > 1  # not a degenerate comparison


def test_greedy_decoding_equals_that_of_transformers(hf_dir, tmp_path):
    directory, hf = hf_dir
    transcriber = Transcriber.from_model(
        CSWhisperModel.from_backbone(str(directory), "zh_en", True, str(tmp_path)),
        DecodingConfig(max_new_tokens=12, suppress_blank=False, suppress_tokens=False),
    )
    audio = (0.1 * np.random.default_rng(0).standard_normal(16000)).astype(np.float32)
    (hyp,) = transcriber([audio])
    # transformers' own forward, greedily, from the same task tokens and mel
    tokens = torch.tensor([list(transcriber.tokenizer.sot_sequence)])
    mel = transcriber.encoder.log_mel(torch.from_numpy(audio)[None], torch.tensor([16000]), N_SAMPLES)
    with torch.no_grad():
        for _ in range(len(hyp.tokens)):
            logits = hf(input_features=mel, decoder_input_ids=tokens).logits[0, -1]
            tokens = torch.cat([tokens, logits.argmax()[None, None]], dim=1)
    assert tokens[0, len(transcriber.tokenizer.sot_sequence) :].tolist() == list(hyp.tokens)
    assert len(hyp.tokens) > 3


def test_conversion_is_cached_and_keyed_on_the_weights(hf_dir, tmp_path):
    directory, _ = hf_dir
    _, first = load_whisper(str(directory), cache_dir=tmp_path)
    cached = sorted(p.name for p in tmp_path.iterdir())
    assert len(cached) == 2 and cached[0].startswith("hf-") and cached[0].endswith(".pt")
    _, again = load_whisper(str(directory), cache_dir=tmp_path)
    assert again.sha256 == first.sha256


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda d: (d / "model.safetensors").unlink(), r"but none of \['model.safetensors'"),
        (lambda d: (d / "model.safetensors").write_bytes(b"not safetensors"), "cannot be read as the weights"),
        (
            lambda d: (d / "config.json").write_text(json.dumps({"model_type": "bert"})),
            "model_type 'bert', not 'whisper'",
        ),
    ],
)
def test_damaged_directories_name_the_file(hf_dir, tmp_path, damage, message):
    source, _ = hf_dir
    directory = tmp_path / "copy"
    directory.mkdir()
    for path in source.iterdir():
        (directory / path.name).write_bytes(path.read_bytes())
    damage(directory)
    with pytest.raises(HuggingFaceFormatError, match=message) as error:
        load_whisper(str(directory), cache_dir=tmp_path / "cache")
    assert str(directory) in str(error.value)


def test_missing_and_foreign_tensors_are_named(hf_dir, tmp_path):
    from safetensors.torch import load_file, save_file

    source, _ = hf_dir
    for edit, message in (
        (lambda t: t.pop("model.encoder.layers.1.fc2.weight"), r"missing .*encoder.blocks.1.mlp.2.weight"),
        (lambda t: t.update({"model.encoder.adapter.weight": torch.zeros(1)}), "model.encoder.adapter.weight"),
    ):
        directory = tmp_path / f"edit{len(list(tmp_path.iterdir()))}"
        directory.mkdir()
        (directory / "config.json").write_bytes((source / "config.json").read_bytes())
        tensors = load_file(source / "model.safetensors")
        edit(tensors)
        save_file(tensors, directory / "model.safetensors")
        with pytest.raises(HuggingFaceFormatError, match=message):
            load_whisper(str(directory), cache_dir=tmp_path / "cache")
