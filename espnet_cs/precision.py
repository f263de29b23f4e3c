"""The one dtype rule of the forward, loss and decoding paths: compute in the model's dtype, reduce in at least float32.

A model may run in float32, float64 or under autocast (bfloat16, float16). Tensors a path creates
take dtype and device from its inputs; softmaxes and logits that must not lose precision are
:func:`widened`, which leaves float32 and float64 as they are (float32 results stay bit-identical).
"""

from __future__ import annotations

import torch


def widened(x: torch.Tensor) -> torch.Tensor:
    """``x`` as float32 if its floating dtype is narrower (bfloat16, float16), else ``x`` itself (float32, float64)."""
    return x.to(torch.promote_types(x.dtype, torch.float32))
