"""Reparameterizations of prompt vectors: networks the vectors are used through while training.

Each class maps ``(..., d_model)`` prompt vectors to vectors of the same shape, starts as the
identity (training starts from the prompts' own initialization), and registers under the
:class:`~espnet_cs.prompts.config.PromptConfig` field that gives its size (0: off). Adding one
is this class, that field and a YAML (docs/architecture.md, "Adding a prompt variant"). A class
with further settings names the ``PromptConfig`` fields that hold them in ``options``; they reach
it as keyword arguments of the same names.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

# PromptConfig field -> class(d_model, size)
REPARAMETERIZATIONS: dict[str, type[nn.Module]] = {}


def register(config_key: str) -> Callable[[type[nn.Module]], type[nn.Module]]:
    """Class decorator: make ``config_key`` of the prompt options switch this reparameterization on."""

    def add(cls: type[nn.Module]) -> type[nn.Module]:
        REPARAMETERIZATIONS[config_key] = cls
        return cls

    return add


def options_of(config_key: str) -> tuple[str, ...]:
    """The ``PromptConfig`` fields holding the settings of the reparameterization of ``config_key``."""
    return getattr(REPARAMETERIZATIONS[config_key], "options", ())


# How the residual MLP starts as the identity (``residual_start``).
RESIDUAL_STARTS = ("zero_gain", "zero_last")


@register("residual_bottleneck")
class ResidualReparameterization(nn.Module):
    """``p -> p + LayerNorm(W2 relu(W1 p))`` for every prompt vector (residual prompt tuning).

    Args:
        d_model: width of the prompts.
        size: bottleneck width of the MLP.
        residual_start: how the map starts as the identity:

            * ``zero_gain``: the LayerNorm's gain starts at zero; the first gradients reach the
              gain and the LayerNorm's bias alone, and the MLP's only once the gain has grown;
            * ``zero_last``: the gain starts at one and ``W2``'s weight and bias at zero; the first
              gradients reach ``W2``, its bias and the LayerNorm's bias. The LayerNorm rescales
              ``W2``'s output to unit variance, so from the first update on the shift has the
              gain's size (one) instead of growing from zero.
    """

    options = ("residual_start",)

    def __init__(self, d_model: int, size: int, residual_start: str = "zero_gain") -> None:
        super().__init__()
        if residual_start not in RESIDUAL_STARTS:
            raise ValueError(f"residual_start must be one of {list(RESIDUAL_STARTS)}, not {residual_start!r}")
        self.mlp = nn.Sequential(nn.Linear(d_model, size), nn.ReLU(), nn.Linear(size, d_model))
        self.norm = nn.LayerNorm(d_model)
        if residual_start == "zero_gain":
            nn.init.zeros_(self.norm.weight)
        else:
            nn.init.zeros_(self.mlp[2].weight)
            nn.init.zeros_(self.mlp[2].bias)

    def forward(self, prompts: torch.Tensor) -> torch.Tensor:
        return prompts + self.norm(self.mlp(prompts))
