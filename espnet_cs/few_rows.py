"""Linear layers applied to a few rows at a time, as greedy decoding steps apply them on CPU.

A decoding step multiplies one row per active utterance by every weight of the text decoder
(more than the CPU caches hold). On CPU, ``F.linear`` (``addmm``) on such shapes, x: (rows, in)
with rows a handful and weight: (out, in), streams the weight slower than the same product computed
as a batched ``weight @ x.T`` over slices of the weight's rows (``bmm``); the two are compared on
Whisper-base's layers in ``benchmarks/RESULTS.md``. :func:`few_rows_linear` computes it that way on CPU, and
:func:`few_rows_linears` makes a decoder's plain linear layers use it inside a ``with`` block.
Results equal ``F.linear``'s up to float rounding (summation order).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
import whisper

MAX_ROWS = 64  # above this, addmm is as fast (a teacher-forced pass, a long first chunk)
MAX_SLICES = 16


@functools.cache
def weight_slices(out_features: int) -> int:
    """How many equal slices of rows the weight is cut into: the largest divisor <= ``MAX_SLICES``."""
    return max(n for n in range(1, MAX_SLICES + 1) if out_features % n == 0)


def few_rows_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """``F.linear(x, weight, bias)``, as a batched product over slices of ``weight`` for a few rows on CPU.

    Args:
        x: (..., in_features).
        weight: (out_features, in_features), contiguous.
        bias: (out_features,) or None.
    Returns:
        (..., out_features)
    """
    out_features, in_features = weight.shape
    rows = x.numel() // in_features
    if x.device.type != "cpu" or rows > MAX_ROWS or not weight.is_contiguous():
        return F.linear(x, weight, bias)
    slices = weight_slices(out_features)
    columns = x.reshape(rows, in_features).T.expand(slices, in_features, rows)
    y = torch.bmm(weight.view(slices, out_features // slices, in_features), columns).view(out_features, rows)
    y = y.T.contiguous() if bias is None else torch.add(bias, y.T).contiguous()
    return y.view(*x.shape[:-1], out_features)


def _linear_forward(module: whisper.model.Linear, x: torch.Tensor) -> torch.Tensor:
    """``whisper.model.Linear.forward`` through :func:`few_rows_linear`."""
    bias = None if module.bias is None else module.bias.to(x.dtype)
    return few_rows_linear(x, module.weight.to(x.dtype), bias)


@contextmanager
def few_rows_linears(module: torch.nn.Module) -> Iterator[None]:
    """Inside the block, ``module``'s Whisper linear layers compute through :func:`few_rows_linear`.

    Only layers that are exactly ``whisper.model.Linear`` change (LoRA's and quantized layers keep
    their own forward); their hooks still run. Nested blocks leave the layers to the outermost.
    """
    layers = [m for m in module.modules() if type(m) is whisper.model.Linear and "forward" not in vars(m)]
    for layer in layers:
        layer.forward = functools.partial(_linear_forward, layer)
    try:
        yield
    finally:
        for layer in layers:
            del layer.forward
