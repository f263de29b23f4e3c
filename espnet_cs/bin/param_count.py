"""Trainable parameters of every method (conf/tuning/*.yaml) for Whisper-base and Whisper-small (``--models all``: every size).

"share" is trainable / all parameters of the model (backbone + additions), as the papers give it.

Counted on models built by the training task from a weightless backbone on PyTorch's meta
device (``--whisper_model meta:<name>``, :func:`espnet_cs.backbone.load_whisper`): no weights are
loaded or allocated. Printed beside the papers' figures for Whisper-small (each YAML's ``paper_trainable``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from espnet_cs.backbone import WHISPER_SIZES
from espnet_cs.methods import CONF, methods
from espnet_cs.task import CSASRTask, count_trainable


def count(config_file: Path, name: str) -> tuple[int, int]:
    """(trainable, total) parameters of the method YAML ``config_file`` on Whisper ``name``."""
    return count_trainable(CSASRTask.get_parser().parse_args(["--config", str(config_file)]), name)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conf_dir", type=Path, default=CONF, help="dir of the method YAMLs")
    parser.add_argument(
        "--models", nargs="+", default=["base", "small"], help=f"Whisper sizes; all: {' '.join(WHISPER_SIZES)}"
    )
    args = parser.parse_args(argv)
    if args.models == ["all"]:
        args.models = list(WHISPER_SIZES)

    header = (
        ["method"] + [f"{m} trainable" for m in args.models] + [f"{m} share" for m in args.models] + ["paper (small)"]
    )
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for method in methods(args.conf_dir).values():
        counts = [count(method.config, m) for m in args.models]
        cells = [method.name]
        cells += [f"{t / 1e6:.3f}M" for t, _ in counts]
        cells += [f"{100 * t / n:.2f}%" for t, n in counts]
        cells.append(f"{method.paper_trainable:.2f}M" if method.paper_trainable else "—")
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
