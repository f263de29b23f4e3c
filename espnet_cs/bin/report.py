"""Collect ``exp/*/decode_*/scores.json`` into RESULTS.md tables (one per test set).

Columns: MER over all utterances, MER on code-switched, CER on Mandarin-only, WER on
English-only utterances (percent), with the share of errors that are insertions, and the decoding
real-time factor. Rows: one per experiment dir (``zeroshot_<prompt>[_guard]`` for stage 3).
"""

from __future__ import annotations

import argparse
import json
import platform
from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Optional

import torch

from espnet_cs.kaldi_dir import write_atomic

METRIC_COLUMNS = [("overall_mer", "MER"), ("cs_mer", "CS MER"), ("zh_cer", "ZH CER"), ("en_wer", "EN WER")]


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp_dir", type=Path, default=Path("exp"))
    parser.add_argument("--out", type=Path, default=Path("RESULTS.md"))
    return parser


def _percent(value: Optional[float]) -> str:
    return "—" if value is None else f"{value:.1f}"


def _system_description(info: dict) -> str:
    parts = [f"prompt `{info.get('prompt', '?')}`"]
    parts.append("guard on" if info.get("guard") else "no guard")
    parts.append("30-s padding" if info.get("pad_to_30s", True) else "true length")
    return ", ".join(parts)


def table_row(system: str, scores: dict, info: dict) -> str:
    details = scores.get("details", {})
    cells = [f"`{system}`", _system_description(info), str(scores["utterances"])]
    for key, _ in METRIC_COLUMNS:
        detail = details.get(key) or {}
        rate = _percent(scores.get(key))
        if detail.get("ref_tokens"):
            rate += f" ({detail.get('num_utts', 0)})"
        cells.append(rate)
    overall = details.get("overall_mer") or {}
    errors = sum(overall.get(k, 0) for k in ("substitutions", "deletions", "insertions"))
    cells.append(f"{100 * overall.get('insertions', 0) / errors:.0f}%" if errors else "—")
    rtf = info.get("real_time_factor")
    cells.append("—" if rtf is None else f"{rtf:.3f}")
    return "| " + " | ".join(cells) + " |"


def collect(exp_dir: Path) -> dict[str, list[tuple[str, dict, dict]]]:
    """``{test set: [(system, scores, decode info), ...]}`` sorted by system name."""
    tables: dict[str, list[tuple[str, dict, dict]]] = defaultdict(list)
    for scores_file in sorted(exp_dir.glob("*/decode_*/scores.json")):
        decode_dir = scores_file.parent
        info_file = decode_dir / "decode_info.json"
        info = json.loads(info_file.read_text()) if info_file.exists() else {}
        test_set = decode_dir.name.removeprefix("decode_")
        tables[test_set].append((decode_dir.parent.name, json.loads(scores_file.read_text()), info))
    return tables


def render(tables: dict[str, list[tuple[str, dict, dict]]]) -> str:
    lines = [
        "# RESULTS",
        "",
        f"Made by `python -m espnet_cs.bin.report` on {date.today().isoformat()} "
        f"({platform.machine()}, {torch.get_num_threads()} torch threads). Rates in percent after "
        "normalization (OpenCC t2s, NFKC, lowercase, punctuation and non-speech markers removed); "
        "tokens are CJK characters and English words. In brackets: utterances in that category. "
        "`ins.` is the share of all errors that are insertions (looping hypotheses show up there). "
        "RTF: decoding seconds per audio second on this machine.",
    ]
    for test_set, rows in sorted(tables.items()):
        lines += ["", f"## {test_set}", ""]
        header = ["system", "setup", "utts"] + [name for _, name in METRIC_COLUMNS] + ["ins.", "RTF"]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += [table_row(system, scores, info) for system, scores, info in rows]
    return "\n".join(lines) + "\n"


def main(argv: Optional[list[str]] = None) -> None:
    args = get_parser().parse_args(argv)
    tables = collect(args.exp_dir)
    if not tables:
        raise SystemExit(f"report.py: no {args.exp_dir}/*/decode_*/scores.json found: run the scoring stage first")
    write_atomic(args.out, render(tables))


if __name__ == "__main__":
    main()
