"""Synthesize ``mini_cs``, a small Mandarin-English code-switching corpus, with espeak-ng.

Writes Kaldi data dirs ``<data_dir>/{train,valid,test}`` (``wav.scp text utt2spk spk2utt
utt2category``) and 16 kHz wavs under ``<wav_dir>/<split>/``. Output is deterministic for a
seed and independent of ``--nj``; rerunning resumes an interrupted run.

Example:
    python -m espnet_cs.bin.synth --data_dir data --num_train 300 --num_valid 40 \\
        --num_test 60 --seed 0 --nj 2
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from espnet_cs.synth.corpus import DEFAULT_MIX, SPLIT_SPEAKERS, make_corpus


def positive_int(value: str) -> int:
    """argparse type: an integer of at least 1."""
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return number


def get_parser() -> argparse.ArgumentParser:
    """The command-line options."""
    speakers = "; ".join(f"{split}: {' '.join(s.name for s in spks)}" for split, spks in SPLIT_SPEAKERS.items())
    parser = argparse.ArgumentParser(
        prog="python -m espnet_cs.bin.synth",
        description=__doc__.split("\n\n")[0] + f" Speakers (disjoint per split): {speakers}.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--data_dir", type=Path, default=Path("data"), help="where the data dirs train/, valid/ and test/ go"
    )
    parser.add_argument(
        "--wav_dir",
        type=Path,
        default=None,
        help="root of the audio, one subdirectory per split; None means <data_dir>/../downloads/mini_cs/wav",
    )
    parser.add_argument("--num_train", type=positive_int, default=300, help="training utterances")
    parser.add_argument("--num_valid", type=positive_int, default=40, help="validation utterances")
    parser.add_argument("--num_test", type=positive_int, default=60, help="test utterances")
    parser.add_argument("--seed", type=int, default=0, help="random seed for sentences")
    parser.add_argument("--nj", type=positive_int, default=os.cpu_count() or 1, help="parallel synthesis processes")
    parser.add_argument(
        "--mix",
        type=float,
        nargs=3,
        default=list(DEFAULT_MIX),
        metavar=("CS", "ZH", "EN"),
        help="shares of code-switched, Mandarin and English utterances",
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    """Parse ``argv`` and synthesize the corpus."""
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    sizes = {"train": args.num_train, "valid": args.num_valid, "test": args.num_test}
    make_corpus(args.data_dir, sizes, args.seed, args.nj, args.mix, args.wav_dir)


if __name__ == "__main__":
    main()
