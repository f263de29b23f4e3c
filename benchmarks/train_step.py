"""Training-step benchmark: median step time and peak memory of every method, as ratios to FFT.

Whisper-base, a batch of 8 four-second utterances, AdamW, on this machine's CPU. Each method
runs in its own process (so its peak resident memory is its own), built exactly as
``espnet_cs.bin.train`` builds it (the method's YAML, ESPnet's adapters, ``--freeze_param``).
Memory is reported whole (the process's peak resident size) and split: the resident size once the
model, the optimizer and the batch exist (runtime and backbone, alike for every method), and what
the steps add above it (gradients, optimizer state, saved activations), from Linux's ``VmHWM``
reset after the build.

    python -m benchmarks.train_step [--methods spt4asr fft ...] [--steps 5] [--record] \
        [--activation_checkpointing] [--return_freed_memory] [--allocators glibc tcmalloc]

``--allocators`` measures each method once per malloc (others preloaded with the settings
``path.sh`` gives them, :func:`espnet_cs.host_memory.preload_environment`), alternating, and adds a
table of each against the first.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from benchmarks.harness import LID_HEADS, TEXT, Table, build, common_options, measure_in_child, report, training_options
from espnet_cs.host_memory import PRELOADABLE_ALLOCATORS, allocator_in_use, environment_for


def status_mib(field: str) -> float:
    """A memory line of ``/proc/self/status`` (``VmRSS``: resident now, ``VmHWM``: its peak) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field} line")


def reset_peak() -> None:
    """Start the resident-memory peak (``VmHWM``) afresh from the current resident size (Linux)."""
    Path("/proc/self/clear_refs").write_text("5")


def measure(method: str, options: argparse.Namespace) -> dict:
    """Median seconds per optimizer step and resident memory of one method (this process): the whole
    process's peak, the resident size once model, optimizer and batch exist (the backbone and the
    runtime), and the peak during the steps above that (what training adds)."""
    import torch

    from espnet_cs.host_memory import fix_mmap_threshold
    from espnet_cs.methods import methods

    if options.return_freed_memory:
        fix_mmap_threshold()
    if options.threads:
        torch.set_num_threads(options.threads)
    torch.manual_seed(0)
    conf = {}
    if options.activation_checkpointing:
        conf["encoder_conf"] = {"activation_checkpointing": True}
        if not methods()[method].guided:  # guidance reads attention the recomputation would not capture
            conf["decoder_conf"] = {"activation_checkpointing": True}
    model = build(method, "whisper-base", options.lid_heads, **conf)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-6)
    batch, samples = options.batch, int(options.seconds * 16000)
    speech = 0.1 * torch.randn(batch, samples)
    text = torch.tensor([model.tokenizer.encode(TEXT)] * batch)
    lengths = {"speech_lengths": torch.full((batch,), samples), "text_lengths": torch.full((batch,), text.size(1))}
    built_mib, build_peak_mib = status_mib("VmRSS"), status_mib("VmHWM")
    reset_peak()
    times = []
    for step in range(options.warmup + options.steps):
        start = time.perf_counter()
        loss, _, _ = model(speech=speech, text=text, **lengths)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step >= options.warmup:
            times.append(time.perf_counter() - start)
    training_peak_mib = status_mib("VmHWM")
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {
        "method": method,
        "step_seconds": statistics.median(times),
        "built_mib": built_mib,
        "peak_mib": max(training_peak_mib, build_peak_mib),
        "added_mib": training_peak_mib - built_mib,
        "trainable": trainable,
        "threads": torch.get_num_threads(),
        "allocator": allocator_in_use(),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_options(parser, threads=None)
    training_options(parser, batch=8, seconds=4.0)
    parser.add_argument(
        "--activation_checkpointing", action="store_true", help="recompute every block in the backward pass"
    )
    parser.add_argument(
        "--return_freed_memory",
        action="store_true",
        help="fix glibc's mmap threshold as espnet_cs.bin.train --return_freed_memory true does",
    )
    parser.add_argument(
        "--lid_heads", type=Path, default=LID_HEADS, help="the LID heads of methods with guidance (adapter_ag)"
    )
    parser.add_argument(
        "--allocators",
        nargs="+",
        choices=["glibc", *PRELOADABLE_ALLOCATORS],
        default=["glibc"],
        help="malloc of the measured processes (others preloaded); ratios against the first's FFT",
    )
    parser.add_argument("--one", help=argparse.SUPPRESS)  # child process: measure this method
    argv = sys.argv[1:] if argv is None else argv
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.one, args)))
        return

    methods = ["fft"] + [m for m in args.methods if m != "fft"]
    results: dict[str, dict[str, dict]] = {allocator: {} for allocator in args.allocators}
    for method in methods:  # allocators alternate per method, so drift of the machine touches each alike
        for allocator in args.allocators:
            results[allocator][method] = measure_with(allocator, method, argv)
            print(
                f"measured {method} ({allocator}): {results[allocator][method]['step_seconds']:.2f} s/step",
                file=sys.stderr,
            )

    fft = results[args.allocators[0]]["fft"]
    setup = (
        f"Whisper-base, batch {args.batch} x {args.seconds:.0f}-s utterances, true length, AdamW, "
        f"CPU, {fft['threads']} threads; median of {args.steps} steps after {args.warmup} warm-up steps"
        + (
            "; activation checkpointing of every block (the encoder's only with guidance)"
            if args.activation_checkpointing
            else ""
        )
        + ("; --return_freed_memory (glibc's mmap threshold fixed at 1 MiB)" if args.return_freed_memory else "")
    )
    tables = [method_table(allocator, table) for allocator, table in results.items()]
    if len(args.allocators) > 1:
        tables.append(allocator_ratios(results))
    report("train_step", setup, tables, args.record, argv=argv)


