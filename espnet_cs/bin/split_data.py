"""Split a stage-2 data dir into at most ``--nj`` data dirs of whole batches for parallel jobs.

Writes ``<out_dir>/1 .. <out_dir>/<n>`` and prints ``n`` (fewer than ``--nj`` when there are
fewer batches). Use the ``--batch_size`` the jobs will use: then merged results equal those of a
single job (see :mod:`espnet_cs.splitting`).

Example: python -m espnet_cs.bin.split_data --data_dir dump/raw/test --out_dir exp/x/logdir/split4 --nj 4 --batch_size 16
"""

from __future__ import annotations

import argparse
from pathlib import Path

from espnet_cs.splitting import write_splits


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", type=Path, required=True, help="stage-2 output (needs utt2num_samples)")
    parser.add_argument("--out_dir", type=Path, required=True)
    parser.add_argument("--nj", type=int, required=True, help="most splits to make")
    parser.add_argument("--batch_size", type=int, required=True, help="batch size of the jobs")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = get_parser().parse_args(argv)
    try:
        print(write_splits(args.data_dir, args.out_dir, args.nj, args.batch_size))
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(f"split_data.py: {error}") from error


if __name__ == "__main__":
    main()
