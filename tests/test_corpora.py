"""Real-corpus preparation (SEAME, ASRU 2019, AISHELL-1 test, LibriSpeech test-clean) on miniature
corpora in their real layouts (tests/corpus_fixtures.py), its errors, and the recipes' stages 1-3 and 9."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import soundfile as sf
from corpus_fixtures import (
    AISHELL_TEST,
    LIBRISPEECH_TEST,
    SeameFixture,
    make_aishell,
    make_asru2019,
    make_librispeech,
    make_seame,
)

from espnet_cs.corpora import CorpusError
from espnet_cs.corpora.aishell import prepare_aishell_test
from espnet_cs.corpora.asru2019 import prepare_asru2019
from espnet_cs.corpora.librispeech import prepare_librispeech_test_clean
from espnet_cs.corpora.seame import check_dev_sets, normalize_seame, prepare_seame, speaker_of, utt_id
from espnet_cs.corpora.text_norm import category, normalize_transcript
from espnet_cs.kaldi_dir import read_kaldi_map

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Corpora:
    """The miniature corpora, made once per session."""

    seame: SeameFixture
    asru_dir: Path
    aishell_dir: Path
    librispeech_dir: Path


@pytest.fixture(scope="session")
def corpora(tmp_path_factory: pytest.TempPathFactory) -> Corpora:
    root = tmp_path_factory.mktemp("corpora")
    return Corpora(make_seame(root), make_asru2019(root), make_aishell(root), make_librispeech(root))


def check_kaldi_dir(path: Path) -> dict[str, str]:
    """Assert a prepared data dir is complete and consistent; returns its ``text``.

    Every utterance has audio, a normalized non-empty text, a speaker and its category; segment
    times lie inside the audio.
    """
    text, utt2spk = read_kaldi_map(path / "text"), read_kaldi_map(path / "utt2spk")
    wav_scp, categories = read_kaldi_map(path / "wav.scp"), read_kaldi_map(path / "utt2category")
    segments = read_kaldi_map(path / "segments") if (path / "segments").exists() else None
    assert text and text.keys() == utt2spk.keys() == categories.keys() == (segments or wav_scp).keys()
    assert all(Path(audio).is_file() for audio in wav_scp.values())
    for utt, words in text.items():
        assert words and normalize_transcript(words) == words and categories[utt] == category(words), utt
    for utt, line in (segments or {}).items():
        rec, start, end = line.split()
        assert 0 <= float(start) < float(end) <= sf.info(wav_scp[rec]).duration, utt
    spk2utt = {spk: utts.split() for spk, utts in read_kaldi_map(path / "spk2utt").items()}
    assert sorted(u for utts in spk2utt.values() for u in utts) == sorted(utt2spk)
    assert all(utt2spk[u] == spk for spk, utts in spk2utt.items() for u in utts)
    return text


# ------------------------------------------------------------------------------ normalization


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("(ppl) 這個 ＰＲＯＪＥＣＴ的deadline <unk> 是 next week!", "这个 project 的 deadline 是 next week"),
        ("（ppb）ｏｋａｙ\u3000啦，", "okay 啦"),  # full-width brackets, letters, space and comma
        ("HELLO, DON'T go [S] {laugh}", "hello don't go"),
        ("我們 ... 好不好？", "我们好不好"),
        ("so (ppl she said", "so ppl she said"),  # an unpaired bracket swallows nothing
        ("<v-noise> < unk >", ""),
        ("e-mail 3 次", "e mail 3 次"),
    ],
)
def test_normalize_transcript(raw: str, expected: str) -> None:
    assert normalize_transcript(raw) == expected


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("okay [lah] I'll go", "okay lah i'll go"),  # discourse particles are spoken
        ("【啊】 好 [咯]", "啊好咯"),
        ("我 觉得 ok 的 (ppl", "我觉得 ok 的"),  # noise word left by an unbalanced bracket
        ("ppo ppb (ppc) <unk> (ppo)", ""),
        ("#hmm 是 吗", "hmm 是吗"),
        ("( ppc ) 那個 老師", "那个老师"),
    ],
)
def test_normalize_seame(raw: str, expected: str) -> None:
    assert normalize_seame(raw) == expected


def test_seame_speakers_and_ids() -> None:
    assert speaker_of("01nc01fbx_0101") == "nc01f" and speaker_of("ni01max_0101") == "ni01m"
    assert speaker_of("ui07faz_0101") == "ui07f" and speaker_of("readme") is None
    assert utt_id("nc12m", "06nc12may_0101", 1620, 4595) == "nc12m-06nc12may_0101-00162-00460"
    assert utt_id("nc12m", "06nc12may_0101", 1001970, 1004710) == "nc12m-06nc12may_0101-100197-100471"


# ---------------------------------------------------------------------------------- data dirs


def test_seame_data_dirs(corpora: Corpora, tmp_path: Path) -> None:
    seame = corpora.seame
    counts = prepare_seame(seame.seame_dir, seame.dev_lists, tmp_path)
    assert counts == {"devman": 2, "devsge": 2, "train": 5, "valid": 1}
    texts = {name: check_kaldi_dir(tmp_path / name) for name in counts}
    assert texts["devman"] == seame.expected["devman"] and texts["devsge"] == seame.expected["devsge"]
    # noise-only, too short, untranscribed and shadowed (phaseI) lines are not there
    assert texts["train"] | texts["valid"] == seame.expected["train+valid"]
    assert not texts["train"].keys() & texts["valid"].keys()
    assert read_kaldi_map(tmp_path / "train" / "wav.scp").keys() == {"01nc01fbx_0101", "02nc03fbx_0101", "ni01max_0101"}
    assert set(read_kaldi_map(tmp_path / "devman" / "utt2spk").values()) == {"ui07f"}
    assert check_dev_sets(tmp_path, seame.dev_lists) == [
        f"{name}: 2 utterances in {tmp_path / name} (the published list has {count}: a partial or other list)"
        for name, count in (("devman", 6531), ("devsge", 5321))
    ]
    (tmp_path / "devsge" / "text").write_text("nc15m-08nc15mbp_0101-99999-99999 extra\n")
    with pytest.raises(CorpusError, match=r"(?s)devsge: 2 utterance\(s\) missing .*devsge: 1 utterance\(s\) not in"):
        check_dev_sets(tmp_path, seame.dev_lists)


def test_asru_data_dirs(corpora: Corpora, tmp_path: Path) -> None:
    assert prepare_asru2019(corpora.asru_dir, tmp_path) == {"train": 2, "valid": 1, "dev": 2, "test": 2}
    texts = {name: check_kaldi_dir(tmp_path / name) for name in ("train", "valid", "dev", "test")}
    assert texts["test"] == {"T0004G0300S0001": "这个 app 很好用", "T0004G0301S0001": "请帮我 book 一个 room"}
    assert read_kaldi_map(tmp_path / "dev" / "utt2spk") == {"T0003G0200S0001": "G0200", "T0003G0201S0001": "G0201"}
    with_500h = prepare_asru2019(corpora.asru_dir, tmp_path / "500h", include_500h=True)
    assert with_500h["train"] + with_500h["valid"] == 4
    texts = check_kaldi_dir(tmp_path / "500h" / "train") | check_kaldi_dir(tmp_path / "500h" / "valid")
    assert "T0002G0100S0001" in texts


def test_forgetting_sets(corpora: Corpora, tmp_path: Path) -> None:
    assert prepare_aishell_test(corpora.aishell_dir, tmp_path / "aishell_test") == 2  # a wav without transcript skipped
    assert check_kaldi_dir(tmp_path / "aishell_test") == {u: w.replace(" ", "") for u, w in AISHELL_TEST.items()}
    assert set(read_kaldi_map(tmp_path / "aishell_test" / "utt2category").values()) == {"zh"}
    assert read_kaldi_map(tmp_path / "aishell_test" / "utt2spk") == {u: u[6:11] for u in AISHELL_TEST}
    assert prepare_librispeech_test_clean(corpora.librispeech_dir, tmp_path / "ls") == 2
    assert check_kaldi_dir(tmp_path / "ls") == {u: t.lower() for u, t in LIBRISPEECH_TEST.items()}
    assert set(read_kaldi_map(tmp_path / "ls" / "utt2spk").values()) == {"1089"}


# ---------------------------------------------------------------------------------- bad input


@pytest.fixture
def seame_copy(corpora: Corpora, tmp_path: Path) -> SeameFixture:
    """A copy of the miniature SEAME and its lists to break."""
    seame = corpora.seame
    shutil.copytree(seame.seame_dir, tmp_path / "LDC2015S04")
    shutil.copytree(seame.dev_lists, tmp_path / "SEAME-dev-set")
    return SeameFixture(tmp_path / "LDC2015S04", tmp_path / "SEAME-dev-set", seame.expected)


def test_seame_missing_folder_and_lists(seame_copy: SeameFixture, tmp_path: Path) -> None:
    shutil.rmtree(seame_copy.seame_dir / "data" / "interview" / "transcript" / "phaseI")
    (seame_copy.dev_lists / "dev_sge" / "segments").unlink()
    with pytest.raises(CorpusError) as error:
        prepare_seame(seame_copy.seame_dir, seame_copy.dev_lists, tmp_path / "data")
    assert error.value.problems[0] == f"SEAME folder missing: {seame_copy.seame_dir}/data/interview/transcript/phaseI"
    assert f"SEAME dev lists: {seame_copy.dev_lists}/dev_sge/segments missing" in error.value.problems
    assert "https://github.com/zengzp0912/SEAME-dev-set" in str(error.value)
    assert not (tmp_path / "data").exists()


def test_seame_malformed_lines(seame_copy: SeameFixture, tmp_path: Path) -> None:
    transcript = seame_copy.seame_dir / "data" / "interview" / "transcript"
    phase2, phase1 = transcript / "phaseII" / "NI01MAX_0101.txt", transcript / "phaseI" / "NI01MAX_0101.txt"
    with phase2.open("a", encoding="utf-8") as f:
        f.write("NI01MAX_0101\t100\t900\tno language field\n")  # line 3
        f.write("NI01MAX_0101 100 900 CS spaces, not tabs\n")  # line 4
    phase1.write_text("NI01MAX_0101\tlater\t900\ttext\n", encoding="utf-8")
    with pytest.raises(CorpusError) as error:
        prepare_seame(seame_copy.seame_dir, seame_copy.dev_lists, tmp_path / "data")
    places = [problem.split(": ")[0] for problem in error.value.problems]
    assert places == [f"{phase2}:3", f"{phase2}:4", f"{phase1}:1"]
    assert "not a phaseII transcript line (expected 5 tab-separated fields" in error.value.problems[0]
    assert "not a phaseI transcript line (expected 4 tab-separated fields" in error.value.problems[2]


def test_seame_dev_segment_not_in_corpus(seame_copy: SeameFixture, tmp_path: Path) -> None:
    segments = seame_copy.dev_lists / "dev_man" / "segments"
    utt, rec, start, end = segments.read_text().splitlines()[1].split()
    segments.write_text(segments.read_text().replace(f"{start} {end}", f"{float(start) + 0.05:.2f} {end}"))
    with pytest.raises(CorpusError, match=f"{segments}:2: {utt}: no segment of {rec} within 30 ms"):
        prepare_seame(seame_copy.seame_dir, seame_copy.dev_lists, tmp_path / "data")


def test_other_corpora_errors(corpora: Corpora, tmp_path: Path) -> None:
    asru = shutil.copytree(corpora.asru_dir, tmp_path / "asru")
    (asru / "ASRU-DEV" / "data" / "T0003G0200S0001.txt").unlink()
    shutil.rmtree(asru / "ASRU-TEST")
    with pytest.raises(CorpusError, match=r"ASRU 2019 folder missing: .*ASRU-TEST"):
        prepare_asru2019(asru, tmp_path / "data")
    (asru / "ASRU-TEST").mkdir()
    with pytest.raises(CorpusError) as error:
        prepare_asru2019(asru, tmp_path / "data")
    assert error.value.problems == [
        f"{asru}/ASRU-DEV/data/T0003G0200S0001.wav: transcript T0003G0200S0001.txt missing",
        f"{asru}/ASRU-TEST: no .wav files below it",
    ]

    aishell = tmp_path / "aishell"
    (aishell / "data_aishell" / "wav").mkdir(parents=True)
    (aishell / "data_aishell" / "wav" / "S0764.tar.gz").write_bytes(b"")
    with pytest.raises(CorpusError, match=r"AISHELL-1 transcript missing(.|\n)*extract the 1 archives first"):
        prepare_aishell_test(aishell, tmp_path / "aishell_test")

    librispeech = shutil.copytree(corpora.librispeech_dir, tmp_path / "librispeech")
    flac = next(librispeech.rglob("*-0001.flac"))
    flac.write_bytes(b"fLaC but not really")
    with pytest.raises(CorpusError, match=f"{flac}: cannot read the audio"):
        prepare_librispeech_test_clean(librispeech, tmp_path / "ls")
    flac.unlink()
    with pytest.raises(CorpusError, match=f"1089-134686-0001: audio {flac} missing"):
        prepare_librispeech_test_clean(librispeech, tmp_path / "ls")


# -------------------------------------------------------------------------------------- recipes


def recipe_copy(name: str, tmp_path: Path) -> Path:
    """A recipe dir like egs2/<name>/asr1 whose data/, dump/ and exp/ live in tmp_path."""
    recipe = tmp_path / "recipe"
    recipe.mkdir()
    for entry in ("run.sh", "asr.sh", "path.sh", "cmd.sh", "utils", "local", "conf"):
        (recipe / entry).symlink_to(ROOT / "egs2" / name / "asr1" / entry)
    return recipe


def run(recipe: Path, *args: str, script: str = "./run.sh") -> subprocess.CompletedProcess:
    return subprocess.run(
        [script, *args],
        check=False,
        cwd=recipe,
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "2"},
    )


FAST_DECODING = ("--whisper_model", "whisper-base", "--zeroshot_task_tokens", "zh_en", "--decode_batch_size", "4")


def assert_scored(recipe: Path, sets: dict[str, int]) -> None:
    """Stage 3 decoded and stage 9 scored every set with the expected number of utterances."""
    for name, count in sets.items():
        assert len(read_kaldi_map(recipe / "dump" / "raw" / name / "text")) == count
        scores = json.loads((recipe / f"exp/zeroshot_zh_en/decode_{name}/scores.json").read_text())
        assert scores["utterances"] == count and scores["missing_hypotheses"] == []


@pytest.mark.integration
def test_seame_recipe(corpora: Corpora, tmp_path: Path) -> None:
    recipe, seame = recipe_copy("seame", tmp_path), corpora.seame
    data_opts = (
        f"--seame_dir {seame.seame_dir} --dev_lists {seame.dev_lists} "
        f"--librispeech_dir {corpora.librispeech_dir}"
    )  # local/data.sh's options
    result = run(
        recipe,
        "--stop_stage",
        "3",
        "--local_data_opts",
        data_opts,
        "--test_sets",
        "devman devsge librispeech_test_clean",
        *FAST_DECODING,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "dropped 1 utterance(s): shorter than 0.1 s" in result.stderr
    result = run(recipe, "--stage", "9", "--stop_stage", "9")
    assert result.returncode == 0, result.stderr[-3000:]
    assert_scored(recipe, {"devman": 2, "devsge": 2, "librispeech_test_clean": 2})
    for name in ("devman", "devsge"):
        assert check_kaldi_dir(recipe / "data" / name) == seame.expected[name]
    check = run(recipe, script="local/check_data.sh")
    assert check.returncode == 0 and "devman: 2 utterances in data/devman, dump/raw/devman" in check.stdout


@pytest.mark.integration
def test_asru2019_recipe(corpora: Corpora, tmp_path: Path) -> None:
    recipe = recipe_copy("asru2019", tmp_path)
    data_opts = f"--asru_dir {corpora.asru_dir} --aishell_dir {corpora.aishell_dir} --include_500h true"
    result = run(
        recipe,
        "--stop_stage",
        "3",
        "--local_data_opts",
        data_opts,
        "--test_sets",
        "dev test aishell_test",
        *FAST_DECODING,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert sum(len(read_kaldi_map(recipe / f"dump/raw/{name}/text")) for name in ("train", "valid")) == 4
    result = run(recipe, "--stage", "9", "--stop_stage", "9")
    assert result.returncode == 0, result.stderr[-3000:]
    assert_scored(recipe, {"dev": 2, "test": 2, "aishell_test": 2})


def test_recipes_need_their_corpus(tmp_path: Path) -> None:
    result = run(recipe_copy("seame", tmp_path), "--stop_stage", "1")
    assert result.returncode != 0
    assert "--seame_dir (the unpacked LDC2015S04, holding data/) and --dev_lists" in result.stdout
    shutil.rmtree(tmp_path / "recipe")
    result = run(
        recipe_copy("asru2019", tmp_path), "--stop_stage", "1", "--local_data_opts", f"--asru_dir {tmp_path}/nowhere"
    )
    assert result.returncode != 0 and f"ASRU 2019 folder missing: {tmp_path}/nowhere/ZH+EN-200h" in result.stderr


def test_seame_stage2_reports_bad_audio(seame_copy: SeameFixture, tmp_path: Path) -> None:
    """A flac that does not decode and a segment past the end of its audio, both found by stage 2."""
    recipe = recipe_copy("seame", tmp_path)
    audio = seame_copy.seame_dir / "data"
    (audio / "interview" / "audio" / "NI01MAX_0101.flac").write_bytes(b"fLaC" + bytes(100))
    short = audio / "conversation" / "audio" / "01NC01FBX_0101.flac"
    samples, rate = sf.read(short, dtype="int16")
    sf.write(short, samples[: 5 * rate], rate)  # its second segment ends at 8.5 s
    result = run(
        recipe,
        "--stop_stage",
        "2",
        "--local_data_opts",
        f"--seame_dir {seame_copy.seame_dir} --dev_lists {seame_copy.dev_lists}",
    )
    assert result.returncode != 0
    assert f"ni01max_0101\t{audio}/interview/audio/NI01MAX_0101.flac" in result.stderr  # audio cannot be decoded
    past_end = [
        utt
        for utt, line in read_kaldi_map(recipe / "data/train/segments").items()
        if line.startswith("01nc01fbx_0101 ") and float(line.split()[2]) > 5
    ]
    assert past_end and all(f"{utt}\t{short}\t" in result.stderr for utt in past_end)
    assert "past the recording's end 5 s" in result.stderr
    assert not (recipe / "dump/raw/train/text").exists()
