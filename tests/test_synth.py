"""The synthetic code-switching corpus mini_cs: utterances, speech and Kaldi data dirs."""

from __future__ import annotations

import re
from pathlib import Path

import opencc
import pytest
import soundfile as sf

from espnet_cs.audio import SAMPLE_RATE
from espnet_cs.bin.synth import main
from espnet_cs.kaldi_dir import read_kaldi_map
from espnet_cs.synth import conversation, speech
from espnet_cs.synth.corpus import SPLIT_SPEAKERS, category_counts, make_corpus, plan
from espnet_cs.synth.sentences import CS_FRAMES, EN_FRAMES, ENGLISH, MANDARIN, SLOT
from espnet_cs.synth.speech import SPEAKERS, language_runs, synthesize, to_pinyin
from espnet_cs.text import CATEGORIES

HAN, LATIN = r"[\u4e00-\u9fff]", r"[a-z]"
# Han runs and lowercase English words, one space apart; never a space between two Han characters.
WORD = rf"(?:{HAN}+|{LATIN}+)"
TEXT = re.compile(rf"^(?!.*{HAN} {HAN}){WORD}(?: {WORD})*$")
SIZES = {"train": 6, "valid": 3, "test": 4}
FILES = ("wav.scp", "text", "utt2spk", "spk2utt", "utt2category")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny corpus made through the CLI with two processes; returns its data dir."""
    root = tmp_path_factory.mktemp("mini_cs")
    main(
        [
            "--data_dir",
            str(root / "data"),
            "--nj",
            "2",
            "--seed",
            "0",
            *(f"--num_{split}={num}" for split, num in SIZES.items()),
        ]
    )
    return root / "data"


def read(data: Path, split: str, name: str) -> dict[str, str]:
    return read_kaldi_map(data / split / name)


def test_word_lists_and_frames() -> None:
    english = {w for words in ENGLISH.values() for w in words}
    assert len(CS_FRAMES) >= 50 and len(EN_FRAMES) >= 20 and len(english) >= 300
    for frame in CS_FRAMES:
        assert all(slot in ENGLISH and slot in MANDARIN for slot in SLOT.findall(frame)), frame
    assert all(slot in ENGLISH for frame in EN_FRAMES for slot in SLOT.findall(frame))
    assert all(re.fullmatch(r"[a-z]+( [a-z]+)*", w) for w in english)


def test_mandarin_is_simplified_and_has_pinyin() -> None:
    chinese = "".join(CS_FRAMES) + "".join(w for words in MANDARIN.values() for w in words)
    chinese = "".join(re.findall(HAN, chinese))
    assert opencc.OpenCC("t2s").convert(chinese) == chinese
    assert all(re.fullmatch(r"[a-z]+[1-5]", s) for s in to_pinyin(chinese).split())
    assert to_pinyin("这个星期") == "zhe4 ge4 xing1 qi1"


def test_text_format_and_categories() -> None:
    for utterance in plan("train", 300, seed=0):
        text, category = utterance.text, utterance.category
        assert TEXT.match(text), text
        has_han, has_latin = bool(re.search(HAN, text)), bool(re.search(LATIN, text))
        assert (has_han, has_latin) == {"cs": (True, True), "zh": (True, False), "en": (False, True)}[category], text


def test_conversational_and_about_as_long_as_single_sentences() -> None:
    texts = [u.text for u in plan("train", 300, seed=0)]
    words = [len(conversation.WORD.findall(t)) for t in texts]
    assert 9 <= sum(words) / len(words) <= 14, sum(words) / len(words)
    particles = conversation.ZH_PARTICLES + conversation.SG_PARTICLES
    assert sum(t.endswith(particles) for t in texts) > 0.2 * len(texts)


def test_language_runs() -> None:
    assert language_runs("我 by friday 要去 meeting") == [
        ("zh", "我"),
        ("en", "by friday"),
        ("zh", "要去"),
        ("en", "meeting"),
    ]


def test_category_mix() -> None:
    assert category_counts(10, (0.6, 0.2, 0.2)) == [6, 2, 2]
    assert category_counts(6, (0.6, 0.2, 0.2)) == [4, 1, 1]
    assert category_counts(5, (1, 0, 0)) == [5, 0, 0]
    utterances = plan("train", 50, seed=0)
    assert [sum(u.category == c for u in utterances) for c in CATEGORIES] == [30, 10, 10]


def test_test_utterances_come_from_frames_no_training_utterance_uses(monkeypatch: pytest.MonkeyPatch) -> None:
    frames: dict[str, set[str]] = {}
    split = "train"
    real_fill = conversation.fill

    def spy(frame, rng, english):
        frames.setdefault(split, set()).add(frame)
        return real_fill(frame, rng, english)

    monkeypatch.setattr(conversation, "fill", spy)
    train = {u.text for seed in (0, 1) for u in plan("train", 300, seed)}
    split = "test"
    test = [u.text for u in plan("test", 60, 0)]
    assert frames["test"] and frames["test"].isdisjoint(frames["train"])
    assert not set(test) & train and len(set(test)) == len(test)


def test_speakers_disjoint(corpus: Path) -> None:
    speakers = {split: set(read(corpus, split, "utt2spk").values()) for split in SIZES}
    assert speakers["test"].isdisjoint(speakers["train"] | speakers["valid"])
    assert speakers["valid"].isdisjoint(speakers["train"])
    assert set(SPLIT_SPEAKERS["test"]).isdisjoint(SPLIT_SPEAKERS["train"])


def test_kaldi_files_consistent(corpus: Path) -> None:
    assert sorted(p.name for p in corpus.iterdir()) == sorted(SIZES)  # no temporary dirs left
    for split, num in SIZES.items():
        lines = {name: (corpus / split / name).read_text().splitlines() for name in FILES}
        keys = [line.split()[0] for line in lines["text"]]
        assert len(keys) == num and keys == sorted(keys)
        for name in ("wav.scp", "utt2spk", "utt2category"):
            assert [line.split()[0] for line in lines[name]] == keys, name
        utt2spk = read(corpus, split, "utt2spk")
        spk2utt = {spk: utts.split() for spk, utts in read(corpus, split, "spk2utt").items()}
        assert spk2utt == {spk: sorted(u for u in keys if utt2spk[u] == spk) for spk in sorted(set(utt2spk.values()))}
        assert all(utt.startswith(f"{spk}-") for utt, spk in utt2spk.items())
        categories = read(corpus, split, "utt2category")
        assert all(categories[u] == u.split("-")[1] and categories[u] in CATEGORIES for u in keys)
        assert all(TEXT.match(text) for text in read(corpus, split, "text").values())


def test_audio(corpus: Path) -> None:
    for split in SIZES:
        for path in read(corpus, split, "wav.scp").values():
            assert Path(path).is_absolute()
            assert Path(path).parent == corpus.parent / "downloads/mini_cs/wav" / split
            info = sf.info(path)
            assert (info.samplerate, info.channels, info.subtype) == (SAMPLE_RATE, 1, "PCM_16")
            assert 1.5 < info.duration < 10
            audio, _ = sf.read(path, dtype="int16")
            assert abs(audio).max() > 1000


def test_deterministic_resumable_and_independent_of_nj(corpus: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    make_corpus(data, SIZES, seed=0, nj=1)
    for split in SIZES:
        for name in ("text", "utt2spk", "utt2category"):
            assert read(data, split, name) == read(corpus, split, name)
        wavs = zip(read(data, split, "wav.scp").values(), read(corpus, split, "wav.scp").values())
        assert all(Path(a).read_bytes() == Path(b).read_bytes() for a, b in wavs)
    wavs = [Path(p) for p in read(data, "test", "wav.scp").values()]
    first, mtimes = wavs[0].read_bytes(), [w.stat().st_mtime_ns for w in wavs]
    wavs[0].unlink()
    make_corpus(data, SIZES, seed=0, nj=1)
    assert wavs[0].read_bytes() == first
    assert [w.stat().st_mtime_ns for w in wavs[1:]] == mtimes[1:]
    assert not list(data.parent.rglob(".*"))  # no temporary files or dirs
    other = {u.text for u in plan("train", 6, seed=1)}
    assert other != set(read(corpus, "train", "text").values())


def test_synthesize_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(speech, "MAX_SECONDS", 1.0)
    with pytest.raises(ValueError, match="exceeds"):
        synthesize("这个 project 的 deadline 是下个星期", SPEAKERS[0])
    monkeypatch.setattr(speech.shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="tools/install.sh"):
        synthesize("hello", SPEAKERS[0])
