"""The one reader of the project's YAML files: PyYAML's safe loader, refusing a repeated key.

PyYAML keeps the last of two equal keys of a mapping without a word, so two ``encoder_conf:``
blocks in a method config would train another method than the one written first. Here a
repeated key is a :class:`ConfigError` naming the file, the key and both lines; so is a file
that is not YAML. Keys merged in with ``<<:`` may be overridden, as YAML intends.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A configuration file cannot be used; the message names the file and what is wrong in it."""


class _RepeatedKey(yaml.YAMLError):
    def __init__(self, key: Any, first: int, second: int):
        super().__init__(f"key {key!r} at line {second} repeats the one at line {first}")
        self.key, self.first, self.second = key, first, second


class _StrictLoader(yaml.SafeLoader):
    """A safe loader whose mappings refuse a key they already hold."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        lines: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                if key in lines:
                    raise _RepeatedKey(key, lines[key], line)
                lines[key] = line
            except TypeError:  # an unhashable key: the safe loader's own error follows
                continue
        return super().construct_mapping(node, deep)


def loads_yaml(text: str, name: str) -> Any:
    """The YAML document ``text`` (read from ``name``, which errors name).

    Raises:
        ConfigError: a repeated key (naming it and both lines), or text that is not YAML.
    """
    try:
        return yaml.load(text, Loader=_StrictLoader)  # noqa: S506 (a SafeLoader)
    except _RepeatedKey as e:
        raise ConfigError(
            f"{name}: key '{e.key}' appears twice, at lines {e.first} and {e.second}; "
            "YAML would keep only the second: merge them into one"
        ) from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        problem = getattr(e, "problem", None) or str(e)
        raise ConfigError(f"{name}{where}: not valid YAML ({problem})") from None


def load_yaml(path: str | Path) -> Any:
    """The YAML file ``path``, read by :func:`loads_yaml`."""
    return loads_yaml(Path(path).read_text(encoding="utf-8"), str(path))


def load_yaml_mapping(path: str | Path) -> dict[str, Any]:
    """The YAML file ``path``, which must hold a mapping (an empty file is an empty one)."""
    data = load_yaml(path)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values, not a {type(data).__name__}")
    return data
