"""Training and decoding cost per method, measured on a recipe's runs and projected to a larger corpus.

Two sources of measured runs:

- ``recipe`` (positional): every ``exp/*/checkpoint.pth`` of a recipe (ESPnet's reporter keeps each
  finished epoch's training time) and the training set's ``speech_shape``; per run the fastest
  recorded epoch (the least disturbed by other jobs on the machine);
- ``--archive DIR``: a results archive (``espnet_cs.results_archive``, cs_bench's ``results_v1/``):
  each system's ``training.json`` (training and validation seconds of its whole run) with
  ``--passes`` passes over the recipe's training set, and each ``decode_<set>/decode_info.json``
  (decoding seconds of every set, summed over its jobs), for how decoding grows with the number
  and length of utterances.

For training it prints the throughput in hours of audio per hour and the projected time of
``--epochs`` epochs over ``--hours`` of audio on the same machine. A projection, not a measurement:
it assumes time grows linearly with audio (true-length batches of similar lengths).

    python -m benchmarks.projection egs2/mini_cs/asr1 [--hours 100 --epochs 10] [--record]
    python -m benchmarks.projection egs2/cs_bench/asr1 --archive egs2/cs_bench/asr1/results_v1
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from benchmarks.harness import Table, record_option, report
from espnet_cs.config_yaml import load_yaml

SAMPLE_RATE = 16000


def shape_file_hours(path: Path) -> float:
    """Hours of audio in an ESPnet shape file (``utt samples[,...]`` at 16 kHz)."""
    samples = sum(int(line.split()[1].split(",")[0]) for line in path.read_text().splitlines() if line.strip())
    return samples / SAMPLE_RATE / 3600


def training_audio_hours(config: dict, recipe: Path) -> float:
    """Hours of audio in the run's training shape file."""
    (shape_file,) = config["train_shape_file"]
    path = Path(shape_file) if Path(shape_file).is_absolute() else recipe / shape_file
    return shape_file_hours(path)


def fastest_epoch_seconds(checkpoint: Path) -> tuple[float, int]:
    """The shortest training time of a finished epoch (no validation), and the number of epochs."""
    reporter = torch.load(checkpoint, map_location="cpu", weights_only=False)["reporter"]
    times = [stats["train"]["time"].total_seconds() for stats in reporter["stats"].values() if "time" in stats["train"]]
    return min(times), len(times)


def projected_hours(audio_hours: float, seconds: float, hours: float, epochs: int) -> tuple[float, float]:
    """(throughput in audio hours per hour, projected hours of ``epochs`` epochs of ``hours`` of audio)."""
    throughput = audio_hours / (seconds / 3600)
    return throughput, hours * epochs / throughput


def exp_rows(recipe: Path, hours: float, epochs: int) -> tuple[str, list[Table], list[str]]:
    """(setup, the table of the recipe's runs, no notes)."""
    setup = (
        f"Recorded epochs of {recipe}/exp (this machine, the fastest epoch of each run); projection: "
        f"{epochs} epochs of {hours:g} h of audio at the same throughput"
    )
    table = Table(["run", "epochs recorded", "training audio (h)", "fastest epoch (s)", "audio h / h", "projected (h)"])
    for checkpoint in sorted((recipe / "exp").glob("*/checkpoint.pth")):
        audio = training_audio_hours(load_yaml(checkpoint.parent / "config.yaml"), recipe)
        seconds, recorded = fastest_epoch_seconds(checkpoint)
        throughput, projected = projected_hours(audio, seconds, hours, epochs)
        table.rows.append(
            [
                checkpoint.parent.name, str(recorded), f"{audio:.3f}", f"{seconds:.0f}", f"{throughput:.2f}",
                f"{projected:.0f}",
            ]
        )  # fmt: skip
    return setup, [table], []


def archive_rows(
    archive: Path, recipe: Path, passes: float, hours: float, epochs: int
) -> tuple[str, list[Table], list[str]]:
    """(setup, the tables of the archived trainings and decodings, the sets' sizes)."""
    audio = passes * shape_file_hours(recipe / "dump" / "raw" / "train" / "speech_shape")
    trainings = {
        d.name: json.loads((d / "training.json").read_text())
        for d in sorted(archive.iterdir())
        if (d / "training.json").is_file() and not d.name.endswith("_guard")  # a guard system shares its training
    }
    trainings = {name: run for name, run in trainings.items() if run.get("seconds")}  # zero-shot trains nothing
    fft = trainings.get("fft")
    setup = (
        f"Trainings archived in {archive} ({passes:g} pass(es) over {recipe}'s training set, {audio:.3f} h of audio; "
        f"training and validation seconds of the whole run); projection: {epochs} epochs of {hours:g} h of audio "
        "at the same throughput"
    )
    training = Table(["system", "trainable", "epochs", "seconds", "/ fft", "audio h / h", "projected (h)"])
    for name, run in trainings.items():
        throughput, projected = projected_hours(audio, run["seconds"], hours, epochs)
        ratio = f"{run['seconds'] / fft['seconds']:.2f}" if fft else "—"
        training.rows.append(
            [
                f"`{name}`", f"{run['trainable'] / 1e6:.3f}M", str(run["epochs"]), str(run["seconds"]), ratio,
                f"{throughput:.2f}", f"{projected:.0f}",
            ]
        )  # fmt: skip
    infos = sorted(archive.glob("*/decode_*/decode_info.json"))
    sets = sorted({p.parent.name.removeprefix("decode_") for p in infos})
    decoding = Table(
        ["system", "padding", *(f"{s}: s (RTF)" for s in sets)],
        title=(
            f"Decodings archived in {archive}: seconds summed over the decoding jobs, per set (utterances, their "
            "mean length), for how decoding time grows with the number and length of utterances"
        ),
    )
    by_system: dict[str, dict[str, dict]] = {}
    for path in infos:
        by_system.setdefault(path.parents[1].name, {})[path.parent.name.removeprefix("decode_")] = json.loads(
            path.read_text()
        )
    for name, decodes in by_system.items():
        if name.endswith("_guard"):
            continue
        padding = "30 s" if next(iter(decodes.values())).get("pad_to_30s") else "true length"
        cells = [
            f"{d['decode_seconds']:.0f} ({d['real_time_factor']:.3f})" if (d := decodes.get(s)) else "—" for s in sets
        ]
        decoding.rows.append([f"`{name}`", padding, *cells])
    any_info = {s: json.loads(next(p for p in infos if p.parent.name == f"decode_{s}").read_text()) for s in sets}
    sizes = "Sets: " + "; ".join(
        f"{s}: {i['utterances']} utterances, {i['audio_seconds'] / i['utterances']:.1f} s each on average"
        for s, i in any_info.items()
    )
    return setup, [training, decoding], [sizes]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    record_option(parser)
    parser.add_argument("recipe", type=Path)
    parser.add_argument("--archive", type=Path, help="project from this results archive instead of recipe/exp")
    parser.add_argument("--passes", type=float, default=1.0, help="passes over the training set of each archived run")
    parser.add_argument("--hours", type=float, default=100.0, help="audio of the projected corpus (SEAME: ~100 h)")
    parser.add_argument("--epochs", type=int, default=10)
    args = parser.parse_args(argv)
    if args.archive:
        setup, tables, notes = archive_rows(args.archive, args.recipe, args.passes, args.hours, args.epochs)
    else:
        setup, tables, notes = exp_rows(args.recipe, args.hours, args.epochs)
    report("projection", setup, tables, args.record, argv=argv, notes=notes)


if __name__ == "__main__":
    main()
