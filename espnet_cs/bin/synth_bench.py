"""Generate ``cs_bench``: conversational code-switching speech in simulated rooms with noise.

Writes Kaldi data dirs ``<data_dir>/{train,valid,test,forget_en,forget_zh}`` (``wav.scp text
utt2spk spk2utt utt2category utt2condition``) and 16 kHz wavs under ``<wav_dir>/<set>/``, spoken by
espeak-ng or Kokoro-82M (``--synthesizer``). Output is deterministic for a seed and independent of
``--nj``; rerunning resumes an interrupted run.
The conditions are those of ``espnet_cs.synth.acoustics.ConditionRanges`` with the ranges below.
With ``--conditions_only``, only each set's ``utt2condition`` is written, from the plan and the rooms
(simulated, or read from the rooms cache in ``--wav_dir``), without speech: the conditions of a corpus
generated with the same options.

Example:
    python -m espnet_cs.bin.synth_bench --data_dir data --num_train 1200 --num_test 600 --nj 2
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from espnet_cs.bin.synth import positive_int
from espnet_cs.kaldi_dir import write_kaldi_map
from espnet_cs.synth.acoustics import ConditionRanges
from espnet_cs.synth.bench import SETS, SYNTHESIZERS, make_bench, plan, rooms_of
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
    parser.add_argument("--sets", nargs="+", choices=SETS, default=list(SETS), help="the sets to generate")
    parser.add_argument(
        "--conditions_only",
        action="store_true",
        help="write only <data_dir>/<set>/utt2condition (no speech; the rooms are simulated or read from their cache)",
    )
    return parser


def write_conditions(
    data_dir: Path,
    wav_dir: Path,
    sizes: dict[str, int],
    seed: int,
    nj: int,
    mix: Sequence[float],
    ranges: ConditionRanges,
    synthesizer: str,
) -> None:
    """Write the ``utt2condition`` that :func:`espnet_cs.synth.bench.make_bench` writes for each set, without speech."""
    for set_name, num in sizes.items():
        utterances = plan(set_name, num, seed, mix, ranges, synthesizer)
        wav_dir.mkdir(parents=True, exist_ok=True)
        with ProcessPoolExecutor(nj) as pool:
            _, rt60s = rooms_of(set_name, seed, ranges, wav_dir, pool)
        (data_dir / set_name).mkdir(parents=True, exist_ok=True)
        write_kaldi_map(
            data_dir / set_name / "utt2condition", {u.utt_id: u.condition.describe(rt60s) for u in utterances}
        )
        logging.info(f"{data_dir / set_name}/utt2condition: {num} utterances")


def main(argv: list[str] | None = None) -> None:
    """Parse ``argv`` and generate the corpus."""
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    ranges = ConditionRanges(snr_db=args.snr_db, rt60=args.rt60, reverb_share=args.reverb_share, rooms=args.rooms)
    nums = {"train": args.num_train, "valid": args.num_valid, "test": args.num_test}
    sizes = {set_name: nums.get(set_name, args.num_forget) for set_name in SETS if set_name in args.sets}
    wav_dir = args.wav_dir or args.data_dir.absolute().parent / "downloads/cs_bench/wav"
    generate = write_conditions if args.conditions_only else make_bench
    generate(args.data_dir, wav_dir, sizes, args.seed, args.nj, args.mix, ranges, args.synthesizer)


if __name__ == "__main__":
    main()
