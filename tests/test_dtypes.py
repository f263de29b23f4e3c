"""Every method in float64 and under bfloat16 autocast, on a CPU: training, decoding, head statistics.

A tensor made with a fixed dtype or device inside a forward, loss or decoding path (a float32
constant, a ``.float()`` cast) fails here or silently runs part of the model in float32; hooks on
the last encoder and decoder blocks check that the model computes in the dtype it was given.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import whisper

from benchmarks.harness import stand_in_lid_heads
from espnet_cs.attention_analysis import attention_passes, collect_head_statistics
from espnet_cs.decoding import DecodingConfig, Transcriber
from espnet_cs.model import CSWhisperModel
from espnet_cs.task import CSASRTask, build_trainable_model

CONF = Path(__file__).resolve().parents[1] / "conf" / "tuning"
METHODS = [
    "spt_enc",
    "spt_dec",
    "spt_both",
    "dpt",
    "respt",
    "lpt",
    "spt4asr",
    "lora",
    "fft",
    "fft_spt",
    "adapter",
    "adapter_ag",
]
TEXTS = ["这个 project 的 deadline", "can you 帮我 check 一下"]
SECONDS = (1.0, 1.3)
BF16 = "bf16 autocast"


def lid_heads_file(whisper_path: Path, directory: Path) -> Path:
    """An ``lid_heads.json`` ranking every head of decoder layer 1 of the checkpoint at ``whisper_path``."""
    dims = torch.load(whisper_path)["dims"]
    return stand_in_lid_heads(whisper_path, dims["n_text_layer"], dims["n_text_head"], directory / "lid_heads.json")


def build(method: str, whisper_path: Path, lid_heads: Path) -> CSWhisperModel:
    """The model training builds for ``method`` (LoRA added, backbone frozen as its YAML says)."""
    argv = ["--config", str(CONF / f"{method}.yaml"), "--whisper_model", str(whisper_path)]
    if method == "adapter_ag":
        argv += ["--model_conf", f"{{guidance: {{lid_heads: {lid_heads}, weight: 1.0, target: 0.5}}}}"]
    args = CSASRTask.get_parser().parse_args(argv)
    return build_trainable_model(args)


def batch(model: CSWhisperModel, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """Two noise utterances of ``SECONDS`` as ``dtype`` audio, with code-switched targets."""
    rng = np.random.default_rng(0)
    lengths = torch.tensor([int(s * 16000) for s in SECONDS])
    speech = torch.from_numpy(0.1 * rng.standard_normal((len(SECONDS), int(lengths.max())))).to(dtype)
    ids = [model.tokenizer.encode_target(t) for t in TEXTS]
    text = torch.full((len(ids), max(map(len, ids))), -1)
    for i, t in enumerate(ids):
        text[i, : len(t)] = torch.tensor(t)
    return {
        "speech": speech,
        "speech_lengths": lengths,
        "text": text,
        "text_lengths": torch.tensor(list(map(len, ids))),
    }


@contextmanager
def block_dtypes(model: CSWhisperModel) -> Iterator[dict[str, torch.dtype]]:
    """Record the output dtype of the last encoder block's and the last decoder block's feed-forward
    (a block whose prompt positions go unread runs its sublayers, not its own forward)."""
    seen: dict[str, torch.dtype] = {}
    blocks = {"encoder": model.encoder.encoders.blocks[-1].mlp, "decoder": model.decoder.decoders.blocks[-1].mlp}
    hooks = [
        block.register_forward_hook(lambda _m, _a, out, name=name: seen.__setitem__(name, out.dtype))
        for name, block in blocks.items()
    ]
    try:
        yield seen
    finally:
        for hook in hooks:
            hook.remove()


def to_float64(model: CSWhisperModel) -> CSWhisperModel:
    """``model`` in float64, openai-whisper's LayerNorms aside: they normalize ``x.float()`` whatever
    ``x`` is (made for float16 models) and cast the result back, so their weights stay float32."""
    model.double()
    for module in model.modules():
        if isinstance(module, whisper.model.LayerNorm):
            module.float()
    return model


def precision(name: str) -> tuple[torch.dtype, object]:
    """(dtype the blocks must compute in, the context to run in) of ``float64`` or bf16 autocast."""
    if name == BF16:
        return torch.bfloat16, torch.autocast("cpu", dtype=torch.bfloat16)
    return torch.float64, nullcontext()


@pytest.fixture(scope="module")
def lid_heads(tiny_whisper_path, tmp_path_factory) -> Path:
    return lid_heads_file(tiny_whisper_path, tmp_path_factory.mktemp("heads"))


@pytest.fixture(scope="module")
def models(tiny_whisper_path, lid_heads) -> dict[str, CSWhisperModel]:
    """Each method's float32 model, built once (tests change copies)."""
    return {method: build(method, tiny_whisper_path, lid_heads) for method in METHODS}


