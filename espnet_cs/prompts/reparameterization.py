"""Reparameterizations of prompt vectors: networks the vectors are used through while training.

Each class maps ``(..., d_model)`` prompt vectors to vectors of the same shape, starts as the
identity (training starts from the prompts' own initialization), and registers under the
:class:`~espnet_cs.prompts.config.PromptConfig` field that gives its size (0: off). Adding one
is this class, that field and a YAML (docs/architecture.md, "Adding a prompt variant").
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


@register("residual_bottleneck")
class ResidualReparameterization(nn.Module):
    """``p -> p + LayerNorm(W2 relu(W1 p))`` for every prompt vector (residual prompt tuning).

    Args:
        d_model: width of the prompts.
        size: bottleneck width of the MLP.

    The LayerNorm's gain starts at zero, so the map starts as the identity.
    """

    def __init__(self, d_model: int, size: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(d_model, size), nn.ReLU(), nn.Linear(size, d_model))
        self.norm = nn.LayerNorm(d_model)
        nn.init.zeros_(self.norm.weight)

    def forward(self, prompts: torch.Tensor) -> torch.Tensor:
        return prompts + self.norm(self.mlp(prompts))
