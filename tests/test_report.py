"""The report: rows read from decode dirs, the results tables, decode variants, paired comparisons, forgetting,
RESULTS.json (the findings section: tests/test_findings.py)."""

import json
from pathlib import Path

import pytest

from espnet_cs.bin import report
from espnet_cs.report.attention import lid_heads_section
from espnet_cs.report.choices import choices_section
from espnet_cs.report.comparisons import paired_section
from espnet_cs.report.document import Previous, render
from espnet_cs.report.forgetting import forgetting_section, monolingual_language
from espnet_cs.report.previous import comparison_section, rates, read_rates
from espnet_cs.report.rows import ReportError, Row, collect, main_tables
from espnet_cs.report.tables import row_cells, set_section
from espnet_cs.report.variants import variants_section
from espnet_cs.scoring import score

# two code-switched utterances with one substitution each, so every resample has each rate: MER 1
# of 5, PIER 1 of 1 (the English word), switch ER 1 of 3 (开, the word, 吧), language accuracy 5 of 5
REFS = {"u1": "我们开 meeting 吧", "u2": "他们开 party 吧"}
ONE_ERROR_EACH = {"u1": "我们开 meetings 吧", "u2": "他们开 parties 吧"}
DECODING = {
    "data_dir": "dump/raw/test",
    "audio_sha256": "a" * 64,
    "task_tokens": "zh_en",
    "guard": False,
    "pad_to_30s": False,
    "real_time_factor": 0.0123,
}
TRAINED = {"trainable": 2_055_000, "epochs": 3, "seconds": 60}
ROW_START = ["`sys`", "task tokens `zh_en`, no guard, true length", "0", "—", "—", "2"]


def scored(hyps: dict[str, str], refs: dict[str, str] = REFS) -> dict:
    """scores.json content of ``hyps`` scored against ``refs``, as stage 9 writes it."""
    return json.loads(score(refs, hyps).to_json())


def scores(utterances: int, **rates_and_counts: tuple[float | None, int]) -> dict:
    """scores.json content with only rates and covered utterances: ``zh_cer=(rate, utterances)``..."""
    return {
        "utterances": utterances,
        **{k: rate for k, (rate, _) in rates_and_counts.items()},
        "details": {k: {"num_utts": n} for k, (_, n) in rates_and_counts.items()},
    }


def row(system: str, row_scores: dict, training: dict | None = None, **decoding) -> Row:
    return Row(system, row_scores, {**DECODING, **decoding}, training or {})


def decode_dir(root: Path, system: str, test_set: str, hyps: dict[str, str], **decoding) -> Path:
    """``root/<system>/decode_<test_set>`` with scores.json and decode_info.json, as stages 3, 8 and 9 leave it."""
    path = root / system / f"decode_{test_set}"
    path.mkdir(parents=True)
    (path / "scores.json").write_text(score(REFS, hyps).to_json())
    (path / "decode_info.json").write_text(json.dumps({**DECODING, **decoding}))
    return path


def test_monolingual_language() -> None:
    assert monolingual_language(row("s", scores(2, zh_cer=(10.0, 2), en_wer=(None, 0)))) == "zh"
    assert monolingual_language(row("s", scores(3, en_wer=(5.0, 3)))) == "en"
    assert monolingual_language(row("s", scores(3, cs_mer=(9.0, 1), zh_cer=(10.0, 2)))) is None


def test_forgetting_pairs_task_tokens_and_guard() -> None:
    mixed = scores(3, cs_mer=(9.0, 1), zh_cer=(10.0, 2))
    tables = {
        "aishell_test": [
            row("zeroshot_zh_en", scores(2, zh_cer=(10.0, 2))),
            row("zeroshot_zh_en_guard", scores(2, zh_cer=(8.0, 2)), guard=True),
            row("zeroshot_zh", scores(2, zh_cer=(7.0, 2)), task_tokens="zh"),
            row("spt4asr", scores(2, zh_cer=(12.5, 2)), TRAINED),
            row("spt4asr_guard", scores(2, zh_cer=(6.0, 2)), TRAINED, guard=True),
        ],
        "librispeech_test_clean": [
            row("zeroshot_zh_en", scores(2, en_wer=(20.0, 2))),
            row("lora", scores(2, en_wer=(25.0, 2)), TRAINED),
        ],
        "devman": [row("zeroshot_zh_en", mixed), row("spt4asr", mixed, TRAINED)],
    }
    lines = forgetting_section(tables)
    assert lines[1] == "## Forgetting on monolingual sets"
    assert lines[-3:] == [
        "| aishell_test | ZH CER | `spt4asr` | 10.0 (`zeroshot_zh_en`) | 12.5 | +2.5 |",
        "| aishell_test | ZH CER | `spt4asr_guard` | 8.0 (`zeroshot_zh_en_guard`) | 6.0 | -2.0 |",
        "| librispeech_test_clean | EN WER | `lora` | 20.0 (`zeroshot_zh_en`) | 25.0 | +5.0 |",
    ]
    assert forgetting_section({"devman": tables["devman"]}) == []  # no monolingual set, no table


