"""Training cost per method, measured on a recipe's runs and projected to a larger corpus.

Reads every ``exp/*/checkpoint.pth`` of a recipe (ESPnet's reporter keeps each finished epoch's
training time) and the training set's ``speech_shape``, and prints per method: the fastest
recorded epoch (the least disturbed by other jobs on the machine), the throughput in hours of
audio per hour, and the projected time of ``--epochs`` epochs over ``--hours`` of audio on the
same machine. A projection, not a measurement: it assumes time grows linearly with audio
(true-length batches of similar lengths).

    tools/venv/bin/python benchmarks/projection.py egs2/mini_cs/asr1 [--hours 100 --epochs 10]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
import yaml


def training_audio_hours(config: dict, recipe: Path) -> float:
    """Hours of audio in the run's training shape file (samples at 16 kHz)."""
    (shape_file,) = config["train_shape_file"]
    path = Path(shape_file) if Path(shape_file).is_absolute() else recipe / shape_file
    samples = sum(int(line.split()[1].split(",")[0]) for line in path.read_text().splitlines() if line.strip())
    return samples / 16000 / 3600


def fastest_epoch_seconds(checkpoint: Path) -> tuple[float, int]:
    """The shortest training time of a finished epoch (no validation), and the number of epochs."""
    reporter = torch.load(checkpoint, map_location="cpu", weights_only=False)["reporter"]
    times = [stats["train"]["time"].total_seconds() for stats in reporter["stats"].values() if "time" in stats["train"]]
    return min(times), len(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", type=Path)
    parser.add_argument("--hours", type=float, default=100.0, help="audio of the projected corpus (SEAME: ~100 h)")
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args()
    print(
        f"Recorded epochs of {args.recipe}/exp (this machine, the fastest epoch of each run); projection: "
        f"{args.epochs} epochs of {args.hours:g} h of audio at the same throughput"
    )
    print("| run | epochs recorded | training audio (h) | fastest epoch (s) | audio h / h | projected (h) |")
    print("|---|---|---|---|---|---|")
    for checkpoint in sorted((args.recipe / "exp").glob("*/checkpoint.pth")):
        config = yaml.safe_load((checkpoint.parent / "config.yaml").read_text())
        hours = training_audio_hours(config, args.recipe)
        seconds, epochs = fastest_epoch_seconds(checkpoint)
        throughput = hours / (seconds / 3600)
        projected = args.hours * args.epochs / throughput
        print(
            f"| {checkpoint.parent.name} | {epochs} | {hours:.3f} | {seconds:.0f} | {throughput:.2f} | {projected:.0f} |"
        )


if __name__ == "__main__":
    main()