@pytest.mark.parametrize("name", ["float64", BF16])
@pytest.mark.parametrize("method", METHODS)
def test_training_step(method, name, models):
    reference = models[method]
    with torch.no_grad():
        loss32, stats32, _ = reference(**batch(reference, torch.float32))
    model = copy.deepcopy(reference).train()
    dtype, context = precision(name)
    if dtype == torch.float64:
        to_float64(model)
    with block_dtypes(model) as seen, context:
        loss, stats, _ = model(**batch(model, torch.float64 if dtype == torch.float64 else torch.float32))
    loss.backward()

    assert seen == {"encoder": dtype, "decoder": dtype}, "a block computed in another dtype"
    losses = [loss] + ([stats["loss_guidance"]] if method == "adapter_ag" else [])
    assert {x.dtype for x in losses} == {torch.promote_types(dtype, torch.float32)}, "a loss lost precision"
    tolerance = 1e-4 if dtype == torch.float64 else 0.05
    torch.testing.assert_close(loss.float(), loss32, rtol=tolerance, atol=tolerance)
    if method == "adapter_ag":
        assert stats["loss_guidance"] > 0
        torch.testing.assert_close(stats["loss_guidance"].float(), stats32["loss_guidance"], rtol=tolerance, atol=1e-3)
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert trainable and all(p.grad is not None and torch.isfinite(p.grad).all() for p in trainable)
    assert any(p.grad.abs().sum() > 0 for p in trainable)


@pytest.mark.parametrize("name", ["float64", BF16])
@pytest.mark.parametrize("method", METHODS)
def test_greedy_decoding(method, name, models):
    config = DecodingConfig(max_new_tokens=6)
    rng = np.random.default_rng(1)
    audios = [(0.1 * rng.standard_normal(int(s * 16000))).astype(np.float32) for s in SECONDS]
    expected = Transcriber.from_model(models[method], config)(audios)
    model = copy.deepcopy(models[method])
    dtype, context = precision(name)
    if dtype == torch.float64:
        to_float64(model)
    with block_dtypes(model) as seen, context:
        hyps = Transcriber.from_model(model, config)(audios)
    assert seen == {"encoder": dtype, "decoder": dtype}, "a block computed in another dtype"
    assert [len(h.tokens) for h in hyps] == [6, 6]
    if dtype == torch.float64:
        assert [h.tokens for h in hyps] == [h.tokens for h in expected]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(2)
    wavs, texts = [], []
    for i, (seconds, text) in enumerate(zip(SECONDS, TEXTS)):
        sf.write(root / f"u{i}.wav", (0.1 * rng.standard_normal(int(seconds * 16000))).astype(np.float32), 16000)
        wavs.append(f"u{i} {root / f'u{i}.wav'}")
        texts.append(f"u{i} {text}")
    (root / "wav.scp").write_text("\n".join(wavs) + "\n")
    (root / "text").write_text("\n".join(texts) + "\n", encoding="utf-8")
    return root


def test_head_statistics_in_float64(tiny_whisper_path, data_dir):
    model = CSWhisperModel.from_backbone(str(tiny_whisper_path), pad_to_30s=False)
    expected = collect_head_statistics(model, data_dir, batch_size=2, settings={})
    to_float64(model)
    (attention, _, _), *_ = attention_passes(model, data_dir, batch_size=2)
    assert {a.dtype for a in attention.values()} == {torch.float64}
    stats = collect_head_statistics(model, data_dir, batch_size=2, settings={})
    assert stats.batch_lid_attention.dtype == torch.float64
    assert torch.equal(stats.counts, expected.counts) and stats.word_tokens == expected.word_tokens > 0
    torch.testing.assert_close(stats.lid_attention(), expected.lid_attention(), rtol=1e-5, atol=1e-6)
