"""The results table of each test set: one row per system, and what its columns mean."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from espnet_cs.bootstrap import RESAMPLES, SEED, rate_interval
from espnet_cs.report.cells import markdown_table, percent, section
from espnet_cs.report.rows import Row, columns


@dataclass(frozen=True)
class Rate:
    """A rate of ``scores.json`` (``key``), its column header and what it measures."""

    key: str
    header: str
    meaning: str


ERROR_RATES = (
    Rate("overall_mer", "MER", "mixed error rate of all utterances: CJK characters and English words"),
    Rate("cs_mer", "CS MER", "MER of the code-switched utterances"),
    Rate("zh_cer", "ZH CER", "character error rate of the Mandarin-only utterances"),
    Rate("en_wer", "EN WER", "word error rate of the English-only utterances"),
)
SWITCH_RATES = (
    Rate(
        "pier",
        "PIER",
        "error rate on the English words of Mandarin-matrix utterances (more Mandarin than English units), "
        "insertions next to them included",
    ),
    Rate(
        "switch_point_er",
        "switch ER",
        "error rate on the two units at each Mandarin-English switch, insertions next to them included",
    ),
    Rate(
        "language_accuracy",
        "lang. acc.",
        "share of aligned (correct or substituted) hypothesis units in the language of their reference unit",
    ),
)
RATES = ERROR_RATES + SWITCH_RATES
OTHER_COLUMNS = {
    "decoding": "the task tokens (`zh`: `<|zh|>`, `zh_en`: `<|zh|><|en|>`), whether the repetition "
    "guard cut the hypotheses (`<system>_guard`: the same decoding, cut), the audio padding and the search "
    "where it was not greedy (beam search, temperature fallback, n-gram blocking)",
    "trainable": "trainable parameters, counted for the backbone the system was trained on",
    "epochs": "finished training epochs (two-phase systems: `stage 5+stage 6`)",
    "training": "the training and validation time of the finished epochs that ESPnet's reporter records in "
    "`checkpoint.pth` (both phases of a two-phase system; start-up, checkpoint saving and averaging not included)",
    "utts": "utterances scored",
    "ins.": "the share of all errors that are insertions (looping hypotheses show up here)",
    "RTF": "decoding seconds per audio second, summed over the decoding jobs, on the machine that decoded",
}
HEADER = ["system", "decoding", "trainable", "epochs", "training", "utts", *(r.header for r in RATES), "ins.", "RTF"]


def legend() -> list[str]:
    """What the cells and columns of the results tables mean."""
    lines = [
        "Rates in percent after normalization (OpenCC t2s, NFKC, lowercase, punctuation and non-speech markers "
        "removed), over units (every CJK character, every English word), each written `rate [low, high] (n)`: its 95% bootstrap "
        f"interval over utterances (percentiles of {RESAMPLES} resamples with replacement, numpy "
        f"`default_rng({SEED})`) and the n utterances it covers (those of its category; for PIER, switch ER and "
        "lang. acc., those with such units). Columns:",
        "",
    ]
    meanings = {**{r.header: r.meaning for r in RATES}, **OTHER_COLUMNS}
    return lines + [f"- {name}: {meanings[name]}" for name in HEADER if name in meanings]


def search_words(decoding: dict) -> list[str]:
    """What a decode did beyond greedy decoding (the options ``decode_info.json`` records), e.g. ``beam 5``."""
    words = []
    if decoding.get("beam_size", 1) > 1:
        patience = decoding.get("patience", 1.0)
        words.append(f"beam {decoding['beam_size']}" + (f" (patience {patience:g})" if patience != 1.0 else ""))
    if decoding.get("length_penalty") is not None:
        words.append(f"length penalty {decoding['length_penalty']:g}")
    if decoding.get("no_repeat_ngram_size"):
        words.append(f"no repeated {decoding['no_repeat_ngram_size']}-grams")
    if decoding.get("fallback"):
        words.append("temperature fallback")
    if decoding.get("int8"):
        words.append("int8")
    return words


def decoding_cell(decoding: dict) -> str:
    padding = "30-s padding" if decoding["pad_to_30s"] else "true length"
    guard = "guard on" if decoding["guard"] else "no guard"
    return ", ".join([f"task tokens `{decoding['task_tokens']}`", guard, padding, *search_words(decoding)])


def training_cells(training: dict) -> list[str]:
    """Trainable parameters, epochs and training time; ``0, —, —`` for a system that trained nothing."""
    if not training:
        return ["0", "—", "—"]
    trainable, seconds = training["trainable"], training["seconds"]
    return [
        "—" if trainable is None else f"{trainable / 1e6:.3f}M",
        str(training["epochs"] or "—"),
        "—" if seconds is None else f"{seconds / 60:.1f} min",
    ]


def rate_cell(row: Row, key: str) -> str:
    """``rate [low, high] (utterances)`` of a rate of ``row``, ``—`` where it has none."""
    rate = row.scores.get(key)
    if rate is None:
        return "—"
    terms = row.terms(key)
    interval = rate_interval(*columns(terms, sorted(terms)))
    cell = f"{percent(rate)} [{interval.low:.1f}, {interval.high:.1f}]"
    utterances = (row.scores["details"].get(key) or {}).get("num_utts")
    return f"{cell} ({utterances})" if utterances else cell


def insertions_cell(scores: dict) -> str:
    overall = scores["details"].get("overall_mer") or {}
    errors = sum(overall.get(k, 0) for k in ("substitutions", "deletions", "insertions"))
    return f"{100 * overall.get('insertions', 0) / errors:.0f}%" if errors else "—"


def row_cells(row: Row) -> list[str]:
    """The cells of ``row`` under :data:`HEADER`."""
    return [
        f"`{row.system}`",
        decoding_cell(row.decoding),
        *training_cells(row.training),
        str(row.scores["utterances"]),
        *(rate_cell(row, rate.key) for rate in RATES),
        insertions_cell(row.scores),
        f"{row.decoding['real_time_factor']:.3f}",
    ]


def data_line(rows: list[Row]) -> str:
    """The data the rows were decoded from: data dir and audio digest (stage 2), with the systems of
    each where they differ."""
    systems = defaultdict(list)
    for row in rows:
        systems[(row.decoding["data_dir"], row.decoding["audio_sha256"][:12])].append(f"`{row.system}`")
    if len(systems) == 1:
        ((data_dir, digest),) = systems
        return f"Data: `{data_dir}`, audio sha256 `{digest}`."
    return "Data: " + "; ".join(f"`{d}`, audio sha256 `{h}` ({', '.join(s)})" for (d, h), s in systems.items()) + "."


def set_section(test_set: str, rows: list[Row]) -> list[str]:
    """The results table of one test set."""
    return section(test_set, data_line(rows), table=markdown_table(HEADER, [row_cells(row) for row in rows]))
