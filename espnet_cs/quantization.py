"""Opt-in int8 decoding: every linear layer dynamically quantized (``torch.ao``), for CPU inference."""

from __future__ import annotations

import loralib as lora
import torch
from torch.ao.nn.quantized.dynamic import Linear as DynamicInt8Linear
from torch.ao.quantization import default_dynamic_qconfig


def quantize_linear_int8(module: torch.nn.Module) -> torch.nn.Module:
    """Replace, in place, every ``nn.Linear`` under ``module`` by its int8 dynamically quantized form.

    Weights are stored in int8 (per tensor); activations are quantized per batch at run time, so
    outputs change slightly. openai-whisper's ``Linear`` subclass is not in ``torch.ao``'s module
    mapping (``quantize_dynamic`` would skip it), hence the swap through a plain ``nn.Linear``.
    A LoRA layer (loralib, as ESPnet's LoRA makes it) is quantized with its update ``B @ A`` merged
    into the weight. CPU only: the quantized kernels are fbgemm/qnnpack.
    """
    for name, child in module.named_children():
        if isinstance(child, torch.nn.Linear):
            plain = torch.nn.Linear(child.in_features, child.out_features, bias=child.bias is not None)
            with torch.no_grad():
                plain.weight.copy_(applied_weight(child))
                if child.bias is not None:
                    plain.bias.copy_(child.bias)
            plain.qconfig = default_dynamic_qconfig
            setattr(module, name, DynamicInt8Linear.from_float(plain))
        else:
            quantize_linear_int8(child)
    return module


def applied_weight(linear: torch.nn.Linear) -> torch.Tensor:
    """(out_features, in_features) weight ``linear`` applies in eval mode: loralib's ``B @ A``
    (scaled) added where the layer keeps it apart from its weight."""
    weight = linear.weight.T if getattr(linear, "fan_in_fan_out", False) else linear.weight
    if isinstance(linear, lora.Linear) and linear.r > 0 and not linear.merged:
        weight = weight + (linear.lora_B @ linear.lora_A) * linear.scaling
    return weight