def test_rates_with_intervals_and_code_switching_columns() -> None:
    assert row_cells(row("sys", scored(ONE_ERROR_EACH))) == ROW_START + [
        "20.0 [20.0, 20.0] (2)",
        "20.0 [20.0, 20.0] (2)",
        "—",
        "—",
        "100.0 [100.0, 100.0] (2)",
        "33.3 [33.3, 33.3] (2)",
        "100.0 [100.0, 100.0] (2)",
        "0%",
        "0.012",
    ]
    # u2 right: MER 1 of 10, the resamples' rates run from 0 (u2 twice) to 20 (u1 twice)
    cells = row_cells(row("sys", scored({**ONE_ERROR_EACH, "u2": "他们开 party 吧"})))
    assert cells[6] == "10.0 [0.0, 20.0] (2)"
    assert cells[10] == "50.0 [0.0, 100.0] (2)"  # PIER: 1 of 2
    trained = row_cells(row("sys", scored(REFS), {"trainable": 4_760_000, "epochs": "1+1", "seconds": 294}))
    assert trained[2:5] == ["4.760M", "1+1", "4.9 min"]


def test_each_table_names_its_data() -> None:
    rows = [row("a", scored(REFS)), row("b", scored(REFS))]
    assert set_section("test", rows)[3] == f"Data: `dump/raw/test`, audio sha256 `{'a' * 12}`."
    rows.append(row("c", scored(REFS), audio_sha256="b" * 64))
    assert set_section("test", rows)[3] == (
        f"Data: `dump/raw/test`, audio sha256 `{'a' * 12}` (`a`, `b`); `dump/raw/test`, audio sha256 `{'b' * 12}` (`c`)."
    )


def test_collect_reads_rows_and_names_what_it_cannot_report(tmp_path) -> None:
    decode_dir(tmp_path, "zeroshot_zh_en", "test", ONE_ERROR_EACH)
    decode_dir(tmp_path, "zeroshot_zh_en_guard", "test", REFS, guard=True)
    tables = collect(tmp_path)
    assert [r.system for r in tables["test"]] == ["zeroshot_zh_en", "zeroshot_zh_en_guard"]
    assert tables["test"][0].scores["overall_mer"] == 20.0 and not tables["test"][0].trained
    assert tables["test"][1].decoding["guard"] is True

    old = tmp_path / "zeroshot_zh_en/decode_test/scores.json"
    old.write_text(json.dumps({k: v for k, v in json.loads(old.read_text()).items() if k != "per_utterance"}))
    with pytest.raises(ReportError, match=f"{old} holds no per-utterance counts: score it again"):
        collect(tmp_path)
    old.write_text(score(REFS, ONE_ERROR_EACH).to_json().replace('"ref_units"', '"ref_tokens"'))
    with pytest.raises(ReportError, match=f"{old} counts ref_tokens, renamed ref_units: score it again"):
        collect(tmp_path)
    old.write_text(score(REFS, ONE_ERROR_EACH).to_json())
    info = tmp_path / "zeroshot_zh_en_guard/decode_test/decode_info.json"
    info.write_text(json.dumps({k: v for k, v in DECODING.items() if k != "guard"}))
    with pytest.raises(ReportError, match=f"{info} lacks guard: decode zeroshot_zh_en_guard again"):
        collect(tmp_path)
    info.unlink()
    with pytest.raises(ReportError, match=f"{info} does not exist"):
        collect(tmp_path)


