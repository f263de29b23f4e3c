"""Write RESULTS.md (and RESULTS.json beside it) from the scored systems of ``--exp_dir`` (stage 11).

With ``--archive``, the scored systems of ``--exp_dir`` are first copied into a results archive
(:mod:`espnet_cs.results_archive`) and the report is made from the archive, which also holds the
systems scored in earlier clones. With ``--compare_archive``, the findings set each verdict beside that
of the same claim in another benchmark regime's results. What the report holds: :mod:`espnet_cs.report`.
"""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from espnet_cs.report.comparisons import Regime
from espnet_cs.report.document import Previous, render, write
from espnet_cs.report.previous import read_rates
from espnet_cs.report.rows import GUARDED, collect, main_tables
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
    parser.add_argument(
        "--compare_archive",
        type=Path,
        help="the results archive (or exp dir) of another benchmark regime: the findings get the verdict of each "
        "claim there and whether it agrees",
    )
    parser.add_argument("--compare_label", help="what --compare_archive is (default: its path)")
    parser.add_argument(
        "--guarded",
        choices=GUARDED,
        default="tables",
        help="where the guarded rows (<system>_guard, hypotheses cut by the repetition guard) go: tables (the "
        "results tables and the sections made from them), all (also beside the decode variants), none (the "
        "hypotheses as decoded only)",
    )
    return parser


def other_regime(archive: Path, label: str | None, source: Path) -> Regime:
    """The rows of another regime's results ``archive``, to set its findings' verdicts beside those of ``source``'s."""
    if archive.resolve() == source.resolve():
        raise ValueError(f"--compare_archive {archive} is what this report is made from: name another regime's")
    tables = main_tables(collect(archive))
    if not tables:
        raise ValueError(f"--compare_archive {archive} holds no */decode_*/scores.json")
    return Regime(tables, archive, label or f"`{archive}`")


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = get_parser().parse_args(argv)
    command = shlex.join(["python", "-m", "espnet_cs.bin.report", *argv])
    try:
        previous = Previous(read_rates(args.previous), args.previous_label) if args.previous else None
        source = args.archive or args.exp_dir
        other = other_regime(args.compare_archive, args.compare_label, source) if args.compare_archive else None
        if args.archive:
            archive(args.exp_dir, args.archive, args.data_root)
        tables = collect(source)
    except (ValueError, CheckpointError) as error:  # espnet_cs.report.rows.ReportError is a ValueError
        raise SystemExit(f"report.py: {error}") from None
    if not tables:
        raise SystemExit(f"report.py: no {source}/*/decode_*/scores.json found: run the scoring stage (9) first")
    notes = args.notes.read_text(encoding="utf-8") if args.notes and args.notes.exists() else None
    text = render(tables, source, args.out, command, notes, previous, other, args.guarded)
    write(args.out, text, tables, args.guarded)


if __name__ == "__main__":
    main()
