"""Tests of espnet_cs.scoring with hand-computed error counts."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest

from espnet_cs.scoring import (
    infer_category,
    normalize_text,
    score,
    score_dir,
    tokenize,
)
from espnet_cs.splitting import file_sha256

REPO = Path(__file__).resolve().parents[1]


def counts_of(ref: str, hyp: str) -> tuple[int, int, int, int, float]:
    """(hits, sub, del, ins, overall rate) of a single-utterance scoring."""
    c = score({"u": ref}, {"u": hyp}).counts()
    return c.hits, c.substitutions, c.deletions, c.insertions, c.error_rate


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
    assert tokenize("这个project的deadline") == ["这", "个", "project", "的", "deadline"]
    assert tokenize("我don't知道2024年") == ["我", "don't", "知", "道", "2024", "年"]
    assert tokenize("ｐｒｏｊｅｃｔ") == ["project"]


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
    assert infer_category(tokenize("这个project")) == "cs"
    assert infer_category(tokenize("我有3个苹果")) == "zh"  # digits are not English
    assert infer_category(tokenize("see you 2 morrow")) == "en"
    with pytest.raises(ValueError):
        infer_category([])


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
            "ref_tokens": 4,
            "hits": 3,
            "substitutions": 1,
            "deletions": 0,
            "insertions": 1,
            "num_utts": 1,
        }
        overall = d["details"]["overall_mer"]
        assert (overall["ref_tokens"], overall["num_utts"]) == (12, 3)


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
    header = ["metric", "rate(%)", "utts", "ref_tokens", "hits", "sub", "del", "ins"]
    assert lines[0].split() == header
    assert lines[2].split() == ["overall_mer", "50.00", "3", "12", "6", "1", "5", "0"]
    assert lines[4].split() == ["zh_cer", "100.00", "1", "4", "0", "0", "4", "0"]
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
