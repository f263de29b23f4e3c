"""Write RESULTS.md (and RESULTS.json beside it) from the scored systems of ``--exp_dir`` (stage 11).

With ``--archive``, the scored systems of ``--exp_dir`` are first copied into a results archive
(:mod:`espnet_cs.results_archive`) and the report is made from the archive, which also holds the
systems scored in earlier clones. What the report holds: :mod:`espnet_cs.report`.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from espnet_cs.report.document import Previous, render, write
from espnet_cs.report.previous import read_rates
from espnet_cs.report.rows import collect
from espnet_cs.results_archive import archive
from espnet_cs.trainer import CheckpointError


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp_dir", type=Path, default=Path("exp"))
    parser.add_argument(
        "--archive",
        type=Path,
        help="a results archive (espnet_cs.results_archive) to copy --exp_dir's scored systems into and report from",
    )
    parser.add_argument(
        "--data_root",
        type=Path,
        default=Path("data"),
        help="the corpus's Kaldi data dirs: with --archive, each decoded set's <data_root>/<set>/utt2condition "
        "(acoustic conditions) is archived if it describes the decoded audio",
    )
    parser.add_argument("--out", type=Path, default=Path("RESULTS.md"), help="the report; its rates go to *.json")
    parser.add_argument(
        "--notes", type=Path, help="hand-written notes (how each table's rows were made), after the title"
    )
    parser.add_argument("--previous", type=Path, help="the RESULTS.json of an earlier report: error rates side by side")
    parser.add_argument("--previous_label", default="previous", help="what --previous is (commit, date, what changed)")
    return parser


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = get_parser().parse_args(argv)
    command = shlex.join(["python", "-m", "espnet_cs.bin.report", *argv])
    try:
        previous = Previous(read_rates(args.previous), args.previous_label) if args.previous else None
        if args.archive:
            archive(args.exp_dir, args.archive, args.data_root)
        source = args.archive or args.exp_dir
        tables = collect(source)
    except (ValueError, CheckpointError) as error:  # espnet_cs.report.rows.ReportError is a ValueError
        raise SystemExit(f"report.py: {error}") from None
    if not tables:
        raise SystemExit(f"report.py: no {source}/*/decode_*/scores.json found: run the scoring stage (9) first")
    notes = args.notes.read_text(encoding="utf-8") if args.notes and args.notes.exists() else None
    write(args.out, render(tables, source, args.out, command, notes, previous), tables)


if __name__ == "__main__":
    main()
