"""Train a model with ESPnet's trainer: ``python -m espnet_cs.bin.train --config conf/tuning/<method>.yaml ...``.

All options of ESPnet's ``AbsTask`` apply (``--help`` lists them); the espnet-cs ones are
``--whisper_model``, ``--lid_prompt``, ``--lr_by_prefix``, ``--return_freed_memory``,
``--encoder_conf``, ``--decoder_conf`` and ``--model_conf``.
"""

from __future__ import annotations

from espnet_cs.task import CSASRTask


def main(cmd: list[str] | None = None) -> None:
    CSASRTask.main(cmd=cmd)


if __name__ == "__main__":
    main()
