"""Tests of stage 2 (espnet_cs.data_format): validation, formatting, rerun behaviour."""

import logging
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from espnet_cs.audio import SAMPLE_RATE
from espnet_cs.bin.format_data import main
from espnet_cs.data_format import DataFormatError, Kind, format_data_dir, validate_data_dir
from espnet_cs.kaldi_dir import read_kaldi_map

RNG = np.random.default_rng(0)


def make_audio(path: Path, frames: int, rate: int = SAMPLE_RATE, channels: int = 1) -> np.ndarray:
    """Write random int16 audio (format from the suffix) and return its samples."""
    shape = (frames, channels) if channels > 1 else frames
    samples = RNG.integers(-8000, 8000, size=shape, dtype=np.int16)
    sf.write(path, samples, rate, subtype="PCM_16")
    return samples


def write_table(path: Path, lines: list[str]) -> None:
    """Write Kaldi table lines as given (order kept, so tests can pass unsorted ones)."""
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def write_data_dir(
    src: Path,
    wav_scp: list[str],
    text: list[str],
    utt2spk: list[str],
    segments: list[str] | None = None,
    utt2category: list[str] | None = None,
) -> Path:
    """Create a Kaldi data dir from table lines."""
    src.mkdir(parents=True, exist_ok=True)
    write_table(src / "wav.scp", wav_scp)
    write_table(src / "text", text)
    write_table(src / "utt2spk", utt2spk)
    if segments is not None:
        write_table(src / "segments", segments)
    if utt2category is not None:
        write_table(src / "utt2category", utt2category)
    return src


def read_table(path: Path) -> dict[str, str]:
    """Read an output Kaldi table, checking it is sorted."""
    table = read_kaldi_map(path)
    assert list(table) == sorted(table), f"{path} is not sorted"
    return table


def read_output(dst: Path, utt: str) -> np.ndarray:
    """Read an output wav, checking it is 16 kHz mono int16 and listed in wav.scp."""
    path = Path(read_table(dst / "wav.scp")[utt])
    assert path == dst / "data" / f"{utt}.wav"
    info = sf.info(path)
    assert (info.samplerate, info.channels, info.subtype) == (SAMPLE_RATE, 1, "PCM_16")
    return sf.read(path, dtype="int16")[0]


