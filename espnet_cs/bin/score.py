"""Score code-switching ASR hypotheses: MER overall and on cs utterances, CER on Mandarin-only,
WER on English-only ones (see :mod:`espnet_cs.scoring` for normalization and edge cases).

    python -m espnet_cs.bin.score --data_dir data/test \\
        --hyp exp/x/decode_test/text --out_dir exp/x/decode_test
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from espnet_cs.scoring import score_dir


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--data_dir",
        type=Path,
        required=True,
        help="reference Kaldi data dir with 'text' and optionally 'utt2category' (cs/zh/en per "
        "utterance; inferred from the reference text when absent)",
    )
    parser.add_argument(
        "--hyp",
        type=Path,
        required=True,
        help="hypotheses in Kaldi 'text' format: '<utt-id> [text...]' per line",
    )
    parser.add_argument(
        "--out_dir",
        type=Path,
        required=True,
        help="where scores.json, result.txt and alignments.txt are written",
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    args = get_parser().parse_args(argv)
    logging.basicConfig(format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    try:
        report = score_dir(args.data_dir, args.hyp, args.out_dir)
    except (OSError, ValueError) as e:
        sys.exit(f"score.py: error: {e}")
    print(report.summary(), end="")


if __name__ == "__main__":
    main()
