"""Recipe stage 1 for real corpora: write Kaldi data dirs (wav.scp [segments] text utt2spk spk2utt
utt2category) from a corpus in its distributed layout.

    python -m espnet_cs.bin.prep_corpus seame --seame_dir /db/LDC2015S04 --dev_lists /db/SEAME-dev-set --data_dir data
    python -m espnet_cs.bin.prep_corpus check_seame --dev_lists /db/SEAME-dev-set --data_dir data --dump_dir dump/raw
    python -m espnet_cs.bin.prep_corpus asru2019 --asru_dir /db/asru2019 --data_dir data
    python -m espnet_cs.bin.prep_corpus aishell_test --aishell_dir /db/aishell --data_dir data
    python -m espnet_cs.bin.prep_corpus librispeech_test_clean --librispeech_dir /db/librispeech --data_dir data

Each corpus module documents its layout, splits and text normalization (espnet_cs.corpora.*).
Problems (missing folders, malformed transcript lines as file:line, ...) are all listed and the
exit status is 1; nothing is written then.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from espnet_cs.corpora import CorpusError
from espnet_cs.corpora.aishell import prepare_aishell_test
from espnet_cs.corpora.asru2019 import prepare_asru2019
from espnet_cs.corpora.librispeech import prepare_librispeech_test_clean
from espnet_cs.corpora.seame import check_dev_sets, prepare_seame


def share(value: str) -> float:
    """A fraction strictly between 0 and 1."""
    number = float(value)
    if not 0 < number < 1:
        raise argparse.ArgumentTypeError(f"expected a share between 0 and 1, got {value}")
    return number


def get_parser() -> argparse.ArgumentParser:
    """Build the command-line parser (one subcommand per corpus)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="corpus", required=True)

    def command(name: str, help: str, corpus_option: str, corpus_help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help)
        sub.add_argument(f"--{corpus_option}", type=Path, required=True, help=corpus_help)
        sub.add_argument("--data_dir", type=Path, default=Path("data"), help="where the data dirs go (default: data)")
        return sub

    def training_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--valid_share",
            type=share,
            default=0.05,
            help="share of the training utterances held out as valid (default: 0.05)",
        )
        sub.add_argument(
            "--min_seconds",
            type=float,
            default=0.1,
            help="training utterances shorter than this are dropped (default: 0.1)",
        )
        sub.add_argument("--seed", type=int, default=0, help="seed of the valid selection (default: 0)")

    lists_help = "checkout of https://github.com/zengzp0912/SEAME-dev-set (dev_man/, dev_sge/, train/wav_file.txt)"
    seame = command(
        "seame",
        "SEAME -> train valid devman devsge",
        "seame_dir",
        "dir holding the unpacked LDC2015S04 data/{conversation,interview}",
    )
    seame.add_argument("--dev_lists", type=Path, required=True, help=lists_help)
    training_options(seame)
    check = command("check_seame", "check devman/devsge against the dev lists", "dev_lists", lists_help)
    check.add_argument("--dump_dir", type=Path, help="also check <dump_dir>/<set> if formatted (stage 2)")
    asru = command(
        "asru2019",
        "ASRU 2019 -> train valid dev test",
        "asru_dir",
        "dir holding ZH+EN-200h, ZH-500h, ASRU-DEV and ASRU-TEST",
    )
    asru.add_argument("--include_500h", action="store_true", help="train on the 500-h Mandarin set too")
    training_options(asru)
    command("aishell_test", "AISHELL-1 test -> aishell_test", "aishell_dir", "dir holding data_aishell/")
    command(
        "librispeech_test_clean",
        "LibriSpeech test-clean -> librispeech_test_clean",
        "librispeech_dir",
        "dir holding LibriSpeech/test-clean",
    )
    return parser


def run(args: argparse.Namespace) -> str:
    """Prepare (or check) the corpus named by ``args.corpus``; returns a summary."""
    if args.corpus == "seame":
        counts = prepare_seame(
            args.seame_dir, args.dev_lists, args.data_dir, args.valid_share, args.min_seconds, args.seed
        )
    elif args.corpus == "asru2019":
        counts = prepare_asru2019(
            args.asru_dir, args.data_dir, args.include_500h, args.valid_share, args.min_seconds, args.seed
        )
    elif args.corpus == "aishell_test":
        counts = {"aishell_test": prepare_aishell_test(args.aishell_dir, args.data_dir / "aishell_test")}
    elif args.corpus == "librispeech_test_clean":
        out = args.data_dir / "librispeech_test_clean"
        counts = {out.name: prepare_librispeech_test_clean(args.librispeech_dir, out)}
    else:
        return "\n".join(check_dev_sets(args.data_dir, args.dev_lists, args.dump_dir))
    return ", ".join(f"{args.data_dir / name}: {n}" for name, n in counts.items()) + " utterances"


def main(argv: list[str] | None = None) -> int:
    """Run a subcommand; returns the exit status."""
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s (%(module)s:%(lineno)d) %(levelname)s: %(message)s")
    try:
        print(run(args))
    except CorpusError as e:
        print(f"prep_corpus {args.corpus}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
