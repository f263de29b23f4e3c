"""The GPU tier (``./test.sh -m gpu``): every method on CUDA against the CPU, decoding, head
statistics, the attention analysis, a packed model through the API and, with two GPUs,
distributed training. Skipped where CUDA is absent.

Written on a CPU-only machine: see docs/gpu.md for how it runs on a bare CUDA machine.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from test_dtypes import METHODS, SECONDS, batch, build, data_dir, lid_heads, lid_heads_file  # noqa: F401 (fixtures)
from test_parallel import free_port
from test_training import train_args

from espnet_cs.api import Speech2Text
from espnet_cs.attention_analysis import collect_head_statistics
from espnet_cs.bin import attention_report, decode, select_heads
from espnet_cs.decoding import DecodingConfig, Transcriber
from espnet_cs.kaldi_dir import read_kaldi_map, write_kaldi_map
from espnet_cs.packing import pack_model
from espnet_cs.task import CSASRTask

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


def steps(
    model, data: dict[str, torch.Tensor], precision: str, n: int = 3, apply: list[bool] | None = None
) -> tuple[list[float], list[bool]]:
    """``n`` AdamW steps on ``data`` as ESPnet's trainer takes them with --use_amp (autocast and a
    gradient scaler, which skips a float16 step whose gradients overflow and halves its scale).

    ``apply`` (the reference run): take the optimizer step only where it is true.
    Returns the losses and, for each step, whether the optimizer step was taken.
    """
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    dtype = {"amp float16": torch.float16, "amp bfloat16": torch.bfloat16}.get(precision)
    scaler = torch.amp.GradScaler(CUDA, enabled=dtype == torch.float16)
    device = next(model.parameters()).device
    losses, applied = [], []
    for i in range(n):
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            loss, _, _ = model(**{k: v.to(device) for k, v in data.items()})
        optimizer.zero_grad()
        scale = scaler.get_scale()
        scaler.scale(loss).backward()
        if apply is None or apply[i]:
            scaler.step(optimizer)
            scaler.update()
        applied.append(apply[i] if apply is not None else scaler.get_scale() >= scale)
        losses.append(loss.item())
    return losses, applied


@pytest.mark.parametrize("precision", precisions())
@pytest.mark.parametrize("method", METHODS)
def test_training_steps_on_cuda_match_the_cpu(method, precision, tiny_whisper_path, lid_heads):  # noqa: F811
    """The CPU reference (float32) takes the optimizer steps the GPU's gradient scaler took."""
    cpu = build(method, tiny_whisper_path, lid_heads).train()
    gpu = copy.deepcopy(cpu).to(CUDA)
    frozen = {n: p.detach().clone() for n, p in cpu.named_parameters() if not p.requires_grad}
    data = batch(cpu, torch.float32)
    # float16: the scaler starts at 2**16 and halves it at each overflow, so the first steps may be skipped
    losses, applied = steps(gpu, data, precision, n=6 if precision == "amp float16" else 3)
    expected, _ = steps(cpu, data, "float32", n=len(applied), apply=applied)
    assert all(np.isfinite(losses))
    assert any(applied[:-1]), f"the gradient scaler skipped every step: {applied}"
    if precision != "amp float16":
        assert all(applied)
    tolerance = 1e-3 if precision == "float32" else 0.05
    np.testing.assert_allclose(losses, expected, rtol=tolerance, atol=tolerance)
    for name, parameter in gpu.named_parameters():
        if name in frozen:
            assert torch.equal(parameter.cpu(), frozen[name]), f"{name} changed"


@pytest.mark.parametrize("beam_size", [1, 3])
@pytest.mark.parametrize("method", ["spt4asr", "lora", "adapter_ag", "fft"])
def test_decoding_on_cuda_gives_the_cpu_tokens(method, beam_size, tiny_whisper_path, lid_heads):  # noqa: F811
    """Greedy decoding and beam search."""
    model = build(method, tiny_whisper_path, lid_heads).eval()
    rng = np.random.default_rng(1)
    audios = [(0.1 * rng.standard_normal(int(s * 16000))).astype(np.float32) for s in SECONDS]
    config = DecodingConfig(max_new_tokens=12, beam_size=beam_size)
    cpu = Transcriber.from_model(copy.deepcopy(model), config)(audios)
    gpu = Transcriber.from_model(model, config, CUDA)(audios)
    assert [h.tokens for h in gpu] == [h.tokens for h in cpu]


def test_head_statistics_on_cuda_equal_the_cpu_ones(tiny_whisper_path, lid_heads, data_dir):  # noqa: F811
    model = build("adapter", tiny_whisper_path, lid_heads).eval()
    cpu = collect_head_statistics(copy.deepcopy(model), data_dir, 2, {})
    gpu = collect_head_statistics(model.to(CUDA), data_dir, 2, {})
    assert torch.equal(gpu.counts, cpu.counts) and gpu.word_tokens == cpu.word_tokens
    torch.testing.assert_close(gpu.lid_attention(), cpu.lid_attention(), rtol=1e-4, atol=1e-4)


@pytest.fixture(scope="module")
def stage2_dir(data_dir) -> Path:  # noqa: F811
    """``data_dir`` with what stage 2 writes beside it: shapes, categories and the sha256 of each
    utterance's 16-bit samples (which decoding and head selection check)."""
    wavs = read_kaldi_map(data_dir / "wav.scp")
    write_kaldi_map(data_dir / "speech_shape", {u: str(sf.info(p).frames) for u, p in wavs.items()})
    write_kaldi_map(data_dir / "utt2category", {u: "cs" for u in wavs})
    digests = {u: hashlib.sha256(sf.read(p, dtype="int16")[0].tobytes()).hexdigest() for u, p in wavs.items()}
    write_kaldi_map(data_dir / "utt2sha256", digests)
    return data_dir


