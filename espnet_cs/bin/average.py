"""Average the n best checkpoints of a training run by a criterion, with ESPnet's own averaging.

``python -m espnet_cs.bin.average --exp_dir exp/spt4asr --nbest 3`` writes
``valid.loss.ave_3best.pth`` and points ``valid.loss.ave.pth`` at it (the trainer does the same
at the end of training with ``--keep_nbest_models``; this reruns it with another n).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from espnet2.main_funcs.average_nbest_models import average_nbest_models
from espnet2.train.reporter import Reporter

from espnet_cs.trainer import CheckpointError, load_checkpoint


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp_dir", type=Path, required=True, help="training output dir (has checkpoint.pth)")
    parser.add_argument("--nbest", type=int, default=3)
    parser.add_argument("--criterion", nargs=3, default=["valid", "loss", "min"], metavar=("PHASE", "KEY", "MODE"))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    checkpoint = args.exp_dir / "checkpoint.pth"
    if not checkpoint.exists():
        raise SystemExit(f"average.py: {checkpoint} does not exist: has training run?")
    reporter = Reporter()
    try:
        reporter.load_state_dict(load_checkpoint(checkpoint)["reporter"])
    except CheckpointError as error:
        raise SystemExit(f"average.py: {error}") from None
    phase, key, mode = args.criterion
    epochs = [e for e, _ in reporter.sort_epochs_and_values(phase, key, mode)]
    missing = [e for e in epochs[: args.nbest] if not (args.exp_dir / f"{e}epoch.pth").exists()]
    if missing:
        raise SystemExit(
            f"average.py: best epochs {missing} were not kept: train with --keep_nbest_models >= {args.nbest}"
        )
    average_nbest_models(args.exp_dir, reporter, [(phase, key, mode)], args.nbest)
    logging.info("best %s.%s epochs: %s", phase, key, epochs[: args.nbest])


if __name__ == "__main__":
    main()
