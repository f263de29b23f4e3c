"""The report: forgetting table (trained systems against the zero-shot backbone on monolingual sets), two-stage training cells."""

import json

from espnet_cs.bin.report import attention_sections, forgetting_section, monolingual_language, paired_section, table_row
from espnet_cs.scoring import score

# two code-switched utterances with one substitution each, so every resample has each rate: MER 1
# of 5, PIER 1 of 1 (the English word), switch ER 1 of 3 (开, the word, 吧), language accuracy 5 of 5
REFS = {"u1": "我们开 meeting 吧", "u2": "他们开 party 吧"}
ONE_ERROR_EACH = {"u1": "我们开 meetings 吧", "u2": "他们开 parties 吧"}
TRUE_LENGTH = {"lid_prompt": "cs", "guard": False, "pad_to_30s": False}
ROW_START = "| `sys` | LID prompt `cs`, no guard, true length | 0 | — | — | 2 | "


def scored(hyps: dict[str, str], refs: dict[str, str] = REFS) -> dict:
    """scores.json content of ``hyps`` scored against ``refs``, as stage 9 writes it."""
    return json.loads(score(refs, hyps).to_json())


def scores(utterances: int, **rates_and_counts: tuple[float, int]) -> dict:
    """scores.json content: ``zh_cer=(rate, utterances)``..."""
    return {
        "utterances": utterances,
        **{k: rate for k, (rate, _) in rates_and_counts.items()},
        "details": {k: {"num_utts": n} for k, (_, n) in rates_and_counts.items()},
    }


def test_monolingual_language() -> None:
    assert monolingual_language(scores(2, zh_cer=(10.0, 2), en_wer=(None, 0))) == "zh"
    assert monolingual_language(scores(3, en_wer=(5.0, 3))) == "en"
    assert monolingual_language(scores(3, cs_mer=(9.0, 1), zh_cer=(10.0, 2))) is None


def test_forgetting_pairs_prompt_and_guard() -> None:
    zh, mixed = scores(2, zh_cer=(10.0, 2)), scores(3, cs_mer=(9.0, 1), zh_cer=(10.0, 2))
    trained = {"trainable": 2_055_000, "epochs": 3, "seconds": 60}
    tables = {
        "aishell_test": [
            ("zeroshot_cs", zh, {"lid_prompt": "cs", "guard": False}, {}),
            ("zeroshot_cs_guard", scores(2, zh_cer=(8.0, 2)), {"lid_prompt": "cs", "guard": True}, {}),
            ("zeroshot_single", scores(2, zh_cer=(7.0, 2)), {"lid_prompt": "single", "guard": False}, {}),
            ("spt4asr", scores(2, zh_cer=(12.5, 2)), {"lid_prompt": "cs", "guard": False}, trained),
            ("spt4asr_guard", scores(2, zh_cer=(6.0, 2)), {"lid_prompt": "cs", "guard": True}, trained),
        ],
        "librispeech_test_clean": [
            ("zeroshot_cs", scores(2, en_wer=(20.0, 2)), {"lid_prompt": "cs", "guard": False}, {}),
            ("lora", scores(2, en_wer=(25.0, 2)), {"lid_prompt": "cs", "guard": False}, trained),
        ],
        "devman": [
            ("zeroshot_cs", mixed, {"lid_prompt": "cs", "guard": False}, {}),
            ("spt4asr", mixed, {"lid_prompt": "cs", "guard": False}, trained),
        ],
    }
    lines = forgetting_section(tables)
    assert lines[1] == "## Forgetting on monolingual sets"
    assert lines[-3:] == [
        "| aishell_test | ZH CER | `spt4asr` | 10.0 (`zeroshot_cs`) | 12.5 | +2.5 |",
        "| aishell_test | ZH CER | `spt4asr_guard` | 8.0 (`zeroshot_cs_guard`) | 6.0 | -2.0 |",
        "| librispeech_test_clean | EN WER | `lora` | 20.0 (`zeroshot_cs`) | 25.0 | +5.0 |",
    ]
    assert forgetting_section({"devman": tables["devman"]}) == []  # no monolingual set, no table


def test_previous_results_side_by_side(tmp_path) -> None:
    from espnet_cs.bin.report import comparison_section, render

    trained = {"trainable": 2_055_000, "epochs": 5, "seconds": 60}
    before = {
        "test": [
            ("spt4asr", scores(2, overall_mer=(11.0, 2), cs_mer=(9.8, 1)), {"lid_prompt": "cs"}, trained),
            ("lpt", scores(2, overall_mer=(41.1, 2)), {"lid_prompt": "cs"}, trained),
        ]
    }
    previous = tmp_path / "RESULTS.md"
    previous.write_text(
        render(before) + "\n## Attention\n\n| system | own language | pairs |\n|---|---|---|\n| `lpt` | 50% | 8 |\n"
    )
    now = {
        "test": [
            ("spt4asr", scores(2, overall_mer=(10.4, 2), cs_mer=(9.1, 1)), {"lid_prompt": "cs"}, trained),
            ("dpt", scores(2, overall_mer=(17.0, 2)), {"lid_prompt": "cs"}, trained),
        ]
    }
    lines = comparison_section(now, previous, "old padding")
    assert lines[1] == "## test: against old padding"
    assert lines[-1] == "| `spt4asr` | 11.0 → 10.4 | 9.8 → 9.1 | — → — | — → — |"  # dpt and lpt are in only one of them