def test_paired_comparisons() -> None:
    right, wrong = scored(REFS), scored(ONE_ERROR_EACH)
    fewer = scored({"u1": "我们开 meeting 吧"}, {"u1": REFS["u1"]})
    tables = {
        "test": [
            row("zeroshot_zh_en", wrong),  # compared with nothing
            row("adapter", wrong, TRAINED),
            row("adapter_ag", right, TRAINED),
            row("adapter_phase1+adapter_ag_phase2", right, TRAINED),
            row("spt4asr", right, TRAINED),
            row("dpt", fewer, TRAINED),  # spt4asr against dpt: other utterances
            row("spt4asr_ag", wrong, TRAINED),  # guided soft prompts, no paper's, against spt4asr
        ],
        "other": [row("lpt", right, TRAINED)],  # dpt is on another set only
    }
    lines = paired_section(tables)
    assert lines[1] == "## Paired comparisons"
    assert "twice the share of resamples" in lines[3] and "1000 resamples" in lines[3]
    assert lines[5] == "| set | system | against | MER | against MER | difference | 95% interval | p |"
    assert lines[7:] == [  # in the declared order; against adapter, every resample has 0 errors against 1 of 5
        "| test | `spt4asr` | `dpt` | 0.0 | 0.0 | +0.0 | — (not the same utterances) | — |",
        "| test | `adapter_ag` | `adapter` | 0.0 | 20.0 | -20.0 | [-20.0, -20.0] | < 0.001 |",
        "| test | `adapter_phase1+adapter_ag_phase2` | `adapter` | 0.0 | 20.0 | -20.0 | [-20.0, -20.0] | < 0.001 |",
        "| test | `adapter_phase1+adapter_ag_phase2` | `adapter_ag` | 0.0 | 0.0 | +0.0 | [+0.0, +0.0] | 1.000 |",
        "| test | `spt4asr_ag` | `spt4asr` | 20.0 | 0.0 | +20.0 | [+20.0, +20.0] | < 0.001 |",
    ]
    assert paired_section({"test": tables["test"][:2]}) == []  # no declared pair present


def test_choices_set_each_candidate_beside_its_reference_run() -> None:
    right, wrong = scored(REFS), scored(ONE_ERROR_EACH)
    curve = {"run": "r", "train_loss": [3.0, 2.0], "valid_loss": [2.5, None, 2.25]}
    tables = {
        "valid": [
            row("spt4asr", right, TRAINED),  # the final system: in no choice
            row("spt4asr_lr1e-3", wrong, {**TRAINED, "learning_rate": 1e-3, "curves": [curve]}),
            row("spt4asr_lr3e-3", right, {**TRAINED, "learning_rate": 3e-3}),
            row("spt4asr_lr3e-3_beam5", right, TRAINED, decode_variant="beam5"),  # decode variants: not choices
            row("spt4asr_lr3e-3_guard", right, TRAINED, guard=True, derived_from="x"),  # guarded rows: not choices
            row("dpt_lr3e-3", right, TRAINED),  # no dpt_lr1e-3: its choice has no reference
            row("spt4asr_zero_last", right, TRAINED),  # no spt4asr_lr1e-2: no reference either
        ],
        "test": [row("spt4asr_lr1e-3", wrong, TRAINED)],  # no candidate on test
    }
    lines = choices_section(tables)
    assert lines[1] == "## Choices on the validation set"
    header = "| choice | set | system | learning rate | best validation loss | MER | difference | 95% interval | p |"
    assert lines[5] == header
    assert lines[7:] == [
        "| learning rate of SPT4ASR | valid | `spt4asr_lr1e-3` | 0.001 | 2.25 (epoch 3) | 20.0 [20.0, 20.0] (2) "
        "| — | — | — |",
        "| learning rate of SPT4ASR | valid | `spt4asr_lr3e-3` | 0.003 | — | 0.0 [0.0, 0.0] (2) | -20.0 | [-20.0, -20.0] "
        "| < 0.001 |",
    ]
    assert choices_section({"test": tables["test"]}) == []


def test_lid_heads_section_says_what_was_counted(tmp_path) -> None:
    (tmp_path / "lid_heads").mkdir()
    heads = {"ranked": [[1, 0], [2, 3]], "n_layers": 6, "n_heads": 8, "min_fraction": 0.1, "n_sentences": 300}
    heads.update(own_language_share=0.545, word_tokens=4120)
    (tmp_path / "lid_heads/lid_heads.json").write_text(json.dumps(heads))
    text = "\n".join(lid_heads_section(tmp_path, tmp_path / "RESULTS.md"))
    assert "2 of 48 decoder self-attention heads are LID heads (at least at 10% of the 4120 word tokens of 300" in text
    assert "`lid_heads/lid_heads.json`, heat map `lid_heads/heads.png`" in text and "54.5%" in text


