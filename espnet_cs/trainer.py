"""ESPnet's ``Trainer`` with a resume that survives a kill in the middle of saving an epoch.

ESPnet saves ``checkpoint.pth`` and then ``<N>epoch.pth`` with plain ``torch.save``. A job killed
between the two (a Slurm time limit, a preemption) leaves ``checkpoint.pth`` saying epoch N is
done and ``<N>epoch.pth`` truncated or missing; ESPnet's resume does not look at it, and the
averaging at the end of training then fails on the broken file. Both files hold the same model
state, so the epoch file is rewritten from the checkpoint before resuming: nothing is lost.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import torch
from espnet2.train.trainer import Trainer


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read."""


def load_checkpoint(path: Path) -> dict[str, Any]:
    """``torch.load`` of an ESPnet checkpoint, with an error naming a truncated file."""
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except (EOFError, RuntimeError, OSError) as error:
        raise CheckpointError(
            f"{path} cannot be read ({error}); the run was probably killed while saving it. "
            f"Remove it to restart training from the beginning, or point --output_dir elsewhere"
        ) from error


def restore_epoch_file(output_dir: Path) -> None:
    """Rewrite ``<N>epoch.pth`` from ``checkpoint.pth`` when it is missing or unreadable."""
    checkpoint = load_checkpoint(output_dir / "checkpoint.pth")
    epoch = checkpoint["reporter"]["epoch"]
    epoch_file = output_dir / f"{epoch}epoch.pth"
    if epoch_file.exists():
        try:
            torch.load(epoch_file, map_location="cpu")
            return
        except (EOFError, RuntimeError):
            pass
    logging.warning("%s is missing or truncated: rewriting it from checkpoint.pth", epoch_file)
    tmp = epoch_file.with_name(f".{epoch_file.name}.{os.getpid()}")
    torch.save(checkpoint["model"], tmp)
    os.replace(tmp, epoch_file)


class CSTrainer(Trainer):
    """ESPnet's trainer; resuming first restores the epoch file an interrupted save broke."""

    @staticmethod
    def resume(checkpoint: str | Path, *args: Any, **kwargs: Any) -> None:
        restore_epoch_file(Path(checkpoint).parent)
        Trainer.resume(checkpoint, *args, **kwargs)