def test_rates_with_intervals_and_code_switching_columns() -> None:
    row = table_row("sys", scored(ONE_ERROR_EACH), TRUE_LENGTH, {})
    assert row == ROW_START + (
        "20.0 [20.0, 20.0] (2) | 20.0 [20.0, 20.0] (2) | — | — "
        "| 100.0 [100.0, 100.0] (2) | 33.3 [33.3, 33.3] (2) | 100.0 [100.0, 100.0] (2) | 0% | — |"
    )
    # u2 right: MER 1 of 10, the resamples' rates run from 0 (u2 twice) to 20 (u1 twice)
    cells = table_row("sys", scored({**ONE_ERROR_EACH, "u2": "他们开 party 吧"}), TRUE_LENGTH, {}).split(" | ")
    assert cells[6] == "10.0 [0.0, 20.0] (2)"
    assert cells[10] == "50.0 [0.0, 100.0] (2)"  # PIER: 1 of 2


def test_old_scores_without_per_utterance_counts_have_no_intervals() -> None:
    old = scored(ONE_ERROR_EACH)
    for key in ("per_utterance", "pier", "switch_point_er", "language_accuracy"):
        del old[key]
    assert table_row("sys", old, TRUE_LENGTH, {}) == ROW_START + "20.0 (2) | 20.0 (2) | — | — | — | — | — | 0% | — |"


def test_paired_comparisons() -> None:
    right, wrong = scored(REFS), scored(ONE_ERROR_EACH)
    old = {k: v for k, v in wrong.items() if k != "per_utterance"}
    fewer = scored({"u1": "我们开 meeting 吧"}, {"u1": REFS["u1"]})
    trained = {"trainable": 1, "epochs": 1, "seconds": 1}
    tables = {
        "test": [
            ("zeroshot_cs", wrong, {}, {}),  # compared with nothing
            ("adapter", wrong, {}, trained),
            ("adapter_ag", right, {}, trained),
            ("adapter_stage1+adapter_ag_stage2", right, {}, trained),
            ("lora", old, {}, trained),
            ("spt4asr", right, {}, trained),
            ("dpt", fewer, {}, trained),  # spt4asr against dpt: other utterances
        ],
        "other": [("lpt", right, {}, trained)],  # dpt is on another set only
    }
    lines = paired_section(tables)
    assert lines[1] == "## Paired comparisons"
    assert "twice the share of resamples" in lines[3] and "1000 resamples" in lines[3]
    assert lines[5] == "| set | system | against | MER | against MER | difference | 95% interval | p |"
    assert lines[7:] == [  # in the declared order; against adapter, every resample has 0 errors against 1 of 5
        "| test | `spt4asr` | `dpt` | 0.0 | 0.0 | +0.0 | — (not the same utterances) | — |",
        "| test | `lora` | `spt4asr` | 20.0 | 0.0 | +20.0 | — (no per-utterance counts) | — |",
        "| test | `adapter_ag` | `adapter` | 0.0 | 20.0 | -20.0 | [-20.0, -20.0] | < 0.001 |",
        "| test | `adapter_stage1+adapter_ag_stage2` | `adapter` | 0.0 | 20.0 | -20.0 | [-20.0, -20.0] | < 0.001 |",
        "| test | `adapter_stage1+adapter_ag_stage2` | `adapter_ag` | 0.0 | 0.0 | +0.0 | [+0.0, +0.0] | 1.000 |",
    ]
    assert paired_section({"test": tables["test"][:2]}) == []  # no declared pair present


def test_lid_heads_section_says_what_was_counted(tmp_path) -> None:
    (tmp_path / "lid_heads").mkdir()
    heads = {"ranked": [[1, 0], [2, 3]], "n_layers": 6, "n_heads": 8, "min_fraction": 0.1, "n_sentences": 300}
    heads.update(own_language_share=0.545, word_tokens=4120)
    (tmp_path / "lid_heads/lid_heads.json").write_text(json.dumps(heads))
    text = "\n".join(attention_sections(tmp_path, tmp_path / "RESULTS.md"))
    assert "2 of 48 decoder self-attention heads are LID heads (at least at 10% of the 4120 word tokens of 300" in text
    del heads["word_tokens"]  # a file that counted sentences
    (tmp_path / "lid_heads/lid_heads.json").write_text(json.dumps(heads))
    text = "\n".join(attention_sections(tmp_path, tmp_path / "RESULTS.md"))
    assert "are LID heads (in at least 10% of 300 training sentences;" in text and "54.5%" in text
