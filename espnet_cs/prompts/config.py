"""The options of one stack's soft prompts (``encoder_conf.soft_prompts``, ``decoder_conf.soft_prompts``)."""

from __future__ import annotations

from dataclasses import dataclass

from espnet_cs.config_yaml import ConfigError
from espnet_cs.options import check_options
from espnet_cs.prompts.reparameterization import REPARAMETERIZATIONS


@dataclass(frozen=True)
class PromptConfig:
    """Soft prompts of one stack; ``length == 0`` means none.

    Every key of :data:`~espnet_cs.prompts.reparameterization.REPARAMETERIZATIONS`
    (``residual_bottleneck``) is a field here: its size, 0 for off; at most one is on.
    """

    length: int = 0
    deep: bool = False
    residual_bottleneck: int = 0
    language: bool = False
    language_bottleneck: int = 64
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
        if config.length == 0 and (config.deep or config.language or on):
            raise ConfigError(f"{where}: deep/{'/'.join(sizes)}/language prompts need length > 0")
        if len(on) > 1:
            raise ConfigError(f"{where}: choose one reparameterization, not {on}")
        return config

    @property
    def reparameterization(self) -> tuple[str, int] | None:
        """``(config key, size)`` of the reparameterization that is on, if any."""
        return next(((key, getattr(self, key)) for key in REPARAMETERIZATIONS if getattr(self, key)), None)
