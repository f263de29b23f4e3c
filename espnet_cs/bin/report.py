"""Collect ``exp/*/decode_*/scores.json`` into RESULTS.md tables (one per test set).

Columns: trainable parameters, epochs and training time (trained systems: the finished epochs in
``checkpoint.pth``, or the archived ``training.json``), MER over all
utterances, MER on code-switched, CER on Mandarin-only, WER on English-only utterances, PIER,
switch-point error rate and token language accuracy (percent, :mod:`espnet_cs.scoring`), the share
of errors that are insertions, and the decoding real-time factor. Each rate is written
``rate [low, high] (utterances)``: its 95% bootstrap interval over utterances
(:mod:`espnet_cs.bootstrap`, from ``scores.json``'s ``per_utterance`` counts) and the utterances it
covers; a ``scores.json`` written before it held per-utterance counts gets the rate without
interval (stage 9 rewrites it). Rows: one per experiment dir (``zeroshot_<lid_prompt>[_guard]``
for stage 3, ``<method><tag>`` for stage 8). With ``--archive``, the scored systems of ``--exp_dir``
are first copied into a results archive (:mod:`espnet_cs.results_archive`) and the report is made
from the archive: it also holds the systems scored in earlier clones.

"Paired comparisons" lists, for each pair of :data:`PAIRED_COMPARISONS` with both systems on a
test set, the MER difference with its paired-bootstrap interval and p-value. Sets whose
utterances are all Mandarin or all English (e.g. AISHELL-1 test, LibriSpeech test-clean) also get
a forgetting table: trained systems against the zero-shot backbone.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
from collections import defaultdict
from datetime import date
from pathlib import Path

from espnet_cs.bootstrap import RESAMPLES, SEED, PairedDifference, paired_difference, rate_interval
from espnet_cs.findings import CLAIMS, findings_rows
from espnet_cs.kaldi_dir import write_atomic
from espnet_cs.results_archive import archive, system_training, trained_dir
from espnet_cs.scoring import rate_terms
from espnet_cs.trainer import CheckpointError

METRIC_COLUMNS = [("overall_mer", "MER"), ("cs_mer", "CS MER"), ("zh_cer", "ZH CER"), ("en_wer", "EN WER")]
CS_COLUMNS = [("pier", "PIER"), ("switch_point_er", "switch ER"), ("language_accuracy", "lang. acc.")]

# (system, against): the comparisons of the papers' claims on code-switched sets, the claimed better first
PAIRED_COMPARISONS: list[tuple[str, str]] = [
    pair for claim in CLAIMS if not claim.forgetting for pair in claim.comparisons
]


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp_dir", type=Path, default=Path("exp"))
    parser.add_argument(
        "--archive",
        type=Path,
        help="a results archive (espnet_cs.results_archive) to copy --exp_dir's scored systems into and report from",
    )
    parser.add_argument("--out", type=Path, default=Path("RESULTS.md"))
    parser.add_argument("--notes", type=Path, help="hand-written notes (commands, observations) put after the title")
    parser.add_argument("--previous", type=Path, help="an earlier RESULTS.md written by this script: MERs side by side")
    parser.add_argument("--previous_label", default="previous", help="what --previous is (commit, date, what changed)")
    return parser


def _percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def _system_description(info: dict) -> str:
    parts = [f"LID prompt `{info.get('lid_prompt', '?')}`"]
    parts.append("guard on" if info.get("guard") else "no guard")
    parts.append("30-s padding" if info.get("pad_to_30s", True) else "true length")
    return ", ".join(parts)


def _training_cells(training: dict) -> list[str]:
    if not training:
        return ["0", "—", "—"]
    trainable, seconds = training["trainable"], training["seconds"]
    return [
        "—" if trainable is None else f"{trainable / 1e6:.3f}M",
        str(training["epochs"] or "—"),
        "—" if seconds is None else f"{seconds / 60:.1f} min",
    ]


def _columns(terms: dict[str, tuple[int, int]], utts: list[str]) -> tuple[list[int], list[int]]:
    """Numerators and denominators of ``utts``, in that order."""
    return [terms[u][0] for u in utts], [terms[u][1] for u in utts]


def rate_cell(scores: dict, key: str) -> str:
    """``rate [low, high] (utterances)`` of a rate of ``scores.json`` (see the module docstring)."""
    rate = scores.get(key)
    if rate is None:
        return "—"
    cell = _percent(rate)
    terms = rate_terms(scores, key)
    if terms:
        interval = rate_interval(*_columns(terms, sorted(terms)))
        cell += f" [{interval.low:.1f}, {interval.high:.1f}]"
    utterances = (scores.get("details", {}).get(key) or {}).get("num_utts")
    return f"{cell} ({utterances})" if utterances else cell


def table_row(system: str, scores: dict, info: dict, training: dict) -> str:
    details = scores.get("details", {})
    cells = [f"`{system}`", _system_description(info), *_training_cells(training), str(scores["utterances"])]
    cells += [rate_cell(scores, key) for key, _ in METRIC_COLUMNS + CS_COLUMNS]
    overall = details.get("overall_mer") or {}
    errors = sum(overall.get(k, 0) for k in ("substitutions", "deletions", "insertions"))
    cells.append(f"{100 * overall.get('insertions', 0) / errors:.0f}%" if errors else "—")
    rtf = info.get("real_time_factor")
    cells.append("—" if rtf is None else f"{rtf:.3f}")
    return "| " + " | ".join(cells) + " |"


Row = tuple[str, dict, dict, dict]  # system, scores, decode info, training info


def collect(exp_dir: Path) -> dict[str, list[Row]]:
    """``{test set: [(system, scores, decode info, training info), ...]}``, zero-shot rows first."""
    tables: dict[str, list[Row]] = defaultdict(list)
    trainings: dict[Path, dict] = {}
    for scores_file in sorted(exp_dir.glob("*/decode_*/scores.json")):
        decode_dir = scores_file.parent
        info_file = decode_dir / "decode_info.json"
        info = json.loads(info_file.read_text()) if info_file.exists() else {}
        trained = trained_dir(decode_dir, info)
        if trained not in trainings:
            trainings[trained] = system_training(decode_dir.parent, decode_dir, info)
        test_set = decode_dir.name.removeprefix("decode_")
        tables[test_set].append((decode_dir.parent.name, json.loads(scores_file.read_text()), info, trainings[trained]))
    for rows in tables.values():
        rows.sort(key=lambda row: (bool(row[3]), row[0]))
    return tables


def render(tables: dict[str, list[Row]]) -> str:
    lines = [
        "# RESULTS",
        "",
        f"Made by `python -m espnet_cs.bin.report` on {date.today().isoformat()} "
        f"({platform.machine()}). Rates in percent after "
        "normalization (OpenCC t2s, NFKC, lowercase, punctuation and non-speech markers removed); "
        "tokens are CJK characters and English words. After each rate: in square brackets its 95% "
        f"bootstrap interval over utterances (percentiles of {RESAMPLES} resamples of the utterances "
        f"with replacement, numpy `default_rng({SEED})`; none for a `scores.json` written before it held "
        "per-utterance counts), in round brackets the utterances it covers (those of the category; "
        "for PIER, switch ER and lang. acc., those with such tokens). PIER: error rate on the English "
        "words of Mandarin-matrix utterances (more Mandarin than English tokens), insertions next to "
        "them included; switch ER: error rate on the two tokens at each Mandarin-English switch, "
        "insertions next to them included; lang. acc.: share of aligned (correct or substituted) "
        "hypothesis tokens in the language of their reference token. "
        "`ins.` is the share of all errors that are insertions (looping hypotheses show up there). "
        "RTF: decoding seconds per audio second, summed over the decoding run's parallel jobs, on the machine that decoded. Trainable parameters are counted "
        "for the backbone the system was trained on. Training time is the sum over the finished epochs of "
        "the training and validation time ESPnet's reporter records in `checkpoint.pth` (each epoch once, "
        "over every attempt of a resumed run; start-up, checkpoint saving and averaging not included), "
        "of stages 5 and 6 for two-stage systems (epochs `stage 5+stage 6`).",
    ]
    for test_set, rows in sorted(tables.items()):
        lines += ["", f"## {test_set}", ""]
        header = ["system", "decoding", "trainable", "epochs", "training", "utts"]
        header += [name for _, name in METRIC_COLUMNS + CS_COLUMNS] + ["ins.", "RTF"]
        lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += [table_row(*row) for row in rows]
    return "\n".join(lines) + "\n"


def paired_result(scores: dict, against_scores: dict) -> PairedDifference | str:
    """The paired bootstrap of two systems' MER difference, or why there is none."""
    terms, against_terms = rate_terms(scores, "overall_mer"), rate_terms(against_scores, "overall_mer")
    if terms is None or against_terms is None:
        return "no per-utterance counts"
    if terms.keys() != against_terms.keys():
        return "not the same utterances"
    utts = sorted(terms)
    return paired_difference(_columns(terms, utts), _columns(against_terms, utts))


