"""Bottleneck adapters on the sublayers of Whisper's blocks, attached by forward hooks.

An adapter maps a sublayer's output ``h`` to ``h + up(relu(down(LayerNorm(h))))`` before the
block's residual addition (Houlsby et al. 2019). ``up`` starts at zero, so at step 0 every
adapted sublayer, and the model, computes exactly what the backbone computes. Hooks leave
Whisper's modules and parameter names untouched: adapters are additions, not forks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import torch
from torch import nn

from espnet_cs.config_yaml import ConfigError
from espnet_cs.options import check_options

ENCODER_SUBLAYERS = ("attn", "mlp")
"""The sublayers of an encoder block an adapter can follow: self-attention and feed-forward."""
DECODER_SUBLAYERS = ("attn", "cross_attn", "mlp")
"""The sublayers of a decoder block an adapter can follow: cross-attention besides the encoder's."""


@dataclass(frozen=True)
class AdapterConfig:
    """Adapters of one stack; ``bottleneck == 0`` means none.

    ``placement`` names the sublayers adapted in every block: ``attn`` (self-attention),
    ``cross_attn`` (decoder only) and ``mlp`` (feed-forward).
    """

    bottleneck: int = 0
    placement: tuple[str, ...] = ("attn", "mlp")

    @classmethod
    def from_dict(cls, conf: dict | None, where: str, allowed: Sequence[str]) -> AdapterConfig:
        conf = dict(conf or {})
        check_options(cls, conf, where)
        config = cls(**{**conf, **({"placement": tuple(conf["placement"])} if "placement" in conf else {})})
        bad = sorted(set(config.placement) - set(allowed))
        if bad:
            raise ConfigError(f"{where}: cannot place adapters on {bad}; choose from {list(allowed)}")
        if config.bottleneck < 0:
            raise ConfigError(f"{where}: bottleneck must be >= 0")
        return config


class BottleneckAdapter(nn.Module):
    """``h -> h + up(relu(down(LayerNorm(h))))`` with ``up`` zero-initialized.

    Args:
        d_model: width of the adapted sublayer's output.
        bottleneck: hidden width.
    """

    def __init__(self, d_model: int, bottleneck: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.down = nn.Linear(d_model, bottleneck)
        self.up = nn.Linear(bottleneck, d_model)
        nn.init.zeros_(self.up.weight)
        nn.init.zeros_(self.up.bias)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h + self.up(torch.relu(self.down(self.norm(h))))


class BlockAdapters(nn.ModuleDict):
    """The adapters of one Whisper block, keyed by sublayer name, hooked onto it.

    Each hook is a bound method of this module (through :func:`functools.partial`), so
    ``copy.deepcopy`` of a model gives hooks that call the copy's own adapters.
    """

    def __init__(self, block: nn.Module, config: AdapterConfig, d_model: int) -> None:
        super().__init__({name: BottleneckAdapter(d_model, config.bottleneck) for name in config.placement})
        for name in config.placement:
            getattr(block, name).register_forward_hook(partial(self.adapt, name))

    def adapt(self, name: str, module: nn.Module, args: Any, output: Any) -> Any:
        """Forward hook of sublayer ``name``: its output through its adapter."""
        if isinstance(output, tuple):  # attention returns (output, attention scores)
            return (self[name](output[0]), *output[1:])
        return self[name](output)


def attach_adapters(blocks: Sequence[nn.Module], config: AdapterConfig, d_model: int) -> nn.ModuleList | None:
    """Adapters for every block of a stack (None if ``config`` has none)."""
    if config.bottleneck == 0:
        return None
    return nn.ModuleList(BlockAdapters(block, config, d_model) for block in blocks)
