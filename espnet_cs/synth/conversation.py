"""Conversational code-switching text, closer to SEAME than single sentences: ``cs_bench``'s and ``mini_cs``'s.

An utterance is one to three clauses, each a filled frame (the frames and word lists of
:mod:`espnet_cs.synth.sentences` plus ``MORE_CS_FRAMES`` and ``MORE_EN_FRAMES``), dressed as
Singapore/Malaysia conversation is: discourse particles at the end of a clause (lah, leh, lor,
meh, hor; 啦, 咯, 嘛, 啊, 呢), fillers in front (uh, um; 那个, 就是, 然后), a repeated first word
and restarts (a clause begun, dropped and said again). A code-switched utterance switches inside a
clause (English words in a Mandarin-matrix frame) and, with several clauses, between them (an
English clause beside a Mandarin one).

Frames, not only sentences, are divided between the splits (``split_of`` with ``FRAME_SHARES``), so every test
utterance is built from frames that no training utterance uses. The forgetting sets read
monolingual sentences of another domain (news, weather, travel) with their own frames and words
(``FORGET_FRAMES``), by unseen voices.
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass

from espnet_cs.synth.sentences import CS_FRAMES, EN_FRAMES, SLOT, _words, fill, normalize, split_of

FRAME_SHARES = {"train": 0.6, "valid": 0.15, "test": 0.25}
WORD = re.compile(r"[a-z]+|[\u4e00-\u9fff]")  # an English word or one Mandarin character

MORE_CS_FRAMES: tuple[str, ...] = _words("""
    我跟你讲那个{noun}真的很{quality},
    你{time}会不会去{place},
    昨天的{event}你有去吗,
    他说{noun}要{time}才{verb},
    我妈妈叫我{time}去{place},
    这个{food}是在{place}买的,
    你先{verb}我等一下再{verb},
    我觉得那个{person}有一点{feel},
    我们的{event}改到{time}了,
    你看到我的{noun}了吗,
    我上个星期在{place}看到你的{person},
    我今天一直在{verb}那个{noun},
    等我{verb}完这个{noun}再说,
    你不要那么{feel}啦,
    我刚刚去{place}买了一些{food},
    他们每次都在{place}开{event},
    这个{noun}我{time}给你,
    那个{event}好像很{quality},
    我还以为你要去{event},
    我们{time}一起去{place}吃{food},
    你问{person}那个{noun}放在哪里,
    我真的不知道为什么他那么{feel},
    你的{noun}比我的{quality},
    我已经跟{person}讲了{noun}的事情,
    我们要不要先{verb}那个{noun},
    那边的{food}没有这边的{quality},
    他{time}要去{place}面试,
    你可以{time}再{verb}那个{noun},
    我今天在{place}等了好久,
    这个{noun}是你的还是{person}的,
    最近{event}太多了我很{feel},
    你知道{place}在哪里吗,
""")

MORE_EN_FRAMES: tuple[str, ...] = _words("""
    i told my {person} about the {noun},
    can we move the {event} to {time},
    the {place} was so {quality} today,
    have you tried the {food} at the {place},
    i am quite {feel} about the {event},
    please remind me to {verb} the {noun},
    i left my {noun} at the {place},
    the {person} said the {noun} is {quality},
    we should {verb} the {noun} {time},
    my {person} is coming to the {event},
    why is the {noun} so {quality},
    i will {verb} the {noun} after the {event},
    let me {verb} the {noun} first,
    is the {place} open {time},
    i really want some {food} now,
    the {event} made me so {feel},