@pytest.fixture
def clean_dir(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """A dir with a 16 kHz wav, an 8 kHz flac, a pipe entry; files deliberately unsorted."""
    a = make_audio(tmp_path / "a.wav", 16000)
    make_audio(tmp_path / "b.flac", 4000, rate=8000)
    c = make_audio(tmp_path / "c.flac", 8000)
    src = write_data_dir(
        tmp_path / "data",
        [f"u3 sox {tmp_path / 'c.flac'} -t wav - |", f"u1 {tmp_path / 'a.wav'}", f"u2 {tmp_path / 'b.flac'}"],
        ["u2 你好 world", "u1 hello 世界", "u3 我们 go"],
        ["u1 s1", "u3 s2", "u2 s1"],
        utt2category=["u3 cs", "u1 cs", "u2 zh"],
    )
    return src, {"u1": a, "u3": c}


def test_sample_rate_is_whispers() -> None:
    from whisper.audio import SAMPLE_RATE as WHISPER_RATE

    assert SAMPLE_RATE == WHISPER_RATE


def test_formats_clean_dir(clean_dir: tuple[Path, dict[str, np.ndarray]], tmp_path: Path) -> None:
    src, samples = clean_dir
    dst = tmp_path / "dump" / "raw" / "test"
    assert validate_data_dir(src) == []
    assert format_data_dir(src, dst, nj=2)
    assert read_table(dst / "utt2num_samples") == {"u1": "16000", "u2": "8000", "u3": "8000"}
    assert read_table(dst / "speech_shape") == read_table(dst / "utt2num_samples")
    assert read_table(dst / "text") == {"u1": "hello 世界", "u2": "你好 world", "u3": "我们 go"}
    assert read_table(dst / "utt2spk") == {"u1": "s1", "u2": "s1", "u3": "s2"}
    assert read_table(dst / "spk2utt") == {"s1": "u1 u2", "s2": "u3"}
    assert read_table(dst / "utt2category") == {"u1": "cs", "u2": "zh", "u3": "cs"}
    np.testing.assert_array_equal(read_output(dst, "u1"), samples["u1"])
    np.testing.assert_array_equal(read_output(dst, "u3"), samples["u3"])
    assert len(read_output(dst, "u2")) == 8000
    assert (dst / ".done").is_file() and not (dst.parent / "test.tmp").exists()


def test_output_independent_of_nj(clean_dir: tuple[Path, dict[str, np.ndarray]], tmp_path: Path) -> None:
    src, _ = clean_dir
    format_data_dir(src, tmp_path / "nj1", nj=1)
    format_data_dir(src, tmp_path / "nj3", nj=3)
    for path in (tmp_path / "nj1").rglob("*"):
        if path.is_file() and path.name not in ("wav.scp", ".done"):
            assert path.read_bytes() == (tmp_path / "nj3" / path.relative_to(tmp_path / "nj1")).read_bytes()


def test_cuts_segments(tmp_path: Path) -> None:
    rec = make_audio(tmp_path / "rec.wav", 48000)
    src = write_data_dir(
        tmp_path / "data",
        [f"rec {tmp_path / 'rec.wav'}"],
        ["r_1 a", "r_2 b", "r_3 c"],
        ["r_1 s", "r_2 s", "r_3 s"],
        segments=["r_2 rec 1.5 2.5", "r_1 rec 0.0 1.0", "r_3 rec 2.5 -1"],
    )
    assert format_data_dir(src, tmp_path / "dst")
    assert read_table(tmp_path / "dst" / "speech_shape") == {"r_1": "16000", "r_2": "16000", "r_3": "8000"}
    np.testing.assert_array_equal(read_output(tmp_path / "dst", "r_2"), rec[24000:40000])
    np.testing.assert_array_equal(read_output(tmp_path / "dst", "r_3"), rec[40000:])


def test_reports_all_problems_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    make_audio(tmp_path / "ok.wav", 32000)
    make_audio(tmp_path / "long.wav", 31 * SAMPLE_RATE)
    (tmp_path / "empty.wav").touch()
    make_audio(tmp_path / "zero.wav", 0)
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF this is not audio at all" * 10)
    files = {name: str(tmp_path / f"{name}.wav") for name in ("ok", "long", "empty", "zero", "corrupt", "missing")}
    src = write_data_dir(
        tmp_path / "data",
        [f"{name} {path}" for name, path in files.items()] + [f"pipe flac -c -d -s {tmp_path / 'nope.flac'} |"],
        [
            "ok_1 fine",
            "ok_2",
            "ok_3 x",
            "ok_4 y",
            "long_1 z",
            "empty_1 z",
            "zero_1 z",
            "corrupt_1 z",
            "missing_1 z",
            "pipe_1 z",
            "ghost_1 z",
            "ok_1 again",
        ],
        [
            "ok_1 s",
            "ok_2 s",
            "ok_3 s",
            "ok_4 s",
            "ok_5 s",
            "long_1 s",
            "empty_1 s",
            "zero_1 s",
            "corrupt_1 s",
            "missing_1 s",
            "pipe_1 s",
        ],
        segments=[
            "ok_1 ok 0 1",
            "ok_2 ok 0 1",
            "ok_3 ok 1 2.5",
            "ok_4 ok 1 0.5",
            "ok_5 ok 0 1",
            "long_1 long 0 -1",
            "empty_1 empty 0 1",
            "zero_1 zero 0 -1",
            "corrupt_1 corrupt 0 1",
            "missing_1 missing 0 1",
            "pipe_1 pipe 0 1",
        ],
        utt2category=[
            "ok_1 cs",
            "ok_2 zh",
            "ok_3 en",
            "ok_4 en",
            "ok_5 english",
            "long_1 cs",
            "empty_1 cs",
            "zero_1 cs",
            "corrupt_1 cs",
            "missing_1 cs",
            "pipe_1 cs",
        ],
    )
    text_file, seg_file, cat_file = (str(src / name) for name in ("text", "segments", "utt2category"))
    expected = {
        (Kind.MISSING_AUDIO, "missing", files["missing"]),
        (Kind.EMPTY_AUDIO, "empty", files["empty"]),
        (Kind.EMPTY_AUDIO, "zero", files["zero"]),
        (Kind.CORRUPT_AUDIO, "corrupt", files["corrupt"]),
        (Kind.TOO_LONG, "long_1", files["long"]),
        (Kind.BAD_SEGMENT, "ok_3", files["ok"]),
        (Kind.BAD_SEGMENT, "ok_4", seg_file),
        (Kind.EMPTY_TEXT, "ok_2", text_file),
        (Kind.MISSING_ENTRY, "ok_5", text_file),
        (Kind.ORPHAN_ENTRY, "ghost_1", text_file),
        (Kind.DUPLICATE_ID, "ok_1", text_file),
        (Kind.BAD_CATEGORY, "ok_5", cat_file),
    }
    problems = validate_data_dir(src, nj=2)
    pipe_problems = [p for p in problems if p.kind is Kind.PIPE_FAILED]
    assert {(p.kind, p.utt, p.file) for p in problems if p not in pipe_problems} == expected
    assert [(p.utt, "nope.flac" in p.file) for p in pipe_problems] == [("pipe", True)]

    dst = tmp_path / "dst"
    with pytest.raises(DataFormatError) as error:
        format_data_dir(src, dst, nj=2)
    assert error.value.problems == problems
    assert [p.name for p in dst.iterdir()] == ["problems.txt"] and not (tmp_path / "dst.tmp").exists()
    report = (dst / "problems.txt").read_text(encoding="utf-8")
    for problem in problems:
        assert f"{problem.utt}\t{problem.file}" in report
    assert f"== {Kind.TOO_LONG.value} (1) ==" in report and "31.00 s" in report

    assert main(["--src", str(src), "--dst", str(dst)]) == 1
    assert capsys.readouterr().err.count("\n") >= len(problems)


def test_reports_blank_non_utf8_and_duplicate_lines(clean_dir: tuple[Path, dict[str, np.ndarray]]) -> None:
    src, _ = clean_dir
    (src / "text").write_bytes(b"u1 hello\n\n" + "u2 你好\n".encode("gbk") + b"u3 go\nu1 again\n")
    assert [(p.kind, p.utt, p.file, p.detail) for p in validate_data_dir(src)] == [
        (Kind.MALFORMED_LINE, "-", str(src / "text"), "line 2 is blank"),
        (Kind.DUPLICATE_ID, "u1", str(src / "text"), "line 5"),
        (Kind.MALFORMED_LINE, "u2", str(src / "text"), "line 3 is not UTF-8"),
    ]


def test_rerun_skips_until_sources_change(
    clean_dir: tuple[Path, dict[str, np.ndarray]], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    src, _ = clean_dir
    dst = tmp_path / "dst"
    assert main(["--src", str(src), "--dst", str(dst)]) == 0
    stamp = (dst / "wav.scp").stat().st_mtime_ns
    assert not format_data_dir(src, dst)
    assert (dst / "wav.scp").stat().st_mtime_ns == stamp
    os.utime(src / "text")  # touched, not changed: still the same sources
    assert not format_data_dir(src, dst)
    with caplog.at_level(logging.INFO):
        (src / "text").write_text((src / "text").read_text().replace("hello", "hi"), encoding="utf-8")
        assert format_data_dir(src, dst)
    assert f"changed in {src} since {dst} was made: text" in caplog.text
    assert read_table(dst / "text")["u1"] == "hi 世界"
    assert not format_data_dir(src, dst)
    assert format_data_dir(src, dst, force=True)


@pytest.mark.parametrize("entry", ["u1", "u3"], ids=["file", "file of a pipe"])
def test_swapped_audio_with_the_same_path_is_reformatted(
    clean_dir: tuple[Path, dict[str, np.ndarray]], tmp_path: Path, caplog: pytest.LogCaptureFixture, entry: str
) -> None:
    src, _ = clean_dir
    dst = tmp_path / "dst"
    format_data_dir(src, dst)
    digests = read_table(dst / "utt2sha256")
    swapped = make_audio(tmp_path / ("a.wav" if entry == "u1" else "c.flac"), 12000)
    with caplog.at_level(logging.INFO):
        assert format_data_dir(src, dst)
    assert "since" in caplog.text and "audio files" in caplog.text
    np.testing.assert_array_equal(read_output(dst, entry), swapped)
    changed = {utt for utt, digest in read_table(dst / "utt2sha256").items() if digests[utt] != digest}
    assert changed == {entry}


def test_truncated_wav_is_reported(tmp_path: Path) -> None:
    make_audio(tmp_path / "a.wav", 44004)
    whole = (tmp_path / "a.wav").read_bytes()
    (tmp_path / "a.wav").write_bytes(whole[: 44 + 2 * 14978])  # the header still promises 44004 samples
    (tmp_path / "b.wav").write_bytes(whole[: 44 + 2 * 14978])
    src = write_data_dir(
        tmp_path / "data",
        [f"a {tmp_path / 'a.wav'}", f"b cat {tmp_path / 'b.wav'} |"],
        ["a x", "b y"],
        ["a s", "b s"],
    )
    with pytest.raises(DataFormatError) as error:
        format_data_dir(src, tmp_path / "dst")
    assert [(p.kind, p.utt, p.file, p.detail) for p in error.value.problems] == [
        (Kind.TRUNCATED_AUDIO, utt, entry, "the header promises 44004 samples, the file holds 14978")
        for utt, entry in [("a", str(tmp_path / "a.wav")), ("b", f"cat {tmp_path / 'b.wav'} |")]
    ]


def test_wav_of_unknown_length_from_a_pipe_is_read(tmp_path: Path) -> None:
    samples = make_audio(tmp_path / "a.wav", 8000)
    piped = bytearray((tmp_path / "a.wav").read_bytes())
    piped[40:44] = (0xFFFFFFFF).to_bytes(4, "little")  # what sox or ffmpeg write into a pipe
    (tmp_path / "piped.wav").write_bytes(bytes(piped))
    src = write_data_dir(tmp_path / "data", [f"a cat {tmp_path / 'piped.wav'} |"], ["a x"], ["a s"])
    format_data_dir(src, tmp_path / "dst")
    np.testing.assert_array_equal(read_output(tmp_path / "dst", "a"), samples)


def test_transcript_without_words_after_normalization(clean_dir: tuple[Path, dict[str, np.ndarray]]) -> None:
    src, _ = clean_dir
    write_table(src / "text", ["u1 ，。！", "u2 <unk> [noise]", "u3 我们 go"])
    assert [(p.kind, p.utt, p.detail) for p in validate_data_dir(src)] == [
        (Kind.EMPTY_TEXT, "u1", "'，。！' has no word left after the scoring normalization"),
        (Kind.EMPTY_TEXT, "u2", "'<unk> [noise]' has no word left after the scoring normalization"),
    ]


def test_byte_order_mark_in_an_id_is_named(clean_dir: tuple[Path, dict[str, np.ndarray]]) -> None:
    src, _ = clean_dir
    (src / "text").write_bytes("\ufeffu1 hello\nu2 你好\nu3 go\u200b\n".encode())
    (src / "utt2spk").write_text("u1 s1\nu2\u200b s1\nu3 s2\n", encoding="utf-8")
    problems = validate_data_dir(src)
    assert [(p.kind, p.utt, p.file) for p in problems] == [
        (Kind.INVISIBLE_ID, "u1", str(src / "text")),
        (Kind.INVISIBLE_ID, "u2", str(src / "utt2spk")),
    ]
    assert "U+FEFF ZERO WIDTH NO-BREAK SPACE (a UTF-8 byte-order mark" in problems[0].detail
    assert "U+200B ZERO WIDTH SPACE" in problems[1].detail


@pytest.mark.parametrize("name", ["wav.scp", "text", "utt2spk", "utt2category", "spk2utt"])
def test_byte_order_mark_is_one_problem_in_any_file(
    clean_dir: tuple[Path, dict[str, np.ndarray]], caplog: pytest.LogCaptureFixture, name: str
) -> None:
    src, _ = clean_dir
    (src / "spk2utt").write_text("s1 u1 u2\ns2 u3\n", encoding="utf-8")
    for table in ("wav.scp", "text", "utt2spk", "utt2category", "spk2utt"):  # sorted: the BOM alone is wrong
        (src / table).write_text("".join(sorted((src / table).read_text().splitlines(keepends=True))))
    (src / name).write_bytes("\ufeff".encode() + (src / name).read_bytes())
    with caplog.at_level(logging.INFO):
        problems = validate_data_dir(src)
    key = "s1" if name == "spk2utt" else "u1"
    assert [(p.kind, p.utt, p.file) for p in problems] == [(Kind.INVISIBLE_ID, key, str(src / name))]
    assert "not sorted" not in caplog.text


def test_spk2utt_mismatch_names_the_utterance(clean_dir: tuple[Path, dict[str, np.ndarray]]) -> None:
    src, _ = clean_dir
    (src / "spk2utt").write_text("s1 u1\ns2 u3 u2\n", encoding="utf-8")
    assert [(p.kind, p.utt, p.file, p.detail) for p in validate_data_dir(src)] == [
        (Kind.SPK2UTT_MISMATCH, "u2", str(src / "spk2utt"), "utt2spk: speaker 's1'; spk2utt: under 's2'")
    ]
    (src / "spk2utt").write_text("s1 u1 u2 u9\n", encoding="utf-8")
    assert [(p.utt, p.detail) for p in validate_data_dir(src)] == [
        ("u3", "utt2spk: speaker 's2'; spk2utt: not listed"),
        ("u9", "utt2spk: no entry; spk2utt: under 's1'"),
    ]


def test_interrupted_run_is_redone(clean_dir: tuple[Path, dict[str, np.ndarray]], tmp_path: Path) -> None:
    src, _ = clean_dir
    leftover = tmp_path / "dst.tmp"
    (leftover / "data").mkdir(parents=True)
    (leftover / "data" / "stale.wav").write_bytes(b"partial")
    (leftover / ".done").write_text("{}")
    assert format_data_dir(src, tmp_path / "dst")
    assert sorted(p.name for p in (tmp_path / "dst" / "data").iterdir()) == ["u1.wav", "u2.wav", "u3.wav"]
    assert not leftover.exists()


def test_refuses_to_overwrite_foreign_dir(clean_dir: tuple[Path, dict[str, np.ndarray]], tmp_path: Path) -> None:
    src, _ = clean_dir
    with pytest.raises(FileExistsError):
        format_data_dir(src, src)
    assert (src / "wav.scp").is_file()


def test_resampling_keeps_duration(tmp_path: Path) -> None:
    frames = 22050 + 7
    t = np.arange(frames) / 22050
    sf.write(tmp_path / "a.wav", 0.5 * np.sin(2 * np.pi * 440 * t), 22050, subtype="PCM_16")
    src = write_data_dir(tmp_path / "data", [f"a {tmp_path / 'a.wav'}"], ["a x"], ["a s"])
    format_data_dir(src, tmp_path / "dst")
    out = read_output(tmp_path / "dst", "a") / 32768
    assert abs(len(out) - frames * SAMPLE_RATE / 22050) <= 1
    ideal = 0.5 * np.sin(2 * np.pi * 440 * np.arange(len(out)) / SAMPLE_RATE)
    assert np.max(np.abs(out - ideal)[200:-200]) < 1e-3


def test_downmixes_stereo(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    stereo = make_audio(tmp_path / "a.wav", 8000, channels=2) // 2 * 2  # even, so the mean is exact
    sf.write(tmp_path / "a.wav", stereo, SAMPLE_RATE, subtype="PCM_16")
    src = write_data_dir(tmp_path / "data", [f"a {tmp_path / 'a.wav'}"], ["a x"], ["a s"])
    with caplog.at_level(logging.INFO):
        format_data_dir(src, tmp_path / "dst")
    expected = stereo.astype(np.int32).sum(axis=1) // 2
    np.testing.assert_array_equal(read_output(tmp_path / "dst", "a"), expected)
    assert "downmixed 1 multi-channel recording" in caplog.text


# reliability cases (audit)


@pytest.mark.parametrize("rate", [8000, 44100])
def test_audit_resamples_8k_and_44k_to_16k(tmp_path: Path, rate: int) -> None:
    frames = rate + 11  # not a whole number of 16-kHz samples
    sf.write(tmp_path / "a.wav", 0.5 * np.sin(2 * np.pi * 440 * np.arange(frames) / rate), rate, subtype="PCM_16")
    src = write_data_dir(tmp_path / "data", [f"a {tmp_path / 'a.wav'}"], ["a x"], ["a s"])
    format_data_dir(src, tmp_path / "dst")
    out = read_output(tmp_path / "dst", "a") / 32768
    assert abs(len(out) - frames * SAMPLE_RATE / rate) <= 1
    ideal = 0.5 * np.sin(2 * np.pi * 440 * np.arange(len(out)) / SAMPLE_RATE)
    assert np.max(np.abs(out - ideal)[200:-200]) < 2e-3


def test_audit_crlf_tables_format_like_lf(
    clean_dir: tuple[Path, dict[str, np.ndarray]], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    src, _ = clean_dir
    format_data_dir(src, tmp_path / "lf")
    for name in ("wav.scp", "text", "utt2spk", "utt2category"):
        (src / name).write_bytes((src / name).read_bytes().replace(b"\n", b"\r\n"))
    with caplog.at_level(logging.INFO):
        assert validate_data_dir(src) == []
    assert f"{src / 'text'} has CRLF (Windows) line endings; read as LF" in caplog.text
    format_data_dir(src, tmp_path / "crlf")
    for name in ("wav.scp", "text", "utt2spk", "spk2utt", "utt2category", "utt2num_samples"):
        lf, crlf = (read_table(tmp_path / d / name) for d in ("lf", "crlf"))
        assert {k: v.replace(str(tmp_path / "crlf"), str(tmp_path / "lf")) for k, v in crlf.items()} == lf, name
        assert b"\r" not in (tmp_path / "crlf" / name).read_bytes()


@pytest.mark.parametrize("copy", ["os.utime", "cp -p"])
def test_other_audio_of_the_same_size_and_time_is_reformatted(
    clean_dir: tuple[Path, dict[str, np.ndarray]], tmp_path: Path, caplog: pytest.LogCaptureFixture, copy: str
) -> None:
    src, _ = clean_dir
    dst = tmp_path / "dst"
    format_data_dir(src, dst)
    wav = tmp_path / "a.wav"
    before = wav.stat()
    if copy == "cp -p":  # another file of the same size and time copied over it, timestamps kept
        other = tmp_path / "other" / "a.wav"
        other.parent.mkdir()
        replacement = make_audio(other, 16000)
        os.utime(other, ns=(before.st_atime_ns, before.st_mtime_ns))
        subprocess.run(["cp", "-p", str(other), str(wav)], check=True)
    else:
        replacement = make_audio(wav, 16000)
        os.utime(wav, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert (wav.stat().st_size, wav.stat().st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    with caplog.at_level(logging.INFO):
        assert format_data_dir(src, dst)
    assert f"audio files ({wav}: other bytes of the same size and modification time)" in caplog.text
    np.testing.assert_array_equal(read_output(dst, "u1"), replacement)


def test_touched_audio_is_read_again_and_kept(
    clean_dir: tuple[Path, dict[str, np.ndarray]], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    src, _ = clean_dir
    dst = tmp_path / "dst"
    format_data_dir(src, dst)
    os.utime(tmp_path / "a.wav", ns=(0, 0))  # another time, the same bytes
    with caplog.at_level(logging.INFO):
        assert not format_data_dir(src, dst)
    assert "the bytes of every audio file); skipped" in caplog.text
