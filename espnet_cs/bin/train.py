"""Train a model with ESPnet's trainer: ``python -m espnet_cs.bin.train --config conf/tuning/<method>.yaml ...``.

All options of ESPnet's ``AbsTask`` apply (``--help`` lists them); the espnet-cs ones are
``--whisper_model``, ``--lid_prompt``, ``--encoder_conf``, ``--decoder_conf`` and ``--model_conf``.
Freed activation buffers go back to the system at once (``espnet_cs.host_memory``), which about
halves what a frozen-backbone step adds to the resident size on CPU.
"""

from __future__ import annotations

from espnet_cs.host_memory import fix_mmap_threshold
from espnet_cs.task import CSASRTask


def main(cmd: list[str] | None = None) -> None:
    fix_mmap_threshold()
    CSASRTask.main(cmd=cmd)


if __name__ == "__main__":
    main()