def paired_row(test_set: str, system: str, scores: dict, against: str, against_scores: dict) -> str:
    """MERs of two systems on ``test_set`` and the paired bootstrap of their difference; without
    interval and p-value where a ``scores.json`` lacks per-utterance counts or the utterances differ."""
    mer, against_mer = scores["overall_mer"], against_scores["overall_mer"]
    cells = [test_set, f"`{system}`", f"`{against}`", _percent(mer), _percent(against_mer)]
    result = paired_result(scores, against_scores)
    if isinstance(result, str):
        cells += [f"{mer - against_mer:+.1f}", f"— ({result})", "—"]
    else:
        p_value = f"< {1 / RESAMPLES:g}" if result.p_value == 0 else f"{result.p_value:.3f}"
        cells += [f"{result.difference:+.1f}", f"[{result.interval.low:+.1f}, {result.interval.high:+.1f}]", p_value]
    return "| " + " | ".join(cells) + " |"


def paired_section(tables: dict[str, list[Row]]) -> list[str]:
    """The pairs of :data:`PAIRED_COMPARISONS` whose two systems were both scored on a test set."""
    rows = []
    for test_set, systems in sorted(tables.items()):
        scores = {system: system_scores for system, system_scores, _, _ in systems}
        rows += [
            paired_row(test_set, system, scores[system], against, scores[against])
            for system, against in PAIRED_COMPARISONS
            if system in scores and against in scores
        ]
    if not rows:
        return []
    note = (
        "MER of each system against the one it is compared with in the papers, on the same utterances: "
        f"difference in points (negative = lower MER), its 95% paired-bootstrap interval ({RESAMPLES} "
        f"resamples of the utterances, numpy `default_rng({SEED})`, each resample the same utterances for "
        "both systems) and the two-sided p-value: twice the share of resamples whose difference lies on "
        "the other side of zero (ties counted), at most 1 (Koehn's paired bootstrap test, two-sided)."
    )
    return [
        "",
        "## Paired comparisons",
        "",
        note,
        "",
        "| set | system | against | MER | against MER | difference | 95% interval | p |",
        "|---|---|---|---|---|---|---|---|",
        *rows,
    ]


