"""Trainable parameters of every method (conf/tuning/*.yaml) for Whisper-base and Whisper-small (``--models all``: every size).

"share" is trainable / all parameters of the model (backbone + additions), as the papers give it.

Counted on models built by the training task from a weightless backbone on PyTorch's meta
device (``--whisper_model meta:<name>``, :func:`espnet_cs.backbone.load_whisper`): no weights are
loaded or allocated. Printed beside the SPT4ASR paper's figures for Whisper-small.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from espnet2.layers.create_adapter import create_adapter

from espnet_cs.backbone import META, WHISPER_SIZES
from espnet_cs.task import CSASRTask, freeze

# Trainable parameters the papers report for Whisper-small (millions).
PAPER_SMALL = {
    "spt_both": 0.20,
    "dpt": 1.39,
    "spt4asr": 3.74,
    "adapter": 14.3,
    "adapter_ag": 14.3,
    "adapter_ag_stage2": 14.3,
}
DEFAULT_CONF = Path(__file__).resolve().parents[2] / "conf" / "tuning"  # the one home of the method YAMLs


def count(config_file: Path, name: str) -> tuple[int, int]:
    """(trainable, total) parameters of the method YAML ``config_file`` on Whisper ``name``."""
    return count_args(CSASRTask.get_parser().parse_args(["--config", str(config_file)]), name)


def count_args(args: argparse.Namespace, name: str) -> tuple[int, int]:
    """(trainable, total) parameters of the model ``args`` configure (e.g. a run's config.yaml) on Whisper ``name``."""
    args = argparse.Namespace(**{**vars(args), "model_conf": dict(args.model_conf), "whisper_model": META + name})
    args.model_conf.pop("guidance", None)  # adds no parameters, and its LID heads may not exist yet
    with torch.device("meta"):
        model = CSASRTask.build_model(args)
        if getattr(args, "use_adapter", False):
            create_adapter(model, args.adapter, args.adapter_conf)
        freeze(model, args.freeze_param)  # as in training
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conf_dir", type=Path, default=DEFAULT_CONF, help="dir of the method YAMLs")
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
    for config_file in sorted(args.conf_dir.glob("*.yaml")):
        counts = [count(config_file, m) for m in args.models]
        cells = [config_file.stem]
        cells += [f"{t / 1e6:.3f}M" for t, _ in counts]
        cells += [f"{100 * t / n:.2f}%" for t, n in counts]
        paper = PAPER_SMALL.get(config_file.stem)
        cells.append(f"{paper:.2f}M" if paper else "—")
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
