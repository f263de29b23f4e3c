"""Training-step benchmark: median step time and peak memory of every method, as ratios to FFT.

Whisper-base, a batch of 8 four-second utterances, AdamW, on this machine's CPU. Each method
runs in its own process (so its peak resident memory is its own), built exactly as
``espnet_cs.bin.train`` builds it (the method's YAML, ESPnet's adapters, ``--freeze_param``).

    tools/venv/bin/python benchmarks/train_step.py [--methods spt4asr fft ...] [--steps 5] \
        [--activation_checkpointing]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

CONF = Path(__file__).resolve().parents[1] / "conf" / "tuning"
METHODS = ["fft", "fft_spt", "lora", "spt_enc", "spt_dec", "spt_both", "dpt", "respt", "lpt", "spt4asr"]
TEXT = "这个 project 的 deadline 是下个星期 我们 tomorrow 再 check 一下"


def measure(method: str, steps: int, warmup: int, batch: int, seconds: float, checkpointing: bool) -> dict:
    """Median seconds per optimizer step and peak resident memory of one method (this process)."""
    import torch
    from espnet2.layers.create_adapter import create_adapter

    from espnet_cs.task import CSASRTask, freeze

    torch.manual_seed(0)
    args = CSASRTask.get_parser().parse_args(["--config", str(CONF / f"{method}.yaml")])
    if checkpointing:
        args.encoder_conf = {**args.encoder_conf, "activation_checkpointing": True}
        args.decoder_conf = {**args.decoder_conf, "activation_checkpointing": True}
    model = CSASRTask.build_model(args)
    if args.use_adapter:
        create_adapter(model, args.adapter, args.adapter_conf)
    freeze(model, args.freeze_param)
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-6)
    samples = int(seconds * 16000)
    speech = 0.1 * torch.randn(batch, samples)
    text = torch.tensor([model.tokenizer.encode(TEXT)] * batch)
    lengths = {"speech_lengths": torch.full((batch,), samples), "text_lengths": torch.full((batch,), text.size(1))}
    times = []
    for step in range(warmup + steps):
        start = time.perf_counter()
        loss, _, _ = model(speech=speech, text=text, **lengths)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step >= warmup:
            times.append(time.perf_counter() - start)
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {
        "method": method,
        "step_seconds": statistics.median(times),
        "peak_mib": peak_kib / 1024,
        "trainable": trainable,
        "threads": torch.get_num_threads(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--methods", nargs="+", default=METHODS)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument(
        "--activation_checkpointing", action="store_true", help="recompute every block in the backward pass"
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)  # child process: measure this method
    args = parser.parse_args()
    if args.one:
        print(
            json.dumps(
                measure(args.one, args.steps, args.warmup, args.batch, args.seconds, args.activation_checkpointing)
            )
        )
        return

    methods = ["fft"] + [m for m in args.methods if m != "fft"]
    results = {}
    for method in methods:
        child = [
            sys.executable,
            __file__,
            "--one",
            method,
            "--steps",
            str(args.steps),
            "--warmup",
            str(args.warmup),
            "--batch",
            str(args.batch),
            "--seconds",
            str(args.seconds),
            *(["--activation_checkpointing"] if args.activation_checkpointing else []),
        ]
        output = subprocess.run(child, check=True, capture_output=True, text=True).stdout
        results[method] = json.loads(output.strip().splitlines()[-1])
        print(f"measured {method}: {results[method]['step_seconds']:.2f} s/step", file=sys.stderr)

    fft = results["fft"]
    print(
        f"Whisper-base, batch {args.batch} x {args.seconds:.0f}-s utterances, true length, AdamW, "
        f"CPU, {fft['threads']} threads; median of {args.steps} steps after {args.warmup} warm-up steps"
        + ("; activation checkpointing of every block" if args.activation_checkpointing else "")
    )
    print("| method | trainable | step (s) | step / FFT | peak memory (MiB) | memory / FFT |")
    print("|---|---|---|---|---|---|")
    for method, r in results.items():
        print(
            f"| {method} | {r['trainable'] / 1e6:.3f}M | {r['step_seconds']:.2f} | {r['step_seconds'] / fft['step_seconds']:.2f} "
            f"| {r['peak_mib']:.0f} | {r['peak_mib'] / fft['peak_mib']:.2f} |"
        )


if __name__ == "__main__":
    main()