MONOLINGUAL_METRICS = {"zh": ("zh_cer", "ZH CER"), "en": ("en_wer", "EN WER")}


def monolingual_language(scores: dict) -> str | None:
    """``zh`` or ``en`` if every scored utterance of a set is of that category, else None."""
    for language, (key, _) in MONOLINGUAL_METRICS.items():
        if (scores.get("details", {}).get(key) or {}).get("num_utts") == scores["utterances"] > 0:
            return language
    return None


def forgetting_section(tables: dict[str, list[Row]]) -> list[str]:
    """Forgetting: each trained system against the zero-shot backbone decoded with the same LID prompt
    and guard setting, on the sets whose utterances are all Mandarin or all English."""
    rows = []
    for test_set, systems in sorted(tables.items()):
        language = monolingual_language(systems[0][1])
        if language is None:
            continue
        key, name = MONOLINGUAL_METRICS[language]
        for system, scores, info, training in systems:
            baseline = next(
                (
                    row
                    for row in systems
                    if not row[3]
                    and row[2].get("lid_prompt") == info.get("lid_prompt")
                    and row[2].get("guard") == info.get("guard")
                ),
                None,
            )
            if training and baseline and scores.get(key) is not None and baseline[1].get(key) is not None:
                change = scores[key] - baseline[1][key]
                rows.append(
                    f"| {test_set} | {name} | `{system}` | {_percent(baseline[1][key])} (`{baseline[0]}`) "
                    f"| {_percent(scores[key])} | {change:+.1f} |"
                )
    if not rows:
        return []
    note = (
        "Each trained system against the zero-shot backbone decoded with the same LID prompt and guard "
        "setting, on the sets whose utterances are all Mandarin (ZH CER) or all English (EN WER); "
        "change in points, positive = worse after adaptation."
    )
    return [
        "",
        "## Forgetting on monolingual sets",
        "",
        note,
        "",
        "| set | metric | system | zero-shot | trained | change |",
        "|---|---|---|---|---|---|",
        *rows,
    ]


