"""Generate ``cs_bench``: conversational code-switching speech in simulated rooms with noise.

Writes Kaldi data dirs ``<data_dir>/{train,valid,test,forget_en,forget_zh}`` (``wav.scp text
utt2spk spk2utt utt2category utt2condition``) and 16 kHz wavs under ``<wav_dir>/<set>/``, spoken by
espeak-ng or Kokoro-82M (``--synthesizer``). Output is deterministic for a seed and independent of
``--nj``; rerunning resumes an interrupted run.
The conditions are those of ``espnet_cs.synth.acoustics.ConditionRanges`` with the ranges below.

Example:
    python -m espnet_cs.bin.synth_bench --data_dir data --num_train 1200 --num_test 600 --nj 2
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from espnet_cs.bin.synth import positive_int
from espnet_cs.synth.acoustics import ConditionRanges
from espnet_cs.synth.bench import SYNTHESIZERS, make_bench
from espnet_cs.synth.corpus import DEFAULT_MIX


def float_range(value: str) -> tuple[float, float]:
    """argparse type: ``LOW,HIGH`` with ``LOW <= HIGH``."""
    try:
        low, high = (float(v) for v in value.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW,HIGH, got {value!r}") from None
    if low > high:
        raise argparse.ArgumentTypeError(f"LOW must not exceed HIGH in {value!r}")
    return low, high


def get_parser() -> argparse.ArgumentParser:
    """The command-line options."""
    defaults = ConditionRanges()
    parser = argparse.ArgumentParser(
        prog="python -m espnet_cs.bin.synth_bench",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--data_dir", type=Path, default=Path("data"), help="where the data dirs go")
    parser.add_argument(
        "--wav_dir",
        type=Path,
        default=None,
        help="root of the audio, one subdirectory per set; None means <data_dir>/../downloads/cs_bench/wav",
    )
    parser.add_argument("--num_train", type=positive_int, default=1200, help="training utterances")
    parser.add_argument("--num_valid", type=positive_int, default=100, help="validation utterances")
    parser.add_argument("--num_test", type=positive_int, default=600, help="test utterances")
    parser.add_argument("--num_forget", type=positive_int, default=150, help="utterances of each forgetting set")
    parser.add_argument("--seed", type=int, default=0, help="random seed of texts, speakers, rooms and conditions")
    parser.add_argument("--nj", type=positive_int, default=os.cpu_count() or 1, help="parallel processes")
    parser.add_argument(
        "--mix",
        type=float,
        nargs=3,
        default=list(DEFAULT_MIX),
        metavar=("CS", "ZH", "EN"),
        help="shares of code-switched, Mandarin and English utterances of train, valid and test",
    )
    parser.add_argument("--snr_db", type=float_range, default=defaults.snr_db, help="SNR range, dB")
    parser.add_argument("--rt60", type=float_range, default=defaults.rt60, help="RT60 range of the rooms, s")
    parser.add_argument(
        "--reverb_share", type=float, default=defaults.reverb_share, help="share of utterances in a room"
    )
    parser.add_argument("--rooms", type=positive_int, default=defaults.rooms, help="simulated rooms of each set")
    parser.add_argument("--synthesizer", choices=SYNTHESIZERS, default="espeak-ng", help="text-to-speech engine")
    return parser


def main(argv: list[str] | None = None) -> None:
    """Parse ``argv`` and generate the corpus."""
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    ranges = ConditionRanges(snr_db=args.snr_db, rt60=args.rt60, reverb_share=args.reverb_share, rooms=args.rooms)
    sizes = {
        "train": args.num_train,
        "valid": args.num_valid,
        "test": args.num_test,
        "forget_en": args.num_forget,
        "forget_zh": args.num_forget,
    }
    wav_dir = args.wav_dir or args.data_dir.absolute().parent / "downloads/cs_bench/wav"
    make_bench(args.data_dir, wav_dir, sizes, args.seed, args.nj, args.mix, ranges, args.synthesizer)


if __name__ == "__main__":
    main()
