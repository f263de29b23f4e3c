"""Tests of espnet_cs.scoring with hand-computed error counts."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from espnet_cs.bin.score import main as score_main
from espnet_cs.scoring import rate_terms, score, score_dir
from espnet_cs.splitting import file_sha256
from espnet_cs.text import Language, infer_category, normalize_text, unit_language, units

REPO = Path(__file__).resolve().parents[1]


def counts_of(ref: str, hyp: str) -> tuple[int, int, int, int, float]:
    """(hits, sub, del, ins, overall rate) of a single-utterance scoring."""
    c = score({"u": ref}, {"u": hyp}).counts()
    return c.hits, c.substitutions, c.deletions, c.insertions, c.error_rate


def cs_counts(ref: str, hyp: str, metric: str) -> tuple[int, int, int, int, float | None]:
    """(ref tokens, sub, del, ins, rate) that ``metric`` (pier, switch_point_er) covers in a single-utterance scoring."""
    c = score({"u": ref}, {"u": hyp}).cs_counts(metric)
    return c.ref_units, c.substitutions, c.deletions, c.insertions, c.error_rate


def write_dir(root: Path, text: str, hyp: str, utt2category: str | None = None) -> tuple[Path, Path]:
    data = root / "data"
    data.mkdir()
    (data / "text").write_text(text, encoding="utf-8")
    if utt2category is not None:
        (data / "utt2category").write_text(utt2category, encoding="utf-8")
    hyp_file = root / "hyp.txt"
    hyp_file.write_text(hyp, encoding="utf-8")
    return data, hyp_file


def parse_text(text: str) -> dict[str, str]:
    """``utt_id -> text`` of an in-memory Kaldi text (every line has text)."""
    return dict(line.split(maxsplit=1) for line in text.splitlines())


# Three utterances, errors counted by hand:
#   u1 cs: 我 今 天 有 meeting  / 我 今 天 有 meetings   -> 1 S of 5
#   u2 zh: 你 好 世 界          / 你 好 是 界 啊         -> 1 S, 1 I of 4
#   u3 en: see you tomorrow     / see you                -> 1 D of 3
#   overall: 4 errors / 12 tokens
THREE_TEXT = "u1 我今天有 meeting\nu2 你好世界\nu3 see you tomorrow\n"
THREE_HYP = "u1 我今天有meetings\nu2 你好是界啊\nu3 see you\n"
THREE_CATS = "u1 cs\nu2 zh\nu3 en\n"


def test_normalize_text():
    assert normalize_text("[music] 你好，World！(laughs) <noise> ♪") == "你好 world"
    assert normalize_text("“這個”、《項目》……（笑）") == "这个 项目"
    assert normalize_text("Don’t say 'hi' to e-mail") == "don't say hi to e mail"
    assert normalize_text("  ＡＢＣ\u3000ｘｙｚ  ") == "abc xyz"
    assert normalize_text(normalize_text("這個ｐｒｏｊｅｃｔ，OK?")) == normalize_text("這個ｐｒｏｊｅｃｔ，OK?")


def test_tokenize_mixed_script():
    assert units("这个project的deadline") == ["这", "个", "project", "的", "deadline"]
    assert units("我don't知道2024年") == ["我", "don't", "知", "道", "2024", "年"]
    assert units("ｐｒｏｊｅｃｔ") == ["project"]


def test_mixed_script_two_substitutions():
    # ref 这 个 project 的 deadline / hyp 这 个 project 得 deadlines: 2 S / 5 = 40 %
    assert counts_of("这个 project 的 deadline", "這個project得deadlines") == (3, 2, 0, 0, 40.0)


def test_traditional_equals_simplified():
    assert counts_of("这个项目很重要", "這個項目很重要") == (7, 0, 0, 0, 0.0)


def test_full_width_letters():
    assert counts_of("project 好", "ｐｒｏｊｅｃｔ好") == (2, 0, 0, 0, 0.0)


def test_empty_hypothesis_is_all_deletions():
    assert counts_of("我想去 Paris", "") == (0, 0, 4, 0, 100.0)


def test_insertions_can_exceed_100_percent():
    # ref hello / hyp hello hello hello world: 1 hit, 3 I -> 300 %
    assert counts_of("hello", "hello hello hello world") == (1, 0, 0, 3, 300.0)


def test_punctuation_and_non_speech_markers_are_not_errors():
    assert counts_of("你好，world。", "[music] 你好 (laughs) World! ♪") == (3, 0, 0, 0, 0.0)


def test_infer_category():
    assert infer_category(units("这个project")) == "cs"
    assert infer_category(units("我有3个苹果")) == "zh"  # digits are not English
    assert infer_category(units("see you 2 morrow")) == "en"
    with pytest.raises(ValueError):
        infer_category([])


def test_unit_language():
    assert [unit_language(t) for t in ("我", "meeting", "don't", "café", "2024", "привет")] == [
        Language.ZH,
        Language.EN,
        Language.EN,
        Language.EN,
        Language.OTHER,
        Language.OTHER,
    ]


# 我 们 开 meeting 吧: Mandarin-matrix (4 zh, 1 en), the one point of interest is meeting (index 3)
@pytest.mark.parametrize(
    "hyp, expected",
    [
        ("我们开 meeting 吧", (1, 0, 0, 0, 0.0)),
        ("我们开 meet ing 吧", (1, 1, 0, 1, 200.0)),  # I(meet) between 开 and meeting, S(meeting -> ing)
        ("我们开 meeting 啊 吧", (1, 0, 0, 1, 100.0)),  # inserted right after meeting
        ("啊 我们开 meeting 吧", (1, 0, 0, 0, 0.0)),  # inserted before 我: not next to meeting
        ("我们 啊 开 meeting 吧", (1, 0, 0, 0, 0.0)),  # between 们 and 开
        ("我们开吧", (1, 0, 1, 0, 100.0)),
        ("", (1, 0, 1, 0, 100.0)),  # empty hypothesis: meeting deleted
    ],
)
def test_pier_counts_errors_on_and_next_to_english_words_of_mandarin_matrix(hyp, expected):
    assert cs_counts("我们开 meeting 吧", hyp, "pier") == expected


@pytest.mark.parametrize(
    "ref",
    [
        "see you 明天",  # 2 en, 2 zh: not Mandarin-matrix
        "明天 see you",  # 2 zh, 2 en
        "我们明天见",  # no English
        "see you tomorrow",
    ],
)
def test_pier_has_no_points_of_interest_without_mandarin_matrix_english(ref):
    report = score({"u": ref}, {"u": "完全 wrong"})
    assert cs_counts(ref, "完全 wrong", "pier") == (0, 0, 0, 0, None)
    assert report.to_dict()["pier"] is None and report.to_dict()["details"]["pier"]["num_utts"] == 0


def test_switch_point_error_rate():
    # 我 有 3 apples 和 pears: languages zh zh - en zh en; the number is skipped, so the switches are
    # 有|apples, apples|和, 和|pears: switch-point tokens 有 apples 和 pears (4).
    # hyp: S(apples -> apple), I(啊) after pears: 2 errors of 4 = 50 %; MER 2 of 6; PIER (3 zh > 2 en):
    # apples and pears are the points of interest, both errors on or next to them: 2 of 2
    ref, hyp = "我有3 apples 和 pears", "我有3 apple 和 pears 啊"
    assert cs_counts(ref, hyp, "switch_point_er") == (4, 1, 0, 1, 50.0)
    assert cs_counts(ref, hyp, "pier") == (2, 1, 0, 1, 100.0)
    assert counts_of(ref, hyp)[1:] == (1, 0, 1, pytest.approx(100 / 3))
    # 开|meeting, meeting|吧: an insertion before 我 is next to no switch-point token, one after 吧 is
    assert cs_counts("我们开 meeting 吧", "啊 我们开 meeting 吧", "switch_point_er") == (3, 0, 0, 0, 0.0)
    assert cs_counts("我们开 meeting 吧", "我们开 meeting 吧 啊", "switch_point_er") == (3, 0, 0, 1, 100 / 3)
    assert cs_counts("我们开 meeting 吧", "", "switch_point_er") == (3, 0, 3, 0, 100.0)
    assert cs_counts("我有3个", "我有三个", "switch_point_er") == (0, 0, 0, 0, None)  # no English: no switch
    assert cs_counts("see you", "", "switch_point_er") == (0, 0, 0, 0, None)


def test_language_accuracy_over_aligned_pairs():
    def accuracy(ref: str, hyp: str) -> tuple[int, int, float | None]:
        c = score({"u": ref}, {"u": hyp}).language_counts()
        return c.pairs, c.matches, c.accuracy

    assert accuracy("我想去 paris", "我想去怕") == (4, 3, 75.0)  # S(paris -> 怕): en -> zh
    assert accuracy("我有3个", "我有三个") == (4, 3, 75.0)  # S(3 -> 三): a number is neither language
    assert accuracy("我想去 paris 了", "我想去 pairs 了 啊") == (5, 5, 100.0)  # S within English; I not a pair
    assert accuracy("我想去 paris", "") == (0, 0, None)  # empty hypothesis: no aligned pair
    assert score({"u": "我想去 paris"}, {}).to_dict()["language_accuracy"] is None


def test_code_switching_metrics_aggregate_over_utterances():
    refs = {"a": "我们开 meeting 吧", "b": "我有3 apples 和 pears", "c": "see you", "d": "我想去 paris"}
    hyps = {"a": "我们开 meet ing 吧", "b": "我有3 apple 和 pears 啊", "c": "see you", "d": "我想去怕"}
    d = score(refs, hyps).to_dict()
    # PIER: a 2 of 1, b 2 of 2, d 1 of 1 (paris, 3 zh > 1 en); c has no point of interest
    assert d["pier"] == pytest.approx(100 * 5 / 4)
    assert d["details"]["pier"] == {
        "error_rate": 125.0,
        "ref_units": 4,
        "hits": 1,
        "substitutions": 3,
        "deletions": 0,
        "insertions": 2,
        "num_utts": 3,
    }
    # switch points: a 开 meeting 吧 (2 errors), b 4 tokens (2 errors), d 去 paris (1 error)
    assert d["switch_point_er"] == pytest.approx(100 * 5 / 9)
    # pairs: a 5 (ing is en), b 6, c 2, d 4 with one mismatch
    assert d["language_accuracy"] == pytest.approx(100 * 16 / 17)
    assert d["details"]["language_accuracy"] == {
        "accuracy": d["language_accuracy"],
        "pairs": 17,
        "matches": 16,
        "num_utts": 4,
    }
    assert d["per_utterance"]["a"] == {
        "category": "cs",
        "ref_units": 5,
        "hits": 4,
        "substitutions": 1,
        "deletions": 0,
        "insertions": 1,
        "pier": {"ref_units": 1, "hits": 0, "substitutions": 1, "deletions": 0, "insertions": 1},
        "switch_point": {"ref_units": 3, "hits": 2, "substitutions": 1, "deletions": 0, "insertions": 1},
        "language": {"pairs": 5, "matches": 5},
    }
    assert list(d["per_utterance"]) == ["a", "b", "c", "d"]


def test_rate_terms_from_scores_json():
    d = json.loads(score(parse_text(THREE_TEXT), parse_text(THREE_HYP), parse_text(THREE_CATS)).to_json())
    assert rate_terms(d, "overall_mer") == {"u1": (1, 5), "u2": (2, 4), "u3": (1, 3)}
    assert rate_terms(d, "zh_cer") == {"u2": (2, 4)}
    assert rate_terms(d, "pier") == {"u1": (1, 1)}  # meeting in 我 今 天 有 meeting
    assert rate_terms(d, "switch_point_er") == {"u1": (1, 2)}  # 有 and meeting
    assert rate_terms(d, "language_accuracy") == {"u1": (5, 5), "u2": (4, 4), "u3": (2, 2)}
    del d["per_utterance"]  # a scores.json of an older version
    assert rate_terms(d, "overall_mer") is None


def test_per_category_aggregation_inferred_and_given():
    refs = parse_text(THREE_TEXT)
    hyps = parse_text(THREE_HYP)
    for categories in (None, parse_text(THREE_CATS)):
        d = score(refs, hyps, categories).to_dict()
        assert d["cs_mer"] == pytest.approx(20.0)
        assert d["zh_cer"] == pytest.approx(50.0)
        assert d["en_wer"] == pytest.approx(100 / 3)
        assert d["overall_mer"] == pytest.approx(100 / 3)
        assert d["utterances"] == 3
        assert d["details"]["zh_cer"] == {
            "error_rate": 50.0,
            "ref_units": 4,
            "hits": 3,
            "substitutions": 1,
            "deletions": 0,
            "insertions": 1,
            "num_utts": 1,
        }
        overall = d["details"]["overall_mer"]
        assert (overall["ref_units"], overall["num_utts"]) == (12, 3)


def test_utt2category_overrides_inference():
    d = score({"a": "你好 ok"}, {"a": "你好 ok"}, {"a": "zh"}).to_dict()
    assert d["zh_cer"] == 0.0 and d["cs_mer"] is None


def test_absent_categories_are_null():
    d = json.loads(score({"a": "你好"}, {"a": "你"}).to_json())
    assert d["zh_cer"] == 50.0 and d["overall_mer"] == 50.0
    assert d["cs_mer"] is None and d["en_wer"] is None
    assert d["details"]["en_wer"]["error_rate"] is None
    assert d["details"]["en_wer"]["num_utts"] == 0


def test_missing_hypothesis_is_empty_and_listed(caplog):
    with caplog.at_level(logging.WARNING):
        report = score({"a": "你好", "b": "hi there"}, {"b": "hi there"})
    assert report.missing_hypotheses == ["a"]
    assert report.counts().deletions == 2 and report.counts().error_rate == 50.0
    assert "no hypothesis" in caplog.text and "a" in caplog.text


@pytest.mark.parametrize(
    "refs, hyps, categories, message",
    [
        ({"a": "你好"}, {"a": "你好", "zz": "x"}, None, "not in the reference: zz"),
        ({"a": "你好", "b": "[noise] ，。"}, {}, None, "'b' is empty after normalization"),
        ({"a": "你好", "b": "hi"}, {}, {"a": "zh"}, "no category: b"),
        ({"a": "你好"}, {}, {"a": "mandarin"}, "category not in"),
        ({}, {}, None, "no reference"),
    ],
)
def test_bad_input_raises(refs, hyps, categories, message):
    with pytest.raises(ValueError, match=message):
        score(refs, hyps, categories)


def test_alignment_text():
    refs = {"u1": "这个 project 的 deadline", "u2": "ok 好"}
    report = score(refs, {"u1": "這個project得deadlines"})
    assert report.alignments() == (
        "id: u1\n"
        "category: cs\n"
        "Scores: (#C #S #D #I) 3 2 0 0\n"
        "REF:  这 个 project 的 deadline\n"
        "HYP:  这 个 project 得 deadlines\n"
        "Eval:               S  S\n"
        "\n"
        "id: u2\n"
        "category: cs\n"
        "Scores: (#C #S #D #I) 0 0 2 0\n"
        "REF:  ok 好\n"
        "HYP:  ** **\n"
        "Eval: D  D\n"
    )
    insert = score({"a": "hi"}, {"a": "hi 你"}).utts[0].pralign().splitlines()[3:]
    assert insert == ["REF:  hi **", "HYP:  hi 你", "Eval:    I"]


def test_score_dir_writes_outputs(tmp_path):
    hyp_text = THREE_HYP.replace("u3 see you\n", "u3\n")
    data, hyp = write_dir(tmp_path, THREE_TEXT, hyp_text, THREE_CATS)
    out = tmp_path / "decode" / "test"
    report = score_dir(data, hyp, out)
    assert sorted(p.name for p in out.iterdir()) == ["alignments.txt", "result.txt", "scores.json"]
    scores = json.loads((out / "scores.json").read_text(encoding="utf-8"))
    assert scores == report.to_dict()
    assert scores["en_wer"] == 100.0  # "u3" with no text: 3 deletions
    assert scores["missing_hypotheses"] == []
    assert (out / "result.txt").read_text(encoding="utf-8") == report.summary()
    alignments = (out / "alignments.txt").read_text(encoding="utf-8")
    assert "id: u3\ncategory: en\nScores: (#C #S #D #I) 0 0 3 0\n" in alignments


def test_cli_end_to_end(tmp_path):
    data, hyp = write_dir(tmp_path, THREE_TEXT, THREE_HYP.replace("u2 你好是界啊\n", ""))
    out = tmp_path / "decode"
    cmd = [sys.executable, "-m", "espnet_cs.bin.score", "--data_dir", str(data), "--hyp", str(hyp)]
    proc = subprocess.run(cmd + ["--out_dir", str(out)], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    # u2 missing -> 4 deletions; overall (1 + 4 + 1) / 12 = 50 %
    lines = proc.stdout.splitlines()
    header = ["metric", "rate(%)", "utts", "ref_units", "hits", "sub", "del", "ins"]
    assert lines[0].split() == header
    assert lines[2].split() == ["overall_mer", "50.00", "3", "12", "6", "1", "5", "0"]
    assert lines[4].split() == ["zh_cer", "100.00", "1", "4", "0", "0", "4", "0"]
    assert lines[6].split() == ["pier", "100.00", "1", "1", "0", "1", "0", "0"]  # meetings for meeting
    assert lines[7].split() == ["switch_point_er", "50.00", "1", "2", "1", "1", "0", "0"]  # 有 meeting
    # pairs: 5 of u1, 2 of u3 (u2 has no hypothesis)
    assert lines[-2] == "language accuracy: 100.00% of 7 aligned pairs"
    assert lines[-1] == "missing hypotheses: 1"
    assert "no hypothesis, scored as empty: u2" in proc.stderr
    scores = json.loads((out / "scores.json").read_text(encoding="utf-8"))
    assert scores["overall_mer"] == 50.0 and scores["missing_hypotheses"] == ["u2"]

    hyp.write_text("u9 unknown\n", encoding="utf-8")
    proc = subprocess.run(cmd + ["--out_dir", str(out)], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 1 and "not in the reference: u9" in proc.stderr


def test_cli_help():
    cmd = [sys.executable, "-m", "espnet_cs.bin.score", "--help"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0 and "--data_dir" in proc.stdout and "utt2category" in proc.stdout


def test_hypotheses_of_other_audio_are_refused_and_their_scores_removed(tmp_path):
    data, hyp = write_dir(tmp_path, THREE_TEXT, THREE_HYP)
    (data / "utt2sha256").write_text("u1 a1\nu2 b2\nu3 c3\n")  # stage 2's digests of the audio
    decode = hyp.parent
    info = {"audio_sha256": file_sha256(data / "utt2sha256")}
    (decode / "decode_info.json").write_text(json.dumps(info))
    cmd = [sys.executable, "-m", "espnet_cs.bin.score", "--data_dir", str(data), "--hyp", str(hyp), "--out_dir"]
    assert subprocess.run(cmd + [str(decode)], cwd=REPO, capture_output=True).returncode == 0
    assert (decode / "scores.json").exists()
    (data / "utt2sha256").write_text("u1 a1\nu2 b2\nu3 new\n")  # stage 2 reformatted changed audio of u3
    proc = subprocess.run(cmd + [str(decode)], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 1
    assert f"{hyp} was decoded from other audio than {data} holds now: decode it again" in proc.stderr
    assert not any((decode / name).exists() for name in ("scores.json", "result.txt", "alignments.txt"))
    (decode / "decode_info.json").write_text("{}")  # written before decodes recorded their audio
    proc = subprocess.run(cmd + [str(decode)], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 1 and "decoded by an older version of espnet_cs" in proc.stderr


def test_cli_rates_by_condition(tmp_path, capsys):
    data, hyp = write_dir(tmp_path, THREE_TEXT, THREE_HYP, THREE_CATS)
    conditions = tmp_path / "utt2condition"
    conditions.write_text(
        "u1 speed=1.0 rt60=dry noise=none level=-20.0\n"
        "u2 speed=1.1 rt60=0.31 noise=none level=-25.0\n"
        "u3 speed=0.9 rt60=dry noise=none level=-30.0\n"
    )
    out = tmp_path / "decode"
    score_main(["--data_dir", str(data), "--hyp", str(hyp), "--out_dir", str(out), "--conditions", str(conditions)])
    scores = json.loads((out / "scores.json").read_text(encoding="utf-8"))
    plain = score_dir(data, hyp, tmp_path / "plain").to_dict()
    assert {k: v for k, v in scores.items() if k != "by_condition"} == plain  # the other keys as without the flag
    # clean: u1 (1 S of 5) and u3 (1 D of 3); reverberant: u2 (1 S, 1 I of 4)
    assert scores["by_condition"] == {
        "clean": {"utterances": 2, "overall_mer": 25.0, "cs_mer": 20.0, "en_wer": 100 / 3},
        "reverberant": {"utterances": 1, "overall_mer": 50.0, "zh_cer": 50.0},
    }
    result = (out / "result.txt").read_text(encoding="utf-8")
    assert capsys.readouterr().out == result
    table = result.split("by acoustic condition (rate %)\n")[1].splitlines()
    assert table[0].split() == ["condition", "utts", "overall_mer", "cs_mer", "zh_cer", "en_wer"]
    assert table[2].split() == ["clean", "2", "25.00", "20.00", "n/a", "33.33"]
    assert table[3].split() == ["reverberant", "1", "50.00", "n/a", "50.00", "n/a"]

    conditions.write_text("u1 speed=1.0 rt60=dry noise=none\nu2 speed=1.0 rt60=dry noise=rain\n")
    with pytest.raises(SystemExit, match=f"{conditions}:2: utterance u2: noise=rain is none of"):
        score_main(["--data_dir", str(data), "--hyp", str(hyp), "--out_dir", str(out), "--conditions", str(conditions)])
    conditions.write_text("u1 speed=1.0 rt60=dry noise=none\n")
    with pytest.raises(SystemExit, match=f"{conditions} has no condition for 2 utterances: u2, u3"):
        score_main(["--data_dir", str(data), "--hyp", str(hyp), "--out_dir", str(out), "--conditions", str(conditions)])