def findings_section(tables: dict[str, list[Row]], exp_dir: Path) -> list[str]:
    """The papers' claims (:data:`espnet_cs.findings.CLAIMS`) with the systems scored here, and the
    attention of the guided heads (stage 10) as the evidence of the AG claims."""
    scores = {test_set: {row[0]: row[1] for row in rows} for test_set, rows in tables.items()}
    monolingual = {test_set: monolingual_language(rows[0][1]) is not None for test_set, rows in tables.items()}

    def compare(test_set: str, better: str, worse: str) -> PairedDifference | None:
        if better not in scores[test_set] or worse not in scores[test_set]:
            return None
        result = paired_result(scores[test_set][better], scores[test_set][worse])
        return None if isinstance(result, str) else result

    rows = findings_rows(CLAIMS, monolingual, compare)
    if not rows:
        return []
    lines = [
        "",
        "## Findings",
        "",
        "Each claim of the two papers tested with the systems scored here: for every comparison, the MER "
        "difference (CER or WER on a monolingual set) of the system the claim says is better minus the other, "
        "in points, with its 95% paired-bootstrap interval (as in Paired comparisons). A comparison is "
        "confirmed when its interval lies below zero, contradicted when above, not resolved when it holds "
        "zero; a claim is confirmed when all its comparisons are, contradicted when any is "
        "(`espnet_cs/findings.py`). Each claim is tested on the hypotheses as decoded and, where both "
        "systems have them, on those cut by the repetition guard (`<system>_guard`): a verdict that holds "
        "only as decoded may rest on looping hypotheses. Synthetic espeak-ng speech, the backbone and budget of the runs named "
        "above, CPU.",
        "",
        "| paper | claim | set | hypotheses | comparisons (better − worse [95% interval]) | verdict |",
        "|---|---|---|---|---|---|",
        *rows,
    ]
    for report in sorted(exp_dir.glob("attention/*/attention.json")):
        systems = json.loads(report.read_text())["systems"]
        shares = ", ".join(f"`{name}` {100 * v['own_language']:.1f}%" for name, v in systems.items())
        lines += [
            "",
            f"AG evidence on {report.parent.name}: own-language share of the guided heads' LID attention: {shares}.",
        ]
    return lines


