"""Export a trained FFT or LoRA model for transformers and faster-whisper (see :mod:`espnet_cs.backbone.export`).

Writes ``<out_dir>/transformers`` (``save_pretrained``: weights, config, generation config,
tokenizer) and ``<out_dir>/ctranslate2`` (CTranslate2's converter: the directory
``faster_whisper.WhisperModel`` loads)::

    python -m espnet_cs.bin.export --exp_dir exp/fft --out_dir exp/fft/export [--quantization int8]
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from espnet_cs.backbone.export import ExportError, export


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp_dir", type=Path, required=True, help="training output dir (config.yaml)")
    parser.add_argument("--model_file", default="valid.loss.ave.pth", help="its model file (default: %(default)s)")
    parser.add_argument("--out_dir", type=Path, required=True)
    parser.add_argument("--quantization", help="CTranslate2 quantization of the faster-whisper model, e.g. int8")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    from espnet_cs.task import CSASRTask  # ESPnet's training stack: only once the arguments are good

    config, model_file = args.exp_dir / "config.yaml", args.exp_dir / args.model_file
    for path in (config, model_file):
        if not path.exists():
            raise SystemExit(f"export.py: {path} does not exist (did training finish?)")
    model, _ = CSASRTask.build_model_from_file(str(config), str(model_file), "cpu")
    try:
        export(model.eval(), args.out_dir / "transformers", args.out_dir / "ctranslate2", args.quantization)
    except ExportError as error:
        raise SystemExit(f"export.py: {args.exp_dir}: {error}") from error
    logging.info("exported %s -> %s/{transformers,ctranslate2}", model_file, args.out_dir)


if __name__ == "__main__":
    main()
