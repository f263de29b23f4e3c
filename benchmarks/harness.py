"""What every benchmark shares: its paths, the methods (``conf/tuning``), building a method's model,
measuring in a child process, the common options, and the JSON record of a run.

A benchmark is a module of this package run as ``python -m benchmarks.<name> [options]`` from the
repository root. It prints its tables in Markdown and, with ``--record [DIR]``, writes the run to
``DIR/<date>_<name>_<time>.json`` (default DIR: ``benchmarks/records``; :func:`report`); ``python -m
benchmarks.results`` turns the records of ``benchmarks/records`` into ``benchmarks/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import os
import platform
import shlex
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from espnet_cs.guidance.heads import LidHeads
from espnet_cs.methods import method_config, one_phase

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "benchmarks" / "work"  # synthesized audio, converted models, training runs (git-ignored)
RECORDS = ROOT / "benchmarks" / "records"
LID_HEADS = ROOT / "egs2" / "cs_bench" / "asr1" / "results_v1" / "lid_heads" / "lid_heads.json"  # of whisper-base
TEXT = "这个 project 的 deadline 是下个星期 我们 tomorrow 再 check 一下"  # a code-switched training target


def benchmark_methods() -> list[str]:
    """The methods trained from the backbone in one run: every one-phase YAML of ``conf/tuning``."""
    return [m.name for m in one_phase()]


def method_argument(name: str) -> str:
    """A ``--methods`` entry: a method of ``conf/tuning`` (a renamed one's error names its new name)."""
    try:
        method_config(name)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return name


def build(method: str, whisper_model: str, lid_heads: Path = LID_HEADS, **conf: dict):
    """``method``'s model as ``espnet_cs.bin.train`` builds it (:func:`espnet_cs.task.build_trainable_model`),
    in training mode, on ``whisper_model``; a guided method reads ``lid_heads``. ``conf`` updates the
    YAML's sections, e.g. ``encoder_conf={"activation_checkpointing": True}``."""
    from espnet_cs.task import CSASRTask, build_trainable_model

    args = CSASRTask.get_parser().parse_args(["--config", str(method_config(method)), "--whisper_model", whisper_model])
    for section, update in conf.items():
        setattr(args, section, {**getattr(args, section), **update})
    if "guidance" in args.model_conf:
        args.model_conf = {**args.model_conf, "guidance": {**args.model_conf["guidance"], "lid_heads": str(lid_heads)}}
    return build_trainable_model(args).train()


def stand_in_lid_heads(checkpoint: Path, n_layers: int, n_heads: int, path: Path) -> Path:
    """Write, at ``path``, an ``lid_heads.json`` for the Whisper checkpoint ``checkpoint`` that ranks
    every head of decoder layer 1: a stand-in where no LID heads were measured (random weights)."""
    LidHeads(
        backbone=str(checkpoint),
        backbone_sha256=hashlib.sha256(checkpoint.read_bytes()).hexdigest(),
        n_layers=n_layers,
        n_heads=n_heads,
        ranked=[(1, h) for h in range(n_heads)],
        counts=[[int(layer == 1)] * n_heads for layer in range(n_layers)],
        mean_lid_attention=[[0.5] * n_heads for _ in range(n_layers)],
        n_sentences=1,
        sentences_with_words=1,
        word_tokens=1,
        min_fraction=0.0,
        own_language_share=0.5,
    ).save(path)
    return path


def measure_in_child(module: str, argv: Sequence[str], env: dict[str, str] | None = None) -> dict:
    """Run ``python -m <module> <argv>`` (this repository's, in this working directory) and return the
    JSON object its last output line holds: a measurement in a fresh process (its own peak memory,
    allocator and threads). ``env``: the child's environment (default: this process's).

    Raises:
        RuntimeError: the child failed; the message holds the end of its error output.
    """
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    command = [sys.executable, "-m", module, *argv]
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode:
        raise RuntimeError(f"{shlex.join(command)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def common_options(parser: argparse.ArgumentParser, threads: int | None = 2) -> None:
    """The options of every benchmark that computes: ``--threads`` (default ``threads``; None:
    PyTorch's) and :func:`record_option`."""
    parser.add_argument("--threads", type=int, default=threads, help="PyTorch's CPU threads")
    record_option(parser)


def record_option(parser: argparse.ArgumentParser) -> None:
    """``--record [DIR]``: write the run's record (:func:`report`)."""
    parser.add_argument(
        "--record",
        nargs="?",
        type=Path,
        const=RECORDS,
        help=f"also write the run as a JSON record to this dir (without one: {RECORDS.relative_to(ROOT)})",
    )


def training_options(parser: argparse.ArgumentParser, batch: int, seconds: float) -> None:
    """The options of the benchmarks that time training steps of the methods."""
    parser.add_argument(
        "--methods", nargs="+", type=method_argument, default=benchmark_methods(), help="method YAMLs of conf/tuning"
    )
    parser.add_argument("--batch", type=int, default=batch)
    parser.add_argument("--seconds", type=float, default=seconds, help="length of every utterance")
    parser.add_argument("--steps", type=int, default=5, help="timed steps (the median is reported)")
    parser.add_argument("--warmup", type=int, default=2, help="steps before the timed ones")


@dataclass
class Table:
    """A table of a run: cells as printed."""

    columns: list[str]
    rows: list[list[str]] = field(default_factory=list)
    title: str = ""

    def markdown(self) -> str:
        lines = [self.title] if self.title else []
        lines.append("| " + " | ".join(self.columns) + " |")
        lines.append("|" + "---|" * len(self.columns))
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        return "\n".join(lines)


def machine(device: str = "cpu") -> str:
    """The CPU model and its cores, and the GPU on a ``cuda`` device."""
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        cpu = next((line.split(":", 1)[1].strip() for line in cpuinfo.open() if line.startswith("model name")), cpu)
    described = f"{cpu}, {os.cpu_count()} cores"
    if device.startswith("cuda"):
        import torch

        described = f"{torch.cuda.get_device_name(device)}; {described}"
    return described


def commit() -> str | None:
    """The checkout's commit (``+`` when it has uncommitted changes), None outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True)
    except FileNotFoundError:
        return None
    return head.stdout.strip() + ("+" if dirty.stdout.strip() else "") if head.returncode == 0 else None


def report(
    benchmark: str,
    setup: str,
    tables: Sequence[Table],
    record: Path | None,
    device: str = "cpu",
    argv: Sequence[str] | None = None,
    notes: Sequence[str] = (),
) -> Path | None:
    """Print ``setup`` (what was measured, how), ``tables`` and ``notes`` (what a reader of the tables
    needs to know); with a ``record`` dir, write them there as the run's record (:func:`write_record`)
    and return its path."""
    print(setup)
    for table in tables:
        print("\n" + table.markdown())
    for note in notes:
        print("\n" + note)
    if not record:
        return None
    argv = without_record(sys.argv[1:] if argv is None else argv)
    now = datetime.datetime.now(datetime.timezone.utc)
    run = {
        "benchmark": benchmark,
        "date": now.date().isoformat(),
        "machine": machine(device),
        "command": shlex.join(["python", "-m", f"benchmarks.{benchmark}", *argv]),
        "options": argv,
        "commit": commit(),
        "setup": setup,
        "tables": [asdict(t) for t in tables],
        "notes": list(notes),
    }
    return write_record(run, record / f"{run['date']}_{benchmark}_{now:%H%M%S}.json")


def without_record(argv: Sequence[str]) -> list[str]:
    """``argv`` without ``--record [DIR]``: the options that decide what is measured."""
    kept, skip = [], False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
        elif arg == "--record":
            skip = i + 1 < len(argv) and not argv[i + 1].startswith("-")
        elif not arg.startswith("--record="):
            kept.append(arg)
    return kept


def write_record(run: dict, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(run, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nrecorded: {path}")
    return path


def synchronize(device) -> None:
    """Wait for a CUDA device's queued work (timing); nothing on the CPU."""
    if device.type == "cuda":
        import torch

        torch.cuda.synchronize(device)
