"""The soft prompts of one Whisper stack: their vectors, variants and insertion at each block."""

from __future__ import annotations

import torch
from torch import nn
from whisper.model import AudioEncoder, TextDecoder
from whisper.tokenizer import Tokenizer

from espnet_cs.config_yaml import ConfigError
from espnet_cs.prompts.config import PromptConfig
from espnet_cs.prompts.initialization import frequent_tokens, previous_text_states, silence_states, text_tokens
from espnet_cs.prompts.language import LanguageEncoder
from espnet_cs.prompts.reparameterization import REPARAMETERIZATIONS


class SoftPrompts(nn.Module):
    """The prompts of a stack of ``n_layers`` blocks of width ``d_model``; with length 0, none.

    Args:
        config: which variants are on.
        n_layers: blocks in the stack (deep prompts: one set per block).
        d_model: width.
        init: (length, d_model), or (n_layers, length, d_model) one per block: where the prompts
            start (:mod:`espnet_cs.prompts.initialization`), plus N(0, init_std) noise.
        language_embeddings: (2, d_model) ``<|zh|>``/``<|en|>`` embeddings, for language prompts.

    The vectors are marked ``_no_weight_decay``: ESPnet's ``--exclude_weight_decay true`` trains
    them without weight decay (:meth:`espnet_cs.task.CSASRTask.build_optimizers`).
    """

    def __init__(
        self,
        config: PromptConfig,
        n_layers: int,
        d_model: int,
        init: torch.Tensor | None = None,
        language_embeddings: torch.Tensor | None = None,
    ) -> None:
        super().__init__()
        self.config = config
        self.vectors: nn.Parameter | None = None
        self.reparameterization: nn.Module | None = None
        self.language: LanguageEncoder | None = None
        if not config.length:
            return
        n_sets = n_layers if config.deep else 1
        init = torch.zeros(config.length, d_model) if init is None else init.detach()
        init = init.expand(n_layers, -1, -1) if init.dim() == 2 else init
        noise = torch.randn(n_sets, config.length, d_model) * config.init_std
        self.vectors = nn.Parameter(init[:n_sets].to(noise) + noise)
        self.vectors._no_weight_decay = True
        if config.reparameterization:
            key, size = config.reparameterization
            self.reparameterization = REPARAMETERIZATIONS[key](d_model, size, **config.reparameterization_options(key))
        if config.language:
            if language_embeddings is None:
                raise ValueError("language prompts need Whisper's language token embeddings")
            self.language = LanguageEncoder(language_embeddings, config.language_bottleneck)

    @classmethod
    def for_encoder(cls, conf: dict | None, encoder: AudioEncoder, n_mels: int) -> SoftPrompts:
        """Encoder prompts (``encoder_conf.soft_prompts``), starting as the states of trailing silence."""
        config = PromptConfig.from_dict(conf, "encoder soft_prompts")
        if config.language:
            raise ConfigError(
                "encoder soft_prompts: language prompts are decoder-only "
                "(the language is detected from the encoder output)"
            )
        if config.init_text:
            raise ConfigError("encoder soft_prompts: init_text is decoder-only (encoder prompts start as silence)")
        n_layers, d_model = len(encoder.blocks), encoder.ln_post.normalized_shape[-1]
        init = silence_states(encoder, n_mels, config.length) if config.length else None
        return cls(config, n_layers, d_model, init)

    @classmethod
    def for_decoder(
        cls, conf: dict | None, decoder: TextDecoder, tokenizer: Tokenizer, lid_tokens: list[int], max_length: int
    ) -> SoftPrompts:
        """Decoder prompts (``decoder_conf.soft_prompts``), starting as a previous-text context:
        ``<|startofprev|>`` and random frequent tokens, or the end of ``init_text``.

        Args:
            tokenizer: Whisper's tokenizer of ``decoder``'s vocabulary.
            max_length: the most prompt positions the text context leaves (see the decoder).
        """
        config = PromptConfig.from_dict(conf, "decoder soft_prompts")
        if config.length > max_length:
            raise ConfigError(
                f"decoder soft_prompts: length {config.length} does not fit Whisper's text context of "
                f"{decoder.positional_embedding.size(0)} with the task tokens and the output tokens (at most {max_length})"
            )
        n_layers, d_model = len(decoder.blocks), decoder.ln.normalized_shape[-1]
        init = None
        if config.length:
            tokens = (
                text_tokens(tokenizer, config.init_text, config.length)
                if config.init_text
                else frequent_tokens(tokenizer.sot_prev, config.length)
            )
            init = previous_text_states(decoder, tokens)
        language = decoder.token_embedding.weight[lid_tokens] if config.language else None
        return cls(config, n_layers, d_model, init, language)

    @property
    def length(self) -> int:
        """Positions the prompts take in front of the stack's input (0: none)."""
        return self.config.length

    @property
    def needs_language(self) -> bool:
        """Whether :meth:`forward` needs the utterances' zh/en distribution (language prompts)."""
        return self.language is not None

    def forward(self, batch: int, lid: torch.Tensor | None = None) -> torch.Tensor | None:
        """The prompts entering the blocks, for a batch.

        Args:
            batch: batch size.
            lid: (batch, 2) zh/en distribution, required when :attr:`needs_language`.
        Returns:
            (sets, batch, length, d_model), set ``i`` entering block ``i`` (one set unless deep);
            None without prompts.
        """
        if self.vectors is None:
            return None
        prompts = self.vectors if self.reparameterization is None else self.reparameterization(self.vectors)
        prompts = prompts.unsqueeze(1).expand(-1, batch, -1, -1)
        if self.language is not None:
            if lid is None:
                raise ValueError("language prompts need the utterances' language distribution")
            prompts = prompts + self.language(lid)[None, :, None, :]
        return prompts

    def enter(
        self, x: torch.Tensor, block: int, prompts: torch.Tensor | None, positions: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The input of ``block`` with the prompts in it.

        Args:
            x: (batch, time, d_model) the block's input; from block 1 on its first ``length``
                positions are the prompts' states.
            block: index of the block.
            prompts: from :meth:`forward` (None: none, x is returned).
            positions: (length, d_model) positional embeddings added at block 0 (decoder).
        Returns:
            (batch, length + time, d_model) at block 0: prompts prepended; at later blocks of
            deep prompts, the prompt positions replaced by the block's own set; else ``x``.
        """
        if prompts is None or not (block == 0 or self.config.deep):
            return x
        fresh = prompts[block].to(x.dtype)
        if block == 0:
            return torch.cat([fresh if positions is None else fresh + positions.to(x.dtype), x], dim=1)
        return torch.cat([fresh, x[:, self.length :]], dim=1)

    def unread_outputs(self, block: int, n_blocks: int, kept_in_output: bool) -> int:
        """Leading positions of ``block``'s output that nothing reads: the prompt positions where
        the next block replaces them (deep prompts), and after the last block unless the stack's
        output keeps them (``kept_in_output``: the encoder's, which the decoder attends to); 0 otherwise.
        """
        if block == n_blocks - 1:
            return 0 if kept_in_output else self.length
        return self.length if self.config.deep else 0

    @torch.no_grad()
    def fold(self) -> None:
        """Bake the reparameterization into the vectors (same outputs, fewer parameters) for packing."""
        if self.reparameterization is not None:
            self.vectors.copy_(self.reparameterization(self.vectors))
            self.reparameterization = None
            self.config = self.config.without_reparameterization()