@pytest.fixture(scope="module")
def trained(tiny_whisper_path, stage2_dir, tmp_path_factory) -> Path:
    """SPT4ASR trained for one epoch on ``stage2_dir`` on the CPU: its exp dir, with ``spt4asr.zip``."""
    exp = tmp_path_factory.mktemp("spt4asr")
    CSASRTask.main(cmd=train_args("spt4asr", tiny_whisper_path, stage2_dir, exp, "--max_epoch", "1"))
    pack_model(exp, "valid.loss.ave.pth", exp / "spt4asr.zip")
    return exp


def test_packed_model_decodes_on_cuda_as_on_the_cpu(trained, data_dir):  # noqa: F811
    decoding = DecodingConfig(max_new_tokens=12)
    cpu = Speech2Text.from_pretrained(trained / "spt4asr.zip", decoding=decoding)
    gpu = Speech2Text.from_pretrained(trained / "spt4asr.zip", decoding=decoding, device=CUDA)
    audios = list(read_kaldi_map(data_dir / "wav.scp").values())
    assert [gpu(a).tokens for a in audios] == [cpu(a).tokens for a in audios]


def test_attention_report_on_cuda_equals_the_cpu(trained, tiny_whisper_path, lid_heads, data_dir, tmp_path):  # noqa: F811
    for out, device in (("cpu", "cpu"), ("gpu", CUDA)):
        attention_report.main(
            [
                *("--data_dir", str(data_dir), "--lid_heads", str(lid_heads), "--selection", "all"),
                *("--system", "backbone", "--system", f"spt4asr={trained}"),
                *("--whisper_model", str(tiny_whisper_path), "--out_dir", str(tmp_path / out), "--device", device),
            ]
        )
    cpu, gpu = (json.loads((tmp_path / d / "attention.json").read_text())["systems"] for d in ("cpu", "gpu"))
    assert gpu.keys() == cpu.keys() == {"backbone", "spt4asr"}
    for name, values in cpu.items():
        assert gpu[name]["pairs"] == values["pairs"] > 0
        assert gpu[name]["own_language"] == pytest.approx(values["own_language"], abs=1e-6)


@pytest.mark.parametrize("system", ["zero-shot", "spt4asr"])
def test_decode_tool_on_cuda_writes_the_cpu_tokens(system, trained, tiny_whisper_path, stage2_dir, tmp_path):
    """Stages 3 (zero-shot) and 8 (a trained model): ``bin/decode --device cuda`` as on the CPU."""
    model = (
        ["--whisper_model", str(tiny_whisper_path)]
        if system == "zero-shot"
        else [
            "--asr_train_config",
            str(trained / "config.yaml"),
            "--asr_model_file",
            str(trained / "valid.loss.ave.pth"),
        ]
    )
    for out, device in (("cpu", "cpu"), ("gpu", CUDA)):
        decode.main(["--data_dir", str(stage2_dir), "--out_dir", str(tmp_path / out), "--device", device, *model])
    cpu, gpu = (read_kaldi_map(tmp_path / d / "token") for d in ("cpu", "gpu"))
    assert gpu == cpu and cpu.keys() == read_kaldi_map(stage2_dir / "wav.scp").keys()


def test_select_heads_tool_on_cuda_selects_the_cpu_heads(tiny_whisper_path, stage2_dir, tmp_path):
    """Stage 4: ``bin/select_heads --device cuda`` counts and ranks the heads as on the CPU."""
    for out, device in (("cpu", "cpu"), ("gpu", CUDA)):
        select_heads.main(
            [
                *("--data_dir", str(stage2_dir), "--out_dir", str(tmp_path / out), "--device", device),
                *("--whisper_model", str(tiny_whisper_path), "--min_fraction", "0"),
            ]
        )
    cpu, gpu = (json.loads((tmp_path / d / "lid_heads.json").read_text()) for d in ("cpu", "gpu"))
    attention = "mean_lid_attention"  # float sums in another order: equal to float32 rounding
    np.testing.assert_allclose(gpu.pop(attention), cpu.pop(attention), rtol=1e-5, atol=1e-5)
    assert gpu == cpu


@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs")
def test_training_under_ddp_on_two_gpus(trained, tiny_whisper_path, data_dir, tmp_path):  # noqa: F811
    """Two processes, one GPU each (NCCL), launched by torchrun as ESPnet's launcher does."""
    args = train_args("spt_enc", tiny_whisper_path, data_dir, tmp_path / "exp", "--max_epoch", "1")
    args[args.index("--ngpu") + 1] = "1"
    args += ["--multiprocessing_distributed", "false", "--dist_backend", "nccl"]
    torchrun = Path(sys.executable).parent / "torchrun"
    result = subprocess.run(
        [str(torchrun), "--nproc_per_node", "2", "--master_port", str(free_port()), "-m", "espnet_cs.bin.train", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    checkpoint = torch.load(tmp_path / "exp/valid.loss.ave.pth", map_location="cpu", weights_only=False)
    assert sorted(checkpoint) == ["backbone_sha256", "encoder.soft_prompts.vectors"]