""")

ZH_PARTICLES = _words("啦, 咯, 嘛, 啊, 呢, 吧")
SG_PARTICLES = _words("lah, leh, lor, meh, hor")
ZH_FILLERS = _words("那个, 就是, 然后")
EN_FILLERS = _words("uh, um, erm, so, like")

FORGET_WORDS: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "city": _words("""
            london, paris, tokyo, sydney, chicago, toronto, berlin, madrid, boston, seattle,
            dublin, vienna, lisbon, oslo, cairo, denver
        """),
        "weather": _words("heavy rain, strong winds, light snow, clear skies, thick fog, warm sunshine, thunderstorms"),
        "group": _words("""
            the city council, the national museum, the local hospital, the railway company,
            the university, the football club, the health ministry, the central bank
        """),
        "thing": _words("""
            a new bridge, the old harbour, a public archive, the river walk, a solar farm,
            the main square, a train line, the art gallery, a wildlife reserve, the old castle
        """),
        "action": _words("announced, opened, reported, approved, delayed, completed, rejected, expanded"),
        "season": _words("this spring, this summer, this autumn, this winter, last year, next year"),
    },
    "zh": {
        "city": _words("北京, 上海, 广州, 深圳, 杭州, 成都, 南京, 武汉, 西安, 重庆, 天津, 苏州, 青岛, 昆明"),
        "weather": _words("大雨, 大风, 小雪, 晴天, 大雾, 雷阵雨, 高温"),
        "group": _words("市政府, 博物馆, 铁路公司, 气象台, 大学, 足球队, 卫生部门, 交通部门"),
        "thing": _words("新大桥, 老码头, 档案馆, 植物园, 地铁线, 美术馆, 体育馆, 火车站, 高速公路"),
        "action": _words("宣布, 开放, 报道, 批准, 推迟, 完成, 扩建"),
        "season": _words("今年春天, 今年夏天, 今年秋天, 今年冬天, 去年, 明年"),
    },
}

FORGET_FRAMES: dict[str, tuple[str, ...]] = {
    "en": _words("""
        {group} {action} plans for {thing} in {city},
        forecasters expect {weather} in {city} {season},
        {thing} in {city} will close for repairs {season},
        visitors to {city} can see {thing} for free {season},
        {group} said {weather} delayed work on {thing},
        the journey from {city} to {city} takes about three hours by train,
        {season} {group} {action} the budget for {thing},
        tourists in {city} enjoyed {weather} during the festival,
        {group} in {city} {action} a report on {thing},
        after {weather} the roads near {thing} were closed
    """),
    "zh": _words("""
        {group}{action}了{city}{thing}的计划,
        气象台说{city}{season}会有{weather},
        {city}的{thing}{season}要关闭维修,
        游客{season}可以免费参观{city}的{thing},
        因为{weather}{thing}的工程推迟了,
        从{city}到{city}坐火车大约要三个小时,
        {group}{season}{action}了{thing}的预算,
        {city}的游客在节日期间遇到了{weather},
        {city}{group}{action}了关于{thing}的报告,
        {weather}以后{thing}附近的道路都封了
    """),
}


@dataclass(frozen=True)
class Style:
    """How conversational an utterance is: the probabilities of each feature.

    Attributes:
        clauses: P(1), P(2), P(3) clauses.
        particle: a discourse particle at the end of a clause.
        filler: a filler in front of a clause.
        repetition: the first word of a clause said twice.
        restart: a clause begun, dropped and said again.
        english_clause: in a code-switched utterance of several clauses, a clause is English
            (an inter-sentential switch); otherwise it is Mandarin-matrix.
        insertion: in a code-switched utterance, a slot of a Mandarin-matrix clause takes an
            English word (intra-sentential switches).
    """

    clauses: tuple[float, float, float] = (0.45, 0.35, 0.2)
    particle: float = 0.45
    filler: float = 0.3
    repetition: float = 0.12
    restart: float = 0.08
    english_clause: float = 0.35
    insertion: float = 0.5


def split_frames(split: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The Mandarin-matrix and the English frames of ``split`` (a hash partition by ``FRAME_SHARES``)."""
    cs = tuple(f for f in CS_FRAMES + MORE_CS_FRAMES if split_of(f, FRAME_SHARES) == split)
    en = tuple(f for f in EN_FRAMES + MORE_EN_FRAMES if split_of(f, FRAME_SHARES) == split)
    return cs, en


def dress(clause: str, language: str, category: str, style: Style, rng: random.Random) -> str:
    """Add a restart, a repetition, a filler and a particle to a clause, each with its probability.

    ``language`` is the clause's matrix language; monolingual utterances (``category`` zh or en)
    keep to their script: Singapore English particles (lah, lor, ...) are written in Latin letters.
    """
    if rng.random() < style.restart:
        words = WORD.findall(clause)
        if len(words) > 3:
            clause = f"{' '.join(words[: rng.randrange(1, min(4, len(words) - 1))])} {clause}"
    if rng.random() < style.repetition:
        clause = f"{WORD.match(clause).group(0)} {clause}"
    if rng.random() < style.filler:
        clause = f"{rng.choice(EN_FILLERS if language == 'en' else ZH_FILLERS)} {clause}"
    if rng.random() < style.particle:
        if category == "zh":
            particles = ZH_PARTICLES
        elif category == "en" or language == "en":
            particles = SG_PARTICLES
        else:
            particles = ZH_PARTICLES + SG_PARTICLES
        clause = f"{clause} {rng.choice(particles)}"
    return clause


def clause(
    category: str, cs_frames: Sequence[str], en_frames: Sequence[str], style: Style, rng: random.Random
) -> tuple[str, str]:
    """One filled clause of an utterance of ``category`` and its matrix language."""
    english = category == "en" or (category == "cs" and rng.random() < style.english_clause)
    frame = rng.choice(en_frames if english else cs_frames)
    slots = len(SLOT.findall(frame))
    if english:
        return fill(frame, rng, [True] * slots), "en"
    return fill(frame, rng, [category == "cs" and rng.random() < style.insertion for _ in range(slots)]), "zh"


def make_utterance(category: str, split: str, rng: random.Random, style: Style = Style()) -> str:
    """A conversational utterance of ``category`` (cs, zh, en) from the frames of ``split``.

    A code-switched utterance always holds both languages.
    """
    cs_frames, en_frames = split_frames(split)
    clauses = rng.choices((1, 2, 3), weights=style.clauses)[0]
    for _ in range(1000):
        parts = [clause(category, cs_frames, en_frames, style, rng) for _ in range(clauses)]
        text = normalize(" ".join(dress(c, lang, category, style, rng) for c, lang in parts))
        if category != "cs" or (re.search("[a-z]", text) and re.search("[\u4e00-\u9fff]", text)):
            return text
    raise RuntimeError(f"no code-switched utterance from the {split} frames")


def sample_utterances(split: str, categories: Sequence[str], rng: random.Random, style: Style = Style()) -> list[str]:
    """Distinct utterances of ``categories`` (one each, in order) from the frames of ``split``."""
    texts: list[str] = []
    seen: set[str] = set()
    for category in categories:
        for _ in range(1000):
            text = make_utterance(category, split, rng, style)
            if text not in seen:
                break
        else:
            raise RuntimeError(f"ran out of distinct {category} utterances for {split}")
        seen.add(text)
        texts.append(text)
    return texts


def forget_sentence(language: str, rng: random.Random) -> str:
    """A monolingual ``language`` (en or zh) sentence of the forgetting domain (news, weather, travel)."""
    words = FORGET_WORDS[language]
    used: set[str] = set()

    def pick(match: re.Match) -> str:
        word = rng.choice([w for w in words[match.group(1)] if w not in used])
        used.add(word)
        return f" {word} "

    return normalize(SLOT.sub(pick, rng.choice(FORGET_FRAMES[language])))
