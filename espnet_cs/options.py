"""The one check of option mappings (YAML sections, ``--*_conf``) against what takes them."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import fields, is_dataclass
from typing import Any

from espnet_cs.config_yaml import ConfigError


def check_options(target: type | Callable[..., Any], conf: dict[str, Any], where: str) -> None:
    """Raise :class:`ConfigError` (a ``ValueError``) naming ``where`` and the valid keys if ``conf`` has a key ``target`` does not take.

    Args:
        target: a dataclass (its fields) or a class or function (its keyword parameters).
        conf: the options.
        where: what to name in the error, e.g. ``encoder_conf of CSWhisperEncoder``.
    """
    if is_dataclass(target):
        valid = {f.name for f in fields(target)}
    else:
        function = target.__init__ if inspect.isclass(target) else target
        valid = {name for name in inspect.signature(function).parameters if name != "self"}
    unknown = sorted(set(conf) - valid)
    if unknown:
        raise ConfigError(f"{where}: unknown option(s) {unknown}; valid: {sorted(valid)}")
