"""Train a model with ESPnet's trainer: ``python -m espnet_cs.bin.train --config conf/tuning/<method>.yaml ...``.

All options of ESPnet's ``AbsTask`` apply (``--help`` lists them); the espnet-cs ones are
``--whisper_model``, ``--task_tokens``, ``--lr_by_prefix``, ``--return_freed_memory``,
``--encoder_conf``, ``--decoder_conf`` and ``--model_conf``.

The ``--config`` file is read strictly (:mod:`espnet_cs.config_yaml`: a repeated key is an
error) and its keys, and those of its ``encoder_conf``, ``decoder_conf`` and ``model_conf``,
are checked before ESPnet starts; so are the names this release renamed (:mod:`espnet_cs.renamed`). A configuration error (:class:`ConfigError`, also one found
while the model is built) ends the run with one line naming the file and the key, exit status
1; ``--verbose`` (taken off before ESPnet parses the rest) shows its traceback instead.
"""

from __future__ import annotations

import sys
from pathlib import Path

from espnet_cs.config_yaml import ConfigError, load_yaml_mapping
from espnet_cs.options import check_options
from espnet_cs.renamed import refuse_renamed_training_options
from espnet_cs.task import CSASRTask

VERBOSE = "--verbose"


def config_file(argv: list[str]) -> str | None:
    """The value of the last ``--config`` of ``argv`` (ESPnet's parser keeps the last), None if none."""
    path = None
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            path = argv[i + 1]
        elif arg.startswith("--config="):
            path = arg.split("=", 1)[1]
    return path


def check_config(path: str) -> None:
    """Read the config file ``path`` strictly and check its keys against the options of training
    and those of its encoder, decoder and model sections against their classes.

    Raises:
        ConfigError: naming ``path`` and the repeated or unknown key.
    """
    if not Path(path).is_file():
        raise ConfigError(f"{path}: no such config file")
    config = load_yaml_mapping(path)
    refuse_renamed_training_options(config, path)
    known = {action.dest for action in CSASRTask.get_parser()._actions}
    unknown = [key for key in config if key not in known]
    if unknown:
        raise ConfigError(f"{path}: unknown key(s) {unknown}: not options of espnet_cs.bin.train (--help lists them)")
    for choices in CSASRTask.class_choices_list:
        try:
            class_ = choices.get_class(config.get(choices.name, choices.default))
            check_options(class_, config.get(f"{choices.name}_conf") or {}, f"{choices.name}_conf of {class_.__name__}")
        except ValueError as e:
            raise ConfigError(f"{path}: {e}") from None


def main(cmd: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if cmd is None else cmd)
    verbose = VERBOSE in argv
    argv = [arg for arg in argv if arg != VERBOSE]
    try:
        path = config_file(argv)
        if path is not None:
            check_config(path)
        CSASRTask.main(cmd=argv)
    except ConfigError as e:
        if verbose:
            raise
        sys.exit(f"espnet_cs.bin.train: {e}")


if __name__ == "__main__":
    main()