def measure_with(allocator: str, method: str, argv: list[str]) -> dict:
    """:func:`measure` in a fresh process whose malloc is ``allocator``'s (preloaded unless glibc)."""
    result = measure_in_child("benchmarks.train_step", ["--one", method, *argv], environment_for(allocator))
    if result["allocator"] != allocator:
        raise RuntimeError(f"{method}: asked for {allocator}'s malloc, the child ran {result['allocator']}'s")
    return result


def method_table(allocator: str, results: dict[str, dict]) -> Table:
    """One allocator's results, every ratio against its own FFT."""
    fft = results["fft"]
    table = Table(
        [
            "method", "trainable", "step (s)", "step / FFT", "peak memory (MiB)", "memory / FFT",
            "resident before the steps (MiB)", "added by training (MiB)", "added / FFT",
        ],
        title=f"malloc: {allocator}",
    )  # fmt: skip
    for method, r in results.items():
        table.rows.append(
            [
                method, f"{r['trainable'] / 1e6:.3f}M", f"{r['step_seconds']:.2f}",
                f"{r['step_seconds'] / fft['step_seconds']:.2f}", f"{r['peak_mib']:.0f}",
                f"{r['peak_mib'] / fft['peak_mib']:.2f}", f"{r['built_mib']:.0f}", f"{r['added_mib']:.0f}",
                f"{r['added_mib'] / fft['added_mib']:.2f}",
            ]
        )  # fmt: skip
    return table


def allocator_ratios(results: dict[str, dict[str, dict]]) -> Table:
    """Each further allocator against the first, per method, and against the first one's FFT
    (what a user who keeps FFT on the default malloc would compare with)."""
    first, *others = results
    table = Table(
        ["method", "malloc", "step / same method's", "peak / same method's", "step / FFT's", "peak / FFT's"],
        title=f"against {first}",
    )
    base_fft = results[first]["fft"]
    for method, base in results[first].items():
        for allocator in others:
            r = results[allocator][method]
            table.rows.append(
                [
                    method, allocator, f"{r['step_seconds'] / base['step_seconds']:.2f}",
                    f"{r['peak_mib'] / base['peak_mib']:.2f}", f"{r['step_seconds'] / base_fft['step_seconds']:.2f}",
                    f"{r['peak_mib'] / base_fft['peak_mib']:.2f}",
                ]
            )  # fmt: skip
    return table


if __name__ == "__main__":
    main()
