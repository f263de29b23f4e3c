"""The options of one stack's soft prompts (``encoder_conf.soft_prompts``, ``decoder_conf.soft_prompts``)."""

from __future__ import annotations

from dataclasses import dataclass, fields

from espnet_cs.config_yaml import ConfigError
from espnet_cs.options import check_options
from espnet_cs.prompts.reparameterization import REPARAMETERIZATIONS, RESIDUAL_STARTS, options_of


@dataclass(frozen=True)
class PromptConfig:
    """Soft prompts of one stack; ``length == 0`` means none.

    Every key of :data:`~espnet_cs.prompts.reparameterization.REPARAMETERIZATIONS`
    (``residual_bottleneck``) is a field here: its size, 0 for off; at most one is on. So are the
    settings each reparameterization names in its ``options`` (``residual_start``), which need it on.
    ``init_text`` (decoder only): the decoder prompts start as ``<|startofprev|>`` and the last
    ``length - 1`` tokens of this previous text instead of random frequent tokens
    (:mod:`espnet_cs.prompts.initialization`).
    """

    length: int = 0
    deep: bool = False
    residual_bottleneck: int = 0
    residual_start: str = "zero_gain"  # how the residual MLP starts as the identity: zero_gain | zero_last
    language: bool = False
    language_bottleneck: int = 64
    init_text: str = ""
    init_std: float = 0.02  # noise added to the stack's own initial vectors (see SoftPrompts)

    @classmethod
    def from_dict(cls, conf: dict | None, where: str) -> PromptConfig:
        """Build from a YAML mapping, naming ``where`` and the valid keys on an unknown key."""
        conf = dict(conf or {})
        check_options(cls, conf, where)
        config = cls(**conf)
        sizes = {key: getattr(config, key) for key in REPARAMETERIZATIONS}
        if config.length < 0 or any(size < 0 for size in sizes.values()):
            raise ConfigError(f"{where}: prompt length and {', '.join(sizes)} must be >= 0")
        on = sorted(key for key, size in sizes.items() if size)
        if config.length == 0 and (config.deep or config.language or config.init_text or on):
            raise ConfigError(f"{where}: deep/{'/'.join(sizes)}/language/init_text prompts need length > 0")
        if len(on) > 1:
            raise ConfigError(f"{where}: choose one reparameterization, not {on}")
        for key in REPARAMETERIZATIONS:
            changed = [o for o in options_of(key) if getattr(config, o) != _DEFAULTS[o]]
            if changed and not sizes[key]:
                raise ConfigError(f"{where}: {changed} only apply with {key} > 0")
        if config.residual_start not in RESIDUAL_STARTS:
            raise ConfigError(
                f"{where}: residual_start must be one of {list(RESIDUAL_STARTS)}, not {config.residual_start!r}"
            )
        return config

    @property
    def reparameterization(self) -> tuple[str, int] | None:
        """``(config key, size)`` of the reparameterization that is on, if any."""
        return next(((key, getattr(self, key)) for key in REPARAMETERIZATIONS if getattr(self, key)), None)

    def reparameterization_options(self, key: str) -> dict[str, object]:
        """The settings the reparameterization of ``key`` names in its ``options``, by name."""
        return {o: getattr(self, o) for o in options_of(key)}

    def without_reparameterization(self) -> PromptConfig:
        """The same prompts with no reparameterization, its settings back at their defaults (after folding)."""
        key, _ = self.reparameterization
        return PromptConfig(
            **{**self.__dict__, key: 0, **{o: _DEFAULTS[o] for o in self.reparameterization_options(key)}}
        )


_DEFAULTS = {f.name: f.default for f in fields(PromptConfig)}
