"""Trainable parameters of every method (conf/tuning/*.yaml) for Whisper-base and Whisper-small.

"share" is trainable / all parameters of the model (backbone + additions), as the papers give it.

Counted on models built from ``whisper.model.ModelDimensions`` on PyTorch's meta device: no
weights are loaded or allocated. Printed beside the SPT4ASR paper's figures for Whisper-small.
"""

from __future__ import annotations

import argparse
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional
from unittest import mock

import torch
from espnet2.layers.create_adapter import create_adapter
from whisper.model import AudioEncoder, TextDecoder

from espnet_cs import decoder, encoder
from espnet_cs.backbone import BackboneIdentity, whisper_dims
from espnet_cs.task import CSASRTask, freeze

# Trainable parameters the papers report for Whisper-small (millions).
PAPER_SMALL = {"spt_both": 0.20, "dpt": 1.39, "spt4asr": 3.74, "adapter": 14.3, "adapter_ag": 14.3, "adapter_ag_stage2": 14.3}
DEFAULT_CONF = Path(__file__).resolve().parents[2] / "egs2" / "mini_cs" / "asr1" / "conf" / "tuning"


class _MetaWhisper(torch.nn.Module):
    """Whisper's encoder and decoder built on the meta device (``Whisper()`` itself cannot be)."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.dims = whisper_dims(name)
        d = self.dims
        with torch.device("meta"):
            self.encoder = AudioEncoder(d.n_mels, d.n_audio_ctx, d.n_audio_state, d.n_audio_head, d.n_audio_layer)
            self.decoder = TextDecoder(d.n_vocab, d.n_text_ctx, d.n_text_state, d.n_text_head, d.n_text_layer)


@contextmanager
def meta_backbone(name: str) -> Iterator[None]:
    """Make the encoder/decoder classes load a weightless Whisper ``name``."""
    def load(spec: str, **_: object) -> tuple[_MetaWhisper, BackboneIdentity]:
        model = _MetaWhisper(name)
        return model, BackboneIdentity(spec, "0" * 64, vars(model.dims))

    with mock.patch.object(encoder, "load_whisper", load), mock.patch.object(decoder, "load_whisper", load), \
            torch.device("meta"):
        yield


def count(config_file: Path, name: str) -> tuple[int, int]:
    """(trainable, total) parameters of the method YAML ``config_file`` on Whisper ``name``."""
    return count_args(CSASRTask.get_parser().parse_args(["--config", str(config_file), "--whisper_model", name]), name)


def count_args(args: argparse.Namespace, name: str) -> tuple[int, int]:
    """(trainable, total) parameters of the model ``args`` configure (e.g. a run's config.yaml) on Whisper ``name``."""
    args = argparse.Namespace(**{**vars(args), "model_conf": dict(args.model_conf)})
    args.model_conf.pop("guidance", None)  # adds no parameters, and its head selection may not exist yet
    with meta_backbone(name):
        model = CSASRTask.build_model(args)
        if getattr(args, "use_adapter", False):
            create_adapter(model, args.adapter, args.adapter_conf)
        freeze(model, args.freeze_param)  # as in training
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())


def main(argv: Optional[list[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--conf_dir", type=Path, default=DEFAULT_CONF, help="dir of the method YAMLs")
    parser.add_argument("--models", nargs="+", default=["base", "small"])
    args = parser.parse_args(argv)

    header = ["method"] + [f"{m} trainable" for m in args.models] + [f"{m} share" for m in args.models] + ["paper (small)"]
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
