"""Recipe stage 2: validate a Kaldi data dir and format it into an ESPnet dump/raw-like dir.

Example: python -m espnet_cs.bin.format_data --src data/test --dst dump/raw/test --nj 4
"""

import argparse
import logging
import signal
import sys

from espnet_cs.data_format import DataFormatError, format_data_dir
from espnet_cs.workers import WorkerDied

PROBLEMS = 1
"""Exit status when the data dir has problems (listed in ``<dst>/problems.txt``)."""
INTERRUPTED = 2
"""Exit status when a worker process was killed: the work is incomplete, not wrong."""


def get_parser() -> argparse.ArgumentParser:
    """Build the command-line parser."""
    parser = argparse.ArgumentParser(
        prog="python -m espnet_cs.bin.format_data",
        description=(
            "Check every utterance of a Kaldi data dir (wav.scp [segments] text utt2spk "
            "[spk2utt] [utt2category]) and write 16 kHz mono int16 wavs (<dst>/data/<utt>.wav) "
            "with sorted wav.scp, text, utt2spk, spk2utt, utt2category, utt2num_samples and "
            "speech_shape. Unsorted files are sorted, multi-channel audio is downmixed and other "
            "sample rates are resampled (logged). Any other problem (missing/empty/corrupt audio, "
            "failing pipe, audio over 30 s, bad segment times, missing or empty transcripts, "
            "missing utt2spk entries, duplicate ids, categories outside {cs, zh, en}) is "
            "collected; all of them are printed and written to <dst>/problems.txt, and the exit "
            "status is 1 (2: a worker process was killed, the work is incomplete and a rerun resumes). Output is built in <dst>.tmp and moved to <dst> (with a .done marker) "
            "only on success; a rerun skips when <dst> is complete and made from the same <src>, the same "
            "content of its files and the same bytes of every audio file (each file's sha256 is read again "
            "when its size, modification or change time or inode differs), and says what changed otherwise."
        ),
    )
    parser.add_argument("--src", required=True, help="input Kaldi data dir, e.g. data/test")
    parser.add_argument("--dst", required=True, help="output dir, e.g. dump/raw/test")
    parser.add_argument("--nj", type=int, default=1, help="number of parallel processes (default: 1)")
    parser.add_argument("--force", action="store_true", help="redo even if <dst> is up to date")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run stage 2; returns the exit status."""
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    try:
        format_data_dir(args.src, args.dst, nj=args.nj, force=args.force)
    except DataFormatError as e:
        print(e, file=sys.stderr, end="")
        logging.error("%d problem(s); see %s/problems.txt", len(e.problems), args.dst)
        return PROBLEMS
    except WorkerDied as e:
        print(f"format_data.py: {e}; {args.dst} is left incomplete, rerunning resumes", file=sys.stderr)
        return INTERRUPTED
    except KeyboardInterrupt:
        print(f"format_data.py: interrupted; {args.dst} is left incomplete, rerunning resumes", file=sys.stderr)
        return 128 + signal.SIGINT
    return 0


if __name__ == "__main__":
    sys.exit(main())
