"""Options and values renamed in this release: the old names are refused, with an error naming the new one.

Kept for one release, so that a config, a command line or a script written with the old names stops
before any work starts and says what to write instead:

- training option ``lid_prompt`` (config key, ``--lid_prompt``): ``task_tokens``;
- its values ``single`` and ``cs``: ``zh`` and ``zh_en`` (:data:`RENAMED_TASK_TOKENS`);
- ``model_conf.guidance``'s ``share`` and ``--share`` of ``espnet_cs.bin.attention_report``: ``fraction``.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Any

from espnet_cs.config_yaml import ConfigError

RENAMED_OPTIONS = {"lid_prompt": "task_tokens"}  # options of training and zero-shot decoding
RENAMED_GUIDANCE_OPTIONS = {"share": "fraction"}  # model_conf.guidance
RENAMED_TASK_TOKENS = {"single": "zh", "cs": "zh_en"}  # values of task_tokens


def refuse_renamed_keys(conf: Mapping[str, Any], renames: Mapping[str, str], where: str) -> None:
    """Raise :class:`ConfigError` naming ``where``, the old key and its new name if ``conf`` has an old key."""
    for old, new in renames.items():
        if old in conf:
            raise ConfigError(f"{where}: key '{old}' was renamed to '{new}'")


def refuse_renamed_task_tokens(value: str, where: str) -> None:
    """Raise :class:`ConfigError` naming ``where`` and the new value if ``value`` is an old name of task tokens."""
    if value in RENAMED_TASK_TOKENS:
        raise ConfigError(f"{where}: task tokens '{value}' were renamed to '{RENAMED_TASK_TOKENS[value]}'")


def refuse_renamed_training_options(conf: Mapping[str, Any], where: str) -> None:
    """Raise :class:`ConfigError` naming ``where`` for an old name among training options ``conf``
    (a config file's mapping, or the ``vars`` of parsed options): its keys, ``model_conf.guidance``'s
    keys and the value of ``task_tokens``."""
    refuse_renamed_keys(conf, RENAMED_OPTIONS, where)
    guidance = (conf.get("model_conf") or {}).get("guidance")
    if isinstance(guidance, Mapping):
        refuse_renamed_keys(guidance, RENAMED_GUIDANCE_OPTIONS, f"{where}: model_conf.guidance")
    if isinstance(conf.get("task_tokens"), str):
        refuse_renamed_task_tokens(conf["task_tokens"], where)


class _RenamedOption(argparse.Action):
    """A command-line option that was renamed: giving it is a parse error naming the new one."""

    def __init__(self, option_strings: list[str], dest: str, new: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs="?", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        self.new = new

    def __call__(self, parser: argparse.ArgumentParser, namespace: Any, values: Any, option_string: str | None = None):
        parser.error(f"{option_string} was renamed to {self.new}")


def add_renamed_options(parser: argparse.ArgumentParser | Any, renames: Mapping[str, str]) -> None:
    """Make each old ``--<key>`` of ``renames`` (old -> new) a parse error naming ``--<new>``; hidden
    from ``--help`` and absent from the parsed options."""
    for old, new in renames.items():
        parser.add_argument(f"--{old}", action=_RenamedOption, new=f"--{new}", dest=f"renamed_{old}")


def task_tokens_type(value: str) -> str:
    """``type`` of a ``--task_tokens`` option: ``value``, or a parse error naming the new name of an old one."""
    if value in RENAMED_TASK_TOKENS:
        raise argparse.ArgumentTypeError(f"task tokens '{value}' were renamed to '{RENAMED_TASK_TOKENS[value]}'")
    return value
