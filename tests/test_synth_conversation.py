"""Conversational text of cs_bench: its features, its frame split and the forgetting domain."""

from __future__ import annotations

import random
import re

import pytest

from espnet_cs.synth import conversation
from espnet_cs.synth.conversation import (
    EN_FILLERS,
    FORGET_FRAMES,
    FORGET_WORDS,
    SG_PARTICLES,
    ZH_FILLERS,
    ZH_PARTICLES,
    Style,
    dress,
    forget_sentence,
    make_utterance,
    split_frames,
)
from espnet_cs.synth.sentences import CS_FRAMES, EN_FRAMES, ENGLISH, MANDARIN

HAN, LATIN = r"[\u4e00-\u9fff]", r"[a-z]"
WORD = rf"(?:{HAN}+|{LATIN}+)"
TEXT = re.compile(rf"^(?!.*{HAN} {HAN}){WORD}(?: {WORD})*$")  # the corpus text convention
SPLITS = ("train", "valid", "test")


def utterances(category: str, split: str = "train", n: int = 400) -> list[str]:
    rng = random.Random(f"{category}/{split}")
    return [make_utterance(category, split, rng) for _ in range(n)]


def test_frames_are_partitioned_between_the_splits():
    owned = {split: split_frames(split) for split in SPLITS}
    for kind, frames in ((0, CS_FRAMES + conversation.MORE_CS_FRAMES), (1, EN_FRAMES + conversation.MORE_EN_FRAMES)):
        by_split = [set(owned[split][kind]) for split in SPLITS]
        assert set().union(*by_split) == set(frames)
        assert sum(len(s) for s in by_split) == len(set(frames))
        assert all(len(s) >= 5 for s in by_split), [len(s) for s in by_split]


def test_test_utterances_use_only_test_frames(monkeypatch):
    used = []
    real_fill = conversation.fill

    def spy(frame, rng, english):
        used.append(frame)
        return real_fill(frame, rng, english)

    monkeypatch.setattr(conversation, "fill", spy)
    rng = random.Random(0)
    for category in ("cs", "zh", "en"):
        for _ in range(100):
            make_utterance(category, "test", rng)
    cs, en = split_frames("test")
    assert set(used) <= set(cs) | set(en) and len(set(used)) > 0.8 * len(cs + en)


@pytest.mark.parametrize("category", ["cs", "zh", "en"])
def test_utterances_follow_the_text_convention_and_their_category(category):
    texts = utterances(category)
    assert all(TEXT.match(t) for t in texts)
    assert len(set(texts)) > 0.95 * len(texts)
    has_han = [bool(re.search(HAN, t)) for t in texts]
    has_latin = [bool(re.search(LATIN, t)) for t in texts]
    if category == "cs":
        assert all(has_han) and all(has_latin)
    else:
        assert not any(has_latin if category == "zh" else has_han)


def test_conversational_features_all_occur():
    cs, zh, en = utterances("cs"), utterances("zh"), utterances("en")
    every = cs + zh + en
    words = [set(re.findall(r"[a-z]+", t)) for t in cs + en]
    assert any(set(SG_PARTICLES) & w for w in words)
    assert any(t.endswith(tuple(ZH_PARTICLES)) for t in zh)
    assert any(t.startswith(tuple(ZH_FILLERS)) for t in zh)
    assert any(t.split(" ")[0] in EN_FILLERS for t in en)
    assert any(re.match(r"([a-z]+) \1 ", t) for t in en)  # an English word said twice
    assert any(re.match(f"({HAN})\\1", t) for t in zh)  # a Mandarin character said twice
    # several clauses: longer utterances, and English clauses beside Mandarin ones in cs
    lengths = sorted(len(re.findall(rf"{HAN}|{LATIN}+", t)) for t in every)
    assert lengths[len(lengths) // 2] >= 10 and lengths[-1] >= 30
    assert any(re.search(r"(?:^| )i (?:am|will|think|told|have|saw|need)\b", t) for t in cs)


def test_dress_adds_each_feature_when_certain():
    rng = random.Random(0)
    always = Style(particle=1.0, filler=1.0, repetition=1.0, restart=1.0)
    clause = "我们明天去食堂吃鸡饭"
    filler, repeated, *restart, said, particle = dress(clause, "zh", "zh", always, rng).split(" ")
    assert filler in ZH_FILLERS and particle in ZH_PARTICLES and said == clause
    assert repeated == restart[0] == "我" and 1 <= len(restart) <= 3 and clause.startswith("".join(restart))
    never = Style(particle=0.0, filler=0.0, repetition=0.0, restart=0.0)
    assert dress("i will check it later", "en", "en", never, rng) == "i will check it later"
    english = dress("i will check it later", "en", "en", always, rng).split(" ")
    assert english[0] in EN_FILLERS and english[-1] in SG_PARTICLES


def test_forgetting_sentences_are_monolingual_and_of_another_domain():
    rng = random.Random(0)
    for language, script in (("en", LATIN), ("zh", HAN)):
        texts = [forget_sentence(language, rng) for _ in range(200)]
        other = HAN if language == "en" else LATIN
        assert all(TEXT.match(t) and re.search(script, t) and not re.search(other, t) for t in texts)
        assert len(set(texts)) > 150
        vocabulary = {w for words in (ENGLISH if language == "en" else MANDARIN).values() for w in words}
        assert not vocabulary & {w for words in FORGET_WORDS[language].values() for w in words}
        assert not set(FORGET_FRAMES[language]) & set(CS_FRAMES + EN_FRAMES)


def test_utterances_are_deterministic_for_a_seed():
    assert utterances("cs", "valid", 50) == utterances("cs", "valid", 50)
    assert make_utterance("cs", "train", random.Random(1)) != make_utterance("cs", "train", random.Random(2))
