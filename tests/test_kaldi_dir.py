"""Tests of espnet_cs.kaldi_dir: the one Kaldi table reader, writer and spk2utt inversion."""

from __future__ import annotations

import pytest

from espnet_cs.kaldi_dir import LineProblem, read_kaldi_map, spk2utt, write_kaldi_map


def test_read_kaldi_map(tmp_path):
    f = tmp_path / "text"
    f.write_text("a 你好 world \nb\n\nc  two   spaces\n", encoding="utf-8")
    assert read_kaldi_map(f) == {"a": "你好 world", "b": "", "c": "two   spaces"}
    f.write_text("a x\na y\n", encoding="utf-8")
    with pytest.raises(ValueError, match="duplicate key 'a'"):
        read_kaldi_map(f)
    f.write_bytes("a 你好\n".encode("gbk"))
    with pytest.raises(UnicodeDecodeError):
        read_kaldi_map(f)


def test_read_kaldi_map_reports_problems_instead_of_raising(tmp_path):
    f = tmp_path / "text"
    f.write_bytes(b"b x\n \na y\n" + "c 你好\n".encode("gbk") + b"a z\n")
    problems = []
    table = read_kaldi_map(f, lambda problem, number, key: problems.append((problem, number, key)))
    assert table == {"b": "x", "a": "y", "c": "\ufffd" * 3}  # GBK 你好 is not UTF-8
    assert problems == [(LineProblem.BLANK, 2, ""), (LineProblem.NOT_UTF8, 4, "c"), (LineProblem.DUPLICATE_KEY, 5, "a")]


def test_verbatim_values_round_trip(tmp_path):
    f = tmp_path / "text"
    write_kaldi_map(f, {"u2": " hyp  two", "u1": "", "u3": "x\ty"})
    assert f.read_text() == "u1\nu2  hyp  two\nu3 x\ty\n"
    assert read_kaldi_map(f, verbatim=True) == {"u1": "", "u2": " hyp  two", "u3": "x\ty"}
    assert read_kaldi_map(f) == {"u1": "", "u2": "hyp  two", "u3": "x\ty"}


def test_spk2utt_is_sorted_like_kaldi():
    utt2spk = {"s2-b": "s2", "s1-b": "s1", "s10-a": "s10", "s1-a": "s1", "s2-a": "s2"}
    assert spk2utt(utt2spk) == {"s1": ["s1-a", "s1-b"], "s10": ["s10-a"], "s2": ["s2-a", "s2-b"]}
    assert list(spk2utt(utt2spk)) == ["s1", "s10", "s2"] and spk2utt({}) == {}


@pytest.mark.parametrize("verbatim", [False, True])
def test_crlf_file_reads_like_lf(tmp_path, verbatim):
    lf, crlf = tmp_path / "lf", tmp_path / "crlf"
    content = "a 你好 world\nb\n\nc  two   spaces\nd x\ry\n"  # d: a lone CR inside a value does not end the line
    lf.write_bytes(content.encode())
    crlf.write_bytes(content.replace("\n", "\r\n").encode())
    table = read_kaldi_map(crlf, verbatim=verbatim)
    assert table == read_kaldi_map(lf, verbatim=verbatim)
    assert list(table) == ["a", "b", "c", "d"] and not any(v.endswith("\r") for v in table.values())
    assert table["a"] == "你好 world" and table["d"] == "x\ry"
