"""Soft prompts for one Whisper stack (encoder or decoder): vanilla, deep, residual, language.

The variants compose through :class:`PromptConfig`, so SPT4ASR is a configuration:

* vanilla (``length > 0``): ``length`` learnable vectors enter the stack's first block;
* deep (``deep``): every block gets its own vectors, replacing the previous block's outputs at
  the prompt positions;
* residual (``residual_bottleneck > 0``): every prompt vector ``p`` is used as
  ``p + LayerNorm(MLP(p))``, one bottleneck MLP shared by all vectors and blocks of the stack
  (residual prompt tuning); :meth:`SoftPrompts.fold` bakes the MLP into the vectors for packing;
* language (``language``, decoder only): a small language encoder maps the utterance's
  language distribution over zh/en (``lid``, shape (batch, 2)) through Whisper's own ``<|zh|>``
  and ``<|en|>`` token embeddings and a bottleneck MLP to one vector added to every prompt.

Prompt positions carry no positional embedding: the audio frames and text tokens keep the
positions Whisper was trained with, so with ``length == 0`` the stack is exactly Whisper's.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn

from espnet_cs.options import check_options


@dataclass(frozen=True)
class PromptConfig:
    """Soft prompts of one stack; ``length == 0`` means none."""

    length: int = 0
    deep: bool = False
    residual_bottleneck: int = 0
    language: bool = False
    language_bottleneck: int = 64
    init_std: float = 0.02  # noise added to the stack's own initial vectors (see SoftPrompts)

    @classmethod
    def from_dict(cls, conf: Optional[dict], where: str) -> "PromptConfig":
        """Build from a YAML mapping, naming ``where`` and the valid keys on an unknown key."""
        conf = dict(conf or {})
        check_options(cls, conf, where)
        config = cls(**conf)
        if config.length < 0 or config.residual_bottleneck < 0:
            raise ValueError(f"{where}: prompt length and residual_bottleneck must be >= 0")
        if config.length == 0 and (config.deep or config.residual_bottleneck or config.language):
            raise ValueError(f"{where}: deep/residual/language prompts need length > 0")
        return config


class ResidualReparameterization(nn.Module):
    """``p -> p + LayerNorm(W2 relu(W1 p))`` applied to every prompt vector (residual prompt tuning).

    The LayerNorm's gain starts at zero, so the map starts as the identity and training starts
    from the prompts' own initialization.
    """

    def __init__(self, d_model: int, bottleneck: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(d_model, bottleneck), nn.ReLU(), nn.Linear(bottleneck, d_model))
        self.norm = nn.LayerNorm(d_model)
        nn.init.zeros_(self.norm.weight)

    def forward(self, prompts: torch.Tensor) -> torch.Tensor:
        return prompts + self.norm(self.mlp(prompts))


class LanguageEncoder(nn.Module):
    """Maps a zh/en language distribution (batch, 2) to a prompt shift (batch, d_model).

    Args:
        language_embeddings: (2, d_model) Whisper's ``<|zh|>``, ``<|en|>`` token embeddings (kept frozen).
        bottleneck: hidden size of the MLP.
    """

    def __init__(self, language_embeddings: torch.Tensor, bottleneck: int) -> None:
        super().__init__()
        d_model = language_embeddings.size(1)
        self.register_buffer("language_embeddings", language_embeddings.detach().clone(), persistent=False)
        self.mlp = nn.Sequential(nn.Linear(d_model, bottleneck), nn.GELU(), nn.Linear(bottleneck, d_model))
        nn.init.zeros_(self.mlp[2].weight)
        nn.init.zeros_(self.mlp[2].bias)

    def forward(self, lid: torch.Tensor) -> torch.Tensor:
        return self.mlp(lid.to(self.language_embeddings.dtype) @ self.language_embeddings)


class SoftPrompts(nn.Module):
    """The prompt vectors of one stack of ``n_layers`` blocks of width ``d_model``.

    Args:
        config: which variants are on.
        n_layers: blocks in the stack (deep prompts: one set per block).
        d_model: width.
        language_embeddings: (2, d_model), required when ``config.language``.
        init: (length, d_model), or (n_layers, length, d_model) one per block: vectors the
            backbone already knows how to read (token embeddings, states of silent audio); the
            prompts start there, plus N(0, init_std) noise.
    """

    def __init__(
        self,
        config: PromptConfig,
        n_layers: int,
        d_model: int,
        language_embeddings: Optional[torch.Tensor] = None,
        init: Optional[torch.Tensor] = None,
    ) -> None:
        super().__init__()
        self.config = config
        n_sets = n_layers if config.deep else 1
        init = torch.zeros(config.length, d_model) if init is None else init.detach()
        init = init.expand(n_layers, -1, -1) if init.dim() == 2 else init
        noise = torch.randn(n_sets, config.length, d_model) * config.init_std
        self.vectors = nn.Parameter(init[:n_sets].to(noise) + noise)
        self.residual = (
            ResidualReparameterization(d_model, config.residual_bottleneck) if config.residual_bottleneck else None
        )
        if config.language and language_embeddings is None:
            raise ValueError("language prompts need Whisper's language token embeddings")
        self.language = LanguageEncoder(language_embeddings, config.language_bottleneck) if config.language else None

    @property
    def length(self) -> int:
        return self.config.length

    def forward(self, batch: int, lid: Optional[torch.Tensor] = None) -> torch.Tensor:
        """The prompts entering each block.

        Args:
            batch: batch size.
            lid: (batch, 2) zh/en distribution, required with language prompts.
        Returns:
            (sets, batch, length, d_model); set ``i`` enters block ``i`` (one set unless deep).
        """
        prompts = self.vectors if self.residual is None else self.residual(self.vectors)
        prompts = prompts.unsqueeze(1).expand(-1, batch, -1, -1)
        if self.language is not None:
            if lid is None:
                raise ValueError("language prompts need the utterances' language distribution")
            prompts = prompts + self.language(lid)[None, :, None, :]
        return prompts

    def enters_block(self, block: int) -> bool:
        """Whether fresh prompts replace the prompt positions at the input of ``block``."""
        return block == 0 or self.config.deep

    @torch.no_grad()
    def fold(self) -> None:
        """Bake the residual MLP into the vectors (same outputs, fewer parameters) for packing."""
        if self.residual is not None:
            self.vectors.copy_(self.residual(self.vectors))
            self.residual = None
            self.config = PromptConfig(**{**self.config.__dict__, "residual_bottleneck": 0})


def insert_prompts(x: torch.Tensor, prompts: torch.Tensor, replace: bool) -> torch.Tensor:
    """Put ``prompts`` (batch, n, d) in front of ``x`` (batch, time, d), or over its first n positions."""
    return torch.cat([prompts, x[:, prompts.size(1):] if replace else x], dim=1)
