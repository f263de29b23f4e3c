"""The training methods: one YAML each in ``conf/tuning/``, the one list the recipes, the driver,
the benchmarks, the parameter counts and the findings read.

Each YAML describes itself with keys that training ignores (:func:`espnet_cs.task.add_method_arguments`
registers them for ESPnet's config parser):

- ``family`` (required): ``spt`` (soft prompts), ``adapter``, ``lora`` or ``fft`` (every weight trains);
- ``starts_from``: two-phase training: the method whose trained model this one starts from
  (``asr.sh --method <starts_from> --phase2_method <method>``); its runs are named
  ``<starts_from>+<method>``;
- ``combines``: the methods whose parameters this one puts together (SPT4ASR: deep, residual and
  language prompts); a soft-prompt method that combines none and is not guided is a single variant;
- ``paper_trainable``: the trainable parameters its paper reports for Whisper-small, in millions.

Whether a method's loss reads stage 4's LID heads (attention guidance) is read from its
``model_conf``. ``python -m espnet_cs.methods GROUP`` prints a group's names for the shell
(``local/run_all_methods.sh``).

A method or option renamed in this release is listed in ``conf/renamed.txt`` (:data:`RENAMED`), which
the recipes' option parsing reads too: its old name fails with an error naming the new one.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from espnet_cs.config_yaml import load_yaml

CONF = Path(__file__).resolve().parents[1] / "conf" / "tuning"
RENAMED_FILE = CONF.parent / "renamed.txt"


def read_renamed(path: Path = RENAMED_FILE) -> dict[str, str]:
    """Old name -> new name of each ``old new`` line of ``path`` (``#`` starts a comment): options as ``--old``,
    methods by name."""
    pairs = (line.split("#")[0].split() for line in path.read_text(encoding="utf-8").splitlines())
    return {pair[0]: pair[1] for pair in pairs if pair}


RENAMED = read_renamed()
FAMILIES = ("spt", "adapter", "lora", "fft")  # soft prompts, bottleneck adapters, LoRA, every weight trains


@dataclass(frozen=True)
class Method:
    """A method YAML of ``conf/tuning`` and what it says of itself (the module docstring)."""

    name: str
    config: Path
    family: str
    starts_from: str | None
    combines: tuple[str, ...]
    paper_trainable: float | None
    guided: bool  # its loss adds attention guidance on stage 4's LID heads

    @property
    def system(self) -> str:
        """The name of its trained system: ``<starts_from>+<name>`` for a second phase, else its name."""
        return f"{self.starts_from}+{self.name}" if self.starts_from else self.name


def read_method(config: Path) -> Method:
    """The :class:`Method` of the YAML ``config``.

    Raises:
        ValueError: ``config`` has no ``family`` of :data:`FAMILIES`.
    """
    conf = load_yaml(config) or {}
    if conf.get("family") not in FAMILIES:
        raise ValueError(f"{config}: family must be one of {list(FAMILIES)}, not {conf.get('family')!r}")
    return Method(
        name=config.stem,
        config=config,
        family=conf["family"],
        starts_from=conf.get("starts_from"),
        combines=tuple(conf.get("combines") or ()),
        paper_trainable=conf.get("paper_trainable"),
        guided=bool((conf.get("model_conf") or {}).get("guidance")),
    )


def methods(conf_dir: Path = CONF) -> dict[str, Method]:
    """Every method YAML of ``conf_dir`` by name, sorted.

    Raises:
        ValueError: a YAML without a valid family, or whose ``starts_from`` or ``combines`` names no method there.
    """
    found = {config.stem: read_method(config) for config in sorted(conf_dir.glob("*.yaml"))}
    for method in found.values():
        unknown = [m for m in (method.starts_from, *method.combines) if m is not None and m not in found]
        if unknown:
            raise ValueError(f"{method.config}: names {unknown}, which have no YAML in {conf_dir}")
    return found


def method_config(name: str, conf_dir: Path = CONF) -> Path:
    """The YAML of the method ``name`` in ``conf_dir``.

    Raises:
        ValueError: ``name`` has no YAML there; a renamed method's error names its new name (:data:`RENAMED`).
    """
    config = conf_dir / f"{name}.yaml"
    if config.is_file():
        return config
    if name in RENAMED:
        raise ValueError(f"method {name} was renamed to {RENAMED[name]} ({conf_dir / RENAMED[name]}.yaml)")
    raise ValueError(f"unknown method {name}: no {config} (methods: {' '.join(methods(conf_dir))})")


def first_phases(conf_dir: Path = CONF) -> set[str]:
    """Methods trained only as the first phase of others."""
    return {m.starts_from for m in methods(conf_dir).values() if m.starts_from}


def one_phase(conf_dir: Path = CONF) -> list[Method]:
    """Methods trained from the backbone in one run (neither a first nor a second phase)."""
    firsts = first_phases(conf_dir)
    return [m for m in methods(conf_dir).values() if m.starts_from is None and m.name not in firsts]


def single_prompt_variants(conf_dir: Path = CONF) -> list[str]:
    """Soft-prompt methods that combine no other method and add no attention guidance."""
    return [m.name for m in one_phase(conf_dir) if m.family == "spt" and not m.combines and not m.guided]


GROUPS = {
    "one_phase": "one-phase methods outside the adapter family (the driver's --methods)",
    "adapter": "one-phase adapter methods (the driver's --adapter_methods)",
    "two_phase": "two-phase methods as <starts_from>+<method> (the driver's --two_phase_methods)",
    "guided": "methods whose loss reads stage 4's LID heads",
    "all": "every method",
}


def group(name: str, conf_dir: Path = CONF) -> list[str]:
    """The names of a group of :data:`GROUPS`."""
    every = methods(conf_dir)
    if name == "one_phase":
        return [m.name for m in one_phase(conf_dir) if m.family != "adapter"]
    if name == "adapter":
        return [m.name for m in one_phase(conf_dir) if m.family == "adapter"]
    if name == "two_phase":
        return [m.system for m in every.values() if m.starts_from]
    if name == "guided":
        return [m.name for m in every.values() if m.guided]
    if name == "all":
        return list(every)
    raise ValueError(f"unknown group {name!r}: choose from {list(GROUPS)}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Print the names of a group of the method YAMLs, space-separated.",
        epilog="groups: " + "; ".join(f"{k}: {v}" for k, v in GROUPS.items()),
    )
    parser.add_argument("group", choices=list(GROUPS))
    parser.add_argument("--conf_dir", type=Path, default=CONF)
    args = parser.parse_args(argv)
    print(" ".join(group(args.group, args.conf_dir)))


if __name__ == "__main__":
    main()
