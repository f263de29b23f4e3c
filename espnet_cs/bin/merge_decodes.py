"""Merge the decode dirs of the splits of a data dir (``espnet_cs.bin.decode`` on each split) into one.

The merged ``text``, ``token`` and ``token_lang`` equal what a single job writes; its
``decode_info.json`` has the splits' settings, the whole data dir, and the summed cost
(``jobs``: how many splits). Fails, naming the split, if one is incomplete, was decoded with other
settings, or the splits do not cover the data dir exactly once.

Example: python -m espnet_cs.bin.merge_decodes --data_dir dump/raw/test --out_dir exp/x/decode_test exp/x/decode_test/logdir/output.{1,2}
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from espnet_cs.decode_dir import merge_decode_dirs


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("split_dirs", type=Path, nargs="+", help="decode dirs of the splits")
    parser.add_argument("--data_dir", type=Path, required=True, help="the data dir that was split")
    parser.add_argument("--out_dir", type=Path, required=True)
    parser.add_argument("--derived_from", help="for guarded hypotheses: the merged dir they are cut from")
    return parser


def main(argv: list[str] | None = None) -> None:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        info = merge_decode_dirs(args.split_dirs, args.data_dir, args.out_dir, args.derived_from)
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(f"merge_decodes.py: {error}") from error
    logging.info("merged %d splits: %d utterances -> %s", info["jobs"], info["utterances"], args.out_dir)


if __name__ == "__main__":
    main()