def test_previous_results_side_by_side() -> None:
    before = {"test": [row("spt4asr", scores(2, overall_mer=(11.0, 2), cs_mer=(9.8, 1))), row("lpt", scored(REFS))]}
    now = {
        "test": [
            row("spt4asr", scores(2, overall_mer=(10.4, 2), cs_mer=(9.1, 1)), TRAINED),
            row("dpt", scores(2, overall_mer=(17.0, 2)), TRAINED),
        ]
    }
    lines = comparison_section(now, json.loads(json.dumps(rates(before))), "old padding")
    assert lines[1] == "## test: against old padding"
    assert lines[3] == (
        "| system | MER: old padding → now | CS MER: old padding → now | ZH CER: old padding → now "
        "| EN WER: old padding → now |"
    )
    assert lines[-1] == "| `spt4asr` | 11.0 → 10.4 | 9.8 → 9.1 | — → — | — → — |"  # dpt and lpt are in only one
    now = {"test": [row("spt4asr", scored(REFS), TRAINED)]}
    text = render(now, Path("exp"), Path("RESULTS.md"), "cmd", "## Notes\n\nby hand", Previous(rates(before), "old"))
    assert text.startswith("# RESULTS\n\n## Notes\n\nby hand\n\n## How this file is made\n\nMade by `cmd` (stage 11")
    assert text.endswith("| `spt4asr` | 11.0 → 0.0 | 9.8 → 0.0 | — → — | — → — |\n")


