"""Stage 11: pack a trained model without its backbone, for :class:`espnet_cs.api.Speech2Text`.

``python -m espnet_cs.bin.pack --exp_dir exp/spt4asr --model_file valid.loss.ave.pth --out exp/spt4asr/packed.zip``

The zip (ESPnet's packing) holds the trainable tensors (prompt reparameterizations folded), the config,
the LID heads of guided models and the backbone's identity; see :mod:`espnet_cs.packing`.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from espnet_cs.packing import pack_model


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp_dir", type=Path, required=True, help="training output dir (config.yaml, checkpoints)")
    parser.add_argument("--model_file", default="valid.loss.ave.pth", help="checkpoint inside --exp_dir")
    parser.add_argument("--out", type=Path, required=True, help="zip to write")
    parser.add_argument("--lid_heads", type=Path, help="stage 4's LID heads, if not where the config's guidance says")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        pack_model(args.exp_dir, args.model_file, args.out, args.lid_heads)
    except (FileNotFoundError, ValueError) as e:
        raise SystemExit(f"pack.py: {e}") from e


if __name__ == "__main__":
    main()
