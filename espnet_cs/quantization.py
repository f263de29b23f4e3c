"""Opt-in int8 decoding: every linear layer dynamically quantized (``torch.ao``), for CPU inference."""

from __future__ import annotations

import torch
from torch.ao.nn.quantized.dynamic import Linear as DynamicInt8Linear
from torch.ao.quantization import default_dynamic_qconfig


def quantize_linear_int8(module: torch.nn.Module) -> torch.nn.Module:
    """Replace, in place, every ``nn.Linear`` under ``module`` by its int8 dynamically quantized form.

    Weights are stored in int8 (per tensor); activations are quantized per batch at run time, so
    outputs change slightly. openai-whisper's ``Linear`` subclass is not in ``torch.ao``'s module
    mapping (``quantize_dynamic`` would skip it), hence the swap through a plain ``nn.Linear``.
    CPU only: the quantized kernels are fbgemm/qnnpack.
    """
    for name, child in module.named_children():
        if isinstance(child, torch.nn.Linear):
            plain = torch.nn.Linear(child.in_features, child.out_features, bias=child.bias is not None)
            plain.load_state_dict(child.state_dict())
            plain.qconfig = default_dynamic_qconfig
            setattr(module, name, DynamicInt8Linear.from_float(plain))
        else:
            quantize_linear_int8(child)
    return module