def test_report_writes_its_rates_and_takes_them_as_previous(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    decode_dir(Path("exp"), "zeroshot_zh_en", "test", ONE_ERROR_EACH)
    report.main(["--exp_dir", "exp", "--out", "before/RESULTS.md"])
    assert json.loads(Path("before/RESULTS.json").read_text())["test"]["zeroshot_zh_en"]["overall_mer"] == 20.0
    (Path("exp/zeroshot_zh_en/decode_test/scores.json")).write_text(score(REFS, REFS).to_json())
    report.main(["--exp_dir", "exp", "--previous", "before/RESULTS.json", "--previous_label", "before"])
    text = Path("RESULTS.md").read_text()
    assert "Made by `python -m espnet_cs.bin.report --exp_dir exp --previous before/RESULTS.json" in text
    assert text.endswith("| `zeroshot_zh_en` | 20.0 → 0.0 | 20.0 → 0.0 | — → — | — → — |\n")
    Path("before/RESULTS.json").write_text("| not json")
    with pytest.raises(SystemExit, match="report.py: before/RESULTS.json cannot be read as the RESULTS.json"):
        report.main(["--exp_dir", "exp", "--previous", "before/RESULTS.json"])
    assert read_rates(Path("RESULTS.json")) == {
        "test": {"zeroshot_zh_en": rates(collect(Path("exp")))["test"]["zeroshot_zh_en"]}
    }


def test_report_compares_its_findings_with_another_regimes_archive(tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    decode_dir(Path("exp"), "adapter", "test", ONE_ERROR_EACH)
    decode_dir(Path("exp"), "adapter_ag", "test", REFS)
    decode_dir(Path("results_v1"), "adapter", "test", REFS)
    decode_dir(Path("results_v1"), "adapter_ag", "test", REFS)
    report.main(
        ["--exp_dir", "exp", "--archive", "results", "--compare_archive", "results_v1", "--compare_label", "v1"]
    )
    findings = [line for line in Path("RESULTS.md").read_text().splitlines() if line.startswith("| AG |")]
    assert findings == [
        "| AG | attention guidance beats plain adapters | test | as decoded | `adapter_ag` − `adapter`: -20.0 "
        "[-20.0, -20.0] | confirmed (1 of its 2 comparisons run) | not resolved (1 of its 2 comparisons run) | no |"
    ]
    report.main(["--exp_dir", "exp", "--compare_archive", "results_v1"])
    assert "| verdict | verdict in `results_v1` | agrees |" in Path("RESULTS.md").read_text()
    for argv, message in (
        (["--archive", "results", "--compare_archive", "results/"], "--compare_archive results is what this report"),
        (["--compare_archive", "exp"], "--compare_archive exp is what this report is made from"),
        (["--compare_archive", "nothing"], "--compare_archive nothing holds no"),
    ):
        with pytest.raises(SystemExit, match=message):
            report.main(["--exp_dir", "exp", *argv])


BEAM5 = {"beam_size": 5, "patience": 1.0, "decode_variant": "beam5"}
FALLBACK = {**BEAM5, "decode_variant": "beam5_fallback", "fallback": {"temperatures": [0.2], "best_of": 5}}
LOOPING = {"u1": "我们开 meeting 吧 吧 吧 吧", "u2": "他们开 parties 吧"}  # u1: 3 insertions, u2: 1 substitution


def variant_tables() -> dict:
    derived = {"guard": True, "derived_from": "exp/x/decode_test"}
    return {
        "test": [
            row("zeroshot_zh_en", scored(LOOPING)),
            row("zeroshot_zh_en_beam5", scored(REFS), **BEAM5),
            row("lora", scored(REFS), TRAINED),  # no variant: not in the section
            row("spt4asr", scored(ONE_ERROR_EACH), TRAINED),
            row("spt4asr_guard", scored(ONE_ERROR_EACH), TRAINED, **derived),
            row("spt4asr_beam5", scored(REFS), TRAINED, **BEAM5),
            row("spt4asr_beam5_guard", scored(REFS), TRAINED, **BEAM5, **derived),
            row("spt4asr_beam5_fallback", scored(LOOPING), TRAINED, **FALLBACK),
        ]
    }


def test_variants_section_compares_each_variant_with_its_greedy_decode() -> None:
    lines = variants_section(variant_tables())
    assert lines[1] == "## Decoding: greedy, beam search, fallback"
    assert "paired-bootstrap interval (1000 resamples" in lines[3] and "inserted units per reference unit" in lines[3]
    assert lines[5:] == [
        "| set | system | decode variant | decoding | MER | difference | 95% interval | p | insertions |",
        "|---|---|---|---|---|---|---|---|---|",
        "| test | `zeroshot_zh_en` | — | greedy | 40.0 [20.0, 60.0] (2) | — | — | — | 30.0 [0.0, 60.0] |",
        "| test | `zeroshot_zh_en` | `beam5` | beam 5 | 0.0 [0.0, 0.0] (2) | -40.0 | [-60.0, -20.0] | < 0.001 "
        "| 0.0 [0.0, 0.0] |",
        "| test | `spt4asr` | — | greedy | 20.0 [20.0, 20.0] (2) | — | — | — | 0.0 [0.0, 0.0] |",
        "| test | `spt4asr` | `beam5` | beam 5 | 0.0 [0.0, 0.0] (2) | -20.0 | [-20.0, -20.0] | < 0.001 | 0.0 [0.0, 0.0] |",
        "| test | `spt4asr` | `beam5_fallback` | beam 5, temperature fallback | 40.0 [20.0, 60.0] (2) | +20.0 "
        "| [+0.0, +40.0] | 0.520 | 30.0 [0.0, 60.0] |",
    ]
    guarded = variants_section(variant_tables(), guarded=True)
    assert (
        "| test | `spt4asr` | — | greedy, guard | 20.0 [20.0, 20.0] (2) | +0.0 | [+0.0, +0.0] | 1.000 |"
        in "\n".join(guarded)
    )
    assert "| test | `spt4asr` | `beam5` | beam 5, guard |" in "\n".join(guarded)
    assert variants_section({"test": variant_tables()["test"][2:5]}) == []  # no system with a variant


@pytest.mark.parametrize(
    ("guarded", "systems"),
    [
        ("tables", ["zeroshot_zh_en", "lora", "spt4asr", "spt4asr_guard"]),
        ("all", ["zeroshot_zh_en", "lora", "spt4asr", "spt4asr_guard"]),
        ("none", ["zeroshot_zh_en", "lora", "spt4asr"]),
    ],
)
def test_results_tables_hold_the_decodes_without_a_variant(guarded, systems) -> None:
    tables = variant_tables()
    assert [r.system for r in main_tables(tables, guarded)["test"]] == systems
    text = render(tables, Path("exp"), Path("RESULTS.md"), "cmd", guarded=guarded)
    table = text.split("## test", 1)[1].split("\n## ", 1)[0]
    assert [line.split(" | ")[0].removeprefix("| ") for line in table.splitlines()[6:]] == [f"`{s}`" for s in systems]
    assert ("beam 5, guard" in text) == (guarded == "all") and "`beam5_fallback`" in text
    assert [r.base_system for r in tables["test"]][-3:] == ["spt4asr", "spt4asr", "spt4asr"]


def test_decoding_cell_names_the_search_beyond_greedy() -> None:
    assert row_cells(row("sys", scored(REFS)))[1] == "task tokens `zh_en`, no guard, true length"
    decoding = {**FALLBACK, "patience": 2.0, "no_repeat_ngram_size": 3, "length_penalty": 1.0, "int8": True}
    assert row_cells(row("sys", scored(REFS), **decoding))[1] == (
        "task tokens `zh_en`, no guard, true length, beam 5 (patience 2), length penalty 1, no repeated 3-grams, "
        "temperature fallback, int8"
    )
