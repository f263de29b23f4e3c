"""Checking YAML option mappings against the dataclasses that hold them."""

from __future__ import annotations

from dataclasses import fields
from typing import Any


def check_options(cls: type, conf: dict[str, Any], where: str) -> None:
    """Raise ``ValueError`` naming ``where`` and the valid keys if ``conf`` has a key ``cls`` lacks."""
    valid = {f.name for f in fields(cls)}
    unknown = sorted(set(conf) - valid)
    if unknown:
        raise ValueError(f"{where}: unknown option(s) {unknown}; valid: {sorted(valid)}")
