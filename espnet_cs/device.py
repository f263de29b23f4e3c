"""The ``--device`` of the tools that run a model (decoding, head statistics, attention analysis)."""

from __future__ import annotations

import torch


def checked_device(name: str) -> torch.device:
    """``name`` (``cpu``, ``cuda``, ``cuda:1``) as a device this machine has.

    Raises:
        ValueError: not a device name, or CUDA asked for where none is visible.
    """
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ValueError(f"--device {name!r}: not a device name (cpu, cuda, cuda:N)") from e
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {name}: no CUDA device is visible here (decode on the CPU: --device cpu)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) are visible")
    elif device.type != "cpu":
        raise ValueError(f"--device {name!r}: only cpu and cuda are supported")
    return device