def attention_sections(exp_dir: Path, out: Path) -> list[str]:
    """LID-head statistics (stage 4) and the guided heads' attention (stage 10), where present."""
    lines = []
    heads_file = exp_dir / "lid_heads" / "lid_heads.json"
    if heads_file.exists():
        heads = json.loads(heads_file.read_text())
        heat_map = os.path.relpath(exp_dir / "lid_heads" / "heads.png", out.parent)
        n_heads = heads["n_layers"] * heads["n_heads"]
        counted = (  # files of before 2026-12-01's second sitting counted sentences, not word tokens
            f"at least at {100 * heads['min_fraction']:.0f}% of the {heads['word_tokens']} word tokens of "
            f"{heads['n_sentences']} training sentences, decoder layer 0 left out"
            if "word_tokens" in heads
            else f"in at least {100 * heads['min_fraction']:.0f}% of {heads['n_sentences']} training sentences"
        )
        lines += [
            "",
            "## LID heads",
            "",
            f"{len(heads['ranked'])} of {n_heads} decoder self-attention heads are LID heads ({counted}; "
            f"`{os.path.relpath(heads_file, out.parent)}`, heat map `{heat_map}`). Before any training, "
            f"{100 * heads['own_language_share']:.1f}% of (word token, head) pairs put more "
            "LID-column attention on their own language than on the other.",
        ]
    for report in sorted(exp_dir.glob("attention/*/attention.json")):
        data = json.loads(report.read_text())
        figure = os.path.relpath(report.with_suffix(".png"), out.parent)
        lines += [
            "",
            f"## Attention of the guided heads on {report.parent.name}",
            "",
            "Share of (word token, guided head) pairs whose larger LID-column attention is on the "
            f"token's own language (heads: {data['selection']} {data['share']:g} of `{data['lid_heads']}`); "
            f"figure for `{data['utt']}`: `{figure}`.",
            "",
            "| system | own language | pairs |",
            "|---|---|---|",
        ]
        lines += [
            f"| `{name}` | {100 * v['own_language']:.1f}% | {v['pairs']} |" for name, v in data["systems"].items()
        ]
    return lines


def previous_rates(path: Path) -> dict[str, dict[str, dict[str, str]]]:
    """``{test set: {system: {metric name: rate}}}`` of the tables of a RESULTS.md this script wrote."""
    rates: dict[str, dict[str, dict[str, str]]] = defaultdict(dict)
    test_set, header = None, []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            test_set, header = line[3:].strip(), []
        elif line.startswith("| system |"):
            header = [cell.strip() for cell in line.strip("|").split("|")]
            header = header if all(name in header for _, name in METRIC_COLUMNS) else []
        elif test_set and header and line.startswith("| `"):
            cells = dict(zip(header, (cell.strip() for cell in line.strip("|").split("|"))))
            rates[test_set][cells["system"].strip("`")] = {
                name: cells[name].split(" ")[0] for _, name in METRIC_COLUMNS
            }
    return rates


def comparison_section(tables: dict[str, list[Row]], previous: Path, label: str) -> list[str]:
    """MERs of the systems in both ``tables`` and the ``previous`` RESULTS.md, before -> now."""
    before = previous_rates(previous)
    lines = []
    for test_set, rows in sorted(tables.items()):
        common = [row for row in rows if row[0] in before.get(test_set, {})]
        if not common:
            continue
        header = ["system"] + [f"{name}: {label} → now" for _, name in METRIC_COLUMNS]
        lines += [
            "",
            f"## {test_set}: against {label}",
            "",
            "| " + " | ".join(header) + " |",
            "|" + "---|" * len(header),
        ]
        for system, scores, _, _ in common:
            then = before[test_set][system]
            cells = [f"`{system}`"] + [f"{then[name]} → {_percent(scores.get(key))}" for key, name in METRIC_COLUMNS]
            lines.append("| " + " | ".join(cells) + " |")
    return lines


def main(argv: list[str] | None = None) -> None:
    args = get_parser().parse_args(argv)
    source = args.exp_dir
    if args.archive:
        try:
            archive(args.exp_dir, args.archive)
        except (ValueError, CheckpointError) as error:
            raise SystemExit(f"report.py: {error}") from None
        source = args.archive
    try:
        tables = collect(source)
    except CheckpointError as error:
        raise SystemExit(f"report.py: {error}") from None
    if not tables:
        raise SystemExit(f"report.py: no {source}/*/decode_*/scores.json found: run the scoring stage first")
    sections = paired_section(tables) + forgetting_section(tables) + findings_section(tables, source)
    sections += attention_sections(source, args.out)
    if args.previous:
        sections += comparison_section(tables, args.previous, args.previous_label)
    text = render(tables) + "\n".join(sections) + "\n"
    if args.notes and args.notes.exists():
        title, _, rest = text.partition("\n")
        text = f"{title}\n\n{args.notes.read_text().strip()}\n{rest}"
    write_atomic(args.out, text)


if __name__ == "__main__":
    main()
