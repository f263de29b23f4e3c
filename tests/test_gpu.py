"""The GPU tier (``./test.sh -m gpu``): every method on CUDA against the CPU, decoding, head
statistics, the API and, with two GPUs, distributed training. Skipped where CUDA is absent.

Written on a CPU-only machine: see docs/gpu.md for how it runs on a bare CUDA machine.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from test_dtypes import METHODS, SECONDS, batch, build, data_dir, lid_heads, lid_heads_file  # noqa: F401 (fixtures)

from espnet_cs.decoding import GreedyConfig, Transcriber
from espnet_cs.guidance.analysis import collect

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device visible"),
]
CUDA = "cuda"


def precisions() -> list[str]:
    names = ["float32", "amp float16"]
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        names.append("amp bfloat16")
    return names


def steps(model, data: dict[str, torch.Tensor], precision: str, n: int = 2) -> list[float]:
    """``n`` AdamW steps on ``data`` (ESPnet's --use_amp: autocast and a gradient scaler); the losses."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    dtype = {"amp float16": torch.float16, "amp bfloat16": torch.bfloat16}.get(precision)
    scaler = torch.amp.GradScaler(CUDA, enabled=dtype == torch.float16)
    device = next(model.parameters()).device
    losses = []
    for _ in range(n):
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss, _, _ = model(**{k: v.to(device) for k, v in data.items()})
        optimizer.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        losses.append(float(loss))
    return losses


@pytest.mark.parametrize("precision", precisions())
@pytest.mark.parametrize("method", METHODS)
def test_two_training_steps_on_cuda_match_the_cpu(method, precision, tiny_whisper_path, lid_heads):  # noqa: F811
    cpu = build(method, tiny_whisper_path, lid_heads).train()
    gpu = copy.deepcopy(cpu).to(CUDA)
    frozen = {n: p.detach().clone() for n, p in cpu.named_parameters() if not p.requires_grad}
    data = batch(cpu, torch.float32)
    expected = steps(cpu, data, "float32")
    losses = steps(gpu, data, precision)
    assert all(np.isfinite(losses))
    tolerance = 1e-3 if precision == "float32" else 0.05
    np.testing.assert_allclose(losses, expected, rtol=tolerance, atol=tolerance)
    for name, parameter in gpu.named_parameters():
        if name in frozen:
            assert torch.equal(parameter.cpu(), frozen[name]), f"{name} changed"


@pytest.mark.parametrize("method", ["spt4asr", "lora", "adapter_ag", "fft"])
def test_greedy_decoding_on_cuda_gives_the_cpu_tokens(method, tiny_whisper_path, lid_heads):  # noqa: F811
    model = build(method, tiny_whisper_path, lid_heads).eval()
    rng = np.random.default_rng(1)
    audios = [(0.1 * rng.standard_normal(int(s * 16000))).astype(np.float32) for s in SECONDS]
    config = GreedyConfig(max_new_tokens=12)
    cpu = Transcriber.from_model(copy.deepcopy(model), config)(audios)
    gpu = Transcriber.from_model(model, config, CUDA)(audios)
    assert [h.tokens for h in gpu] == [h.tokens for h in cpu]


def test_head_statistics_on_cuda_equal_the_cpu_ones(tiny_whisper_path, lid_heads, data_dir):  # noqa: F811
    model = build("adapter", tiny_whisper_path, lid_heads).eval()
    cpu = collect(copy.deepcopy(model), data_dir, 2, {})
    gpu = collect(model.to(CUDA), data_dir, 2, {})
    assert torch.equal(gpu.counts, cpu.counts) and gpu.word_tokens == cpu.word_tokens
    torch.testing.assert_close(gpu.lid_attention(), cpu.lid_attention(), rtol=1e-4, atol=1e-4)
