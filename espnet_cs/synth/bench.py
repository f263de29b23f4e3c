"""The ``cs_bench`` corpus: conversational code-switching speech in noisy rooms, as Kaldi data dirs.

Sets and what keeps them apart:

- ``train``, ``valid``, ``test``: code-switched, Mandarin and English utterances
  (:mod:`espnet_cs.synth.conversation`) built from frames owned by the set, so test utterances
  come from frames no training utterance uses;
- ``forget_en``, ``forget_zh``: monolingual sentences of another domain (news, weather, travel),
  decoded before and after adaptation to measure forgetting.

Every set has its own speakers and its own simulated rooms. The synthesizer is espeak-ng or
Kokoro-82M. espeak-ng speakers are drawn from the set's own voice variants (``VARIANT_POOLS``)
with a random speed, pitch and vocal-tract scale. Kokoro speakers (``draw_voices``) are blends of
its shipped styles with a random speed; the training set also has the five styles themselves, and
every voice of a set lies at least ``MIN_BLEND_DISTANCE`` (L1, in blend weights) from the voices
of the sets drawn before it, so valid, test and forgetting voices are unseen in training. One
speaker says the whole utterance, both languages. Each utterance has
its own acoustic condition (:mod:`espnet_cs.synth.acoustics`), written to ``utt2condition``.
Everything derives from the seed: a wav is a pure function of its planned utterance, so the
output does not depend on ``nj``; wavs are named after a digest of their plan and written
atomically, so an interrupted run resumes.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from espnet_cs.audio import SAMPLE_RATE
from espnet_cs.synth import acoustics, kokoro
from espnet_cs.synth.acoustics import Condition, ConditionRanges
from espnet_cs.synth.conversation import forget_sentence, make_utterance
from espnet_cs.synth.corpus import DEFAULT_MIX, category_counts, write_data_dir
from espnet_cs.synth.kokoro import Voice
from espnet_cs.synth.speech import Speaker, synthesize_float, to_int16
from espnet_cs.text import CATEGORIES

VERSION = 1  # of the generator: part of every wav's digest
SETS = ("train", "valid", "test", "forget_en", "forget_zh")
VARIANTS = tuple(
    """m1 m2 m3 m4 m5 m6 m7 m8 f1 f2 f3 f4 f5 adam Alex Alicia Andrea Andy Annie antonio aunty
    belinda boris caleb david ed edward Gene gustave Henrique Hugo iven Jacky john Lee linda marcelo
    Mario max Michael michel miguel Mike Nguyen pablo paul pedro quincy rob robert steph zac anika
    norbert sandro shelby travis victor grandpa grandma klatt kaukovalta Denis Diogo""".split()
)
VOICE_SHARES = {"train": 0.6, "valid": 0.1, "test": 0.15, "forget": 0.15}
SPEAKERS_PER_SET = {"train": 48, "valid": 8, "test": 16, "forget_en": 8, "forget_zh": 8}
PREFIXES = {"train": "tr", "valid": "dv", "test": "ts", "forget_en": "fe", "forget_zh": "fz"}
SYNTHESIZERS = ("espeak-ng", "kokoro")
KOKORO_SPEED = (0.85, 1.15)  # range of a Kokoro voice's speed
MIN_BLEND_DISTANCE = 0.3  # L1 distance of a Kokoro voice's blend weights from those of earlier voices
MIN_BLEND_WEIGHT = 0.1
BABBLE_POOL = 24  # Kokoro babble talkers of a set, each spoken once and mixed into many utterances


def variant_pools() -> dict[str, tuple[str, ...]]:
    """The espeak-ng voice variants of each voice group (a fixed, seed-independent partition)."""
    variants = sorted(VARIANTS, key=lambda v: hashlib.sha256(v.encode()).digest())
    pools, start = {}, 0
    for group, share in VOICE_SHARES.items():
        end = len(variants) if group == "forget" else start + round(share * len(variants))
        pools[group] = tuple(variants[start:end])
        start = end
    return pools


VARIANT_POOLS = variant_pools()


def draw_speakers(set_name: str, seed: int) -> tuple[Speaker, ...]:
    """The speakers of a set: variants of its voice group, random speed, pitch, scale, English voice."""
    rng = random.Random(f"cs_bench/{seed}/{set_name}/speakers")
    pool = VARIANT_POOLS["forget" if set_name.startswith("forget") else set_name]
    prefix = PREFIXES[set_name]
    return tuple(
        Speaker(
            f"{prefix}{i:03d}",
            pool[i % len(pool)],
            rng.randint(140, 185),
            rng.randint(25, 80),
            rng.choice(("en-us", "en-gb")),
            round(rng.uniform(0.9, 1.1), 3),
        )
        for i in range(1, SPEAKERS_PER_SET[set_name] + 1)
    )


def random_blend(rng: random.Random) -> tuple[tuple[str, float], ...]:
    """Two or three of Kokoro's styles with random weights (multiples of 0.01, each at least ``MIN_BLEND_WEIGHT``)."""
    styles = rng.sample(kokoro.STYLES, rng.choice((2, 3)))
    while True:
        raw = [rng.gammavariate(1.0, 1.0) for _ in styles]
        weights = [round(w / sum(raw), 2) for w in raw[:-1]]
        weights.append(round(1.0 - sum(weights), 2))
        if min(weights) >= MIN_BLEND_WEIGHT:
            return tuple(sorted(zip(styles, weights)))


def draw_voices(set_name: str, seed: int) -> tuple[Voice, ...]:
    """The Kokoro speakers of a set: blends with a random speed (training: the shipped styles too).

    The sets are drawn in the order of ``SETS``; a voice's blend is at least ``MIN_BLEND_DISTANCE``
    from every blend drawn before it, in its own set or an earlier one.
    """
    if set_name not in SETS:
        raise ValueError(f"unknown cs_bench set {set_name!r}; expected one of {SETS}")
    earlier: list[np.ndarray] = []
    for name in SETS[: SETS.index(set_name) + 1]:
        rng = random.Random(f"cs_bench/{seed}/{name}/voices")
        voices = []
        for i in range(1, SPEAKERS_PER_SET[name] + 1):
            shipped = name == "train" and i <= len(kokoro.STYLES)
            for _ in range(10000):
                blend = ((kokoro.STYLES[i - 1], 1.0),) if shipped else random_blend(rng)
                voice = Voice(f"{PREFIXES[name]}{i:03d}", blend, round(rng.uniform(*KOKORO_SPEED), 3))
                if shipped or all(np.abs(voice.weights() - w).sum() >= MIN_BLEND_DISTANCE for w in earlier):
                    break
            else:
                raise RuntimeError(f"no Kokoro blend at distance {MIN_BLEND_DISTANCE} from {len(earlier)} others")
            earlier.append(voice.weights())
            voices.append(voice)
    return tuple(voices)


def speakers_of(set_name: str, seed: int, synthesizer: str) -> tuple[Speaker, ...] | tuple[Voice, ...]:
    """The speakers of a set for ``synthesizer`` (one of ``SYNTHESIZERS``)."""
    if synthesizer == "kokoro":
        return draw_voices(set_name, seed)
    if synthesizer == "espeak-ng":
        return draw_speakers(set_name, seed)
    raise ValueError(f"unknown synthesizer {synthesizer!r}; expected one of {SYNTHESIZERS}")


def speak(text: str, speaker: Speaker | Voice) -> np.ndarray:
    """16 kHz float speech of ``text`` by an espeak-ng ``Speaker`` or a Kokoro ``Voice``."""
    return kokoro.synthesize_float(text, speaker) if isinstance(speaker, Voice) else synthesize_float(text, speaker)


@dataclass(frozen=True)
class BenchUtterance:
    """One planned utterance: its text, speaker, condition and babble talkers (text, speaker)."""

    utt_id: str
    speaker: Speaker | Voice
    category: str
    text: str
    condition: Condition
    babble: tuple[tuple[str, Speaker | Voice], ...]

    @property
    def wav_name(self) -> str:
        digest = hashlib.sha256(repr((VERSION, self, SAMPLE_RATE)).encode()).hexdigest()
        return f"{self.utt_id}_{digest[:10]}.wav"


def sentence(set_name: str, category: str, rng: random.Random) -> str:
    """A sentence of ``category`` for ``set_name``."""
    if set_name.startswith("forget"):
        return forget_sentence(set_name.removeprefix("forget_"), rng)
    return make_utterance(category, set_name, rng)


def babble_pool(set_name: str, seed: int, speakers: Sequence[Voice]) -> tuple[tuple[str, Voice], ...]:
    """The ``BABBLE_POOL`` talkers (sentence, voice) a Kokoro set's babble is mixed from, the voices in turn.

    A neural voice costs about as much to speak as the utterance itself, so babble reuses a fixed
    pool, as babble noise recorded from a fixed group of talkers does.
    """
    rng = random.Random(f"cs_bench/{seed}/{set_name}/babble")
    forget = set_name.startswith("forget")
    return tuple(
        (
            sentence(set_name, set_name.removeprefix("forget_") if forget else rng.choice(CATEGORIES), rng),
            speakers[i % len(speakers)],
        )
        for i in range(BABBLE_POOL)
    )


def plan(
    set_name: str,
    num: int,
    seed: int,
    mix: Sequence[float] = DEFAULT_MIX,
    ranges: ConditionRanges = ConditionRanges(),
    synthesizer: str = "espeak-ng",
) -> list[BenchUtterance]:
    """The utterances of ``set_name`` spoken by ``synthesizer``'s speakers, sorted by id; deterministic for ``seed``."""
    if set_name not in SETS:
        raise ValueError(f"unknown cs_bench set {set_name!r}; expected one of {SETS}")
    rng = random.Random(f"cs_bench/{seed}/{set_name}")
    if set_name.startswith("forget"):
        categories = [set_name.removeprefix("forget_")] * num
    else:
        categories = [c for c, n in zip(CATEGORIES, category_counts(num, mix)) for _ in range(n)]
        rng.shuffle(categories)
    speakers = speakers_of(set_name, seed, synthesizer)
    pool = babble_pool(set_name, seed, speakers) if synthesizer == "kokoro" else ()
    seen: set[str] = set()
    utterances = []
    for i, category in enumerate(categories):
        for _ in range(1000):
            text = sentence(set_name, category, rng)
            if text not in seen:
                break
        seen.add(text)
        speaker = speakers[i % len(speakers)]
        condition = acoustics.draw_condition(rng, ranges)
        talkers = condition.babble_talkers if condition.noise == "babble" else 0
        if pool:
            babble = tuple(rng.sample([talker for talker in pool if talker[1] != speaker], talkers))
        else:
            others = [s for s in speakers if s != speaker]
            babble = tuple(
                (
                    sentence(set_name, category if set_name.startswith("forget") else rng.choice(CATEGORIES), rng),
                    rng.choice(others),
                )
                for _ in range(talkers)
            )
        utterances.append(
            BenchUtterance(f"{speaker.name}-{category}-{i:06d}", speaker, category, text, condition, babble)
        )
    return sorted(utterances, key=lambda u: u.utt_id)


Talker = tuple[str, Speaker | Voice]  # a babble talker: sentence and speaker


def render(
    utterance: BenchUtterance, rirs: Sequence[np.ndarray], spoken: Mapping[Talker, np.ndarray] | None = None
) -> np.ndarray:
    """The 16-bit audio of a planned utterance: speech, speed, room, noise, level.

    ``spoken`` holds babble talkers' speech already synthesized (the rest are synthesized here).
    """
    spoken = spoken or {}
    condition = utterance.condition
    audio = acoustics.change_speed(speak(utterance.text, utterance.speaker), condition.speed)
    if condition.room >= 0:
        audio = acoustics.reverberate(audio, rirs[condition.room])
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(utterance.wav_name.encode()).digest(), "big"))
    if condition.noise == "babble":
        talkers = [spoken[talker] if talker in spoken else speak(*talker) for talker in utterance.babble]
        noise = acoustics.babble(talkers, len(audio), rng)
    elif condition.noise != "none":
        noise = acoustics.coloured_noise(len(audio), acoustics.NOISE_EXPONENTS[condition.noise], rng)
    if condition.noise != "none":
        audio = acoustics.add_noise(audio, noise, condition.snr_db)
    return to_int16(acoustics.set_level(audio, condition.level_dbfs), f"{utterance.utt_id} ({utterance.text!r})")


def rooms_of(
    set_name: str, seed: int, ranges: ConditionRanges, cache: Path, pool: Executor | None = None
) -> tuple[list[np.ndarray], list[float]]:
    """The simulated rooms of a set (impulse responses, measured RT60s), cached in ``cache``.

    Rooms not cached yet are simulated in ``pool`` (here when None).
    """
    key = hashlib.sha256(repr((VERSION, set_name, seed, ranges)).encode()).hexdigest()[:10]
    path = cache / f"rooms_{set_name}_{key}.npz"
    if path.exists():
        with np.load(path) as stored:
            return [stored[f"rir{i}"] for i in range(ranges.rooms)], stored["rt60"].tolist()
    seeds = [f"cs_bench/{seed}/{set_name}/room{i}" for i in range(ranges.rooms)]
    rooms = list((pool.map if pool else map)(acoustics.random_room, [ranges] * ranges.rooms, seeds))
    tmp = path.with_name(f".{path.name}.tmp.npz")
    np.savez(tmp, rt60=np.array([rt60 for _, rt60 in rooms]), **{f"rir{i}": rir for i, (rir, _) in enumerate(rooms)})
    os.replace(tmp, path)
    return [rir for rir, _ in rooms], [rt60 for _, rt60 in rooms]


def shared_talkers(
    set_name: str, utterances: Sequence[BenchUtterance], cache: Path, pool: Executor | None = None
) -> dict[Talker, np.ndarray]:
    """The speech of the babble talkers that several utterances of a set share, cached in ``cache``.

    They are synthesized once, in ``pool`` (here when None), instead of once per utterance.
    """
    counts = Counter(talker for u in utterances for talker in u.babble)
    talkers = sorted((t for t, n in counts.items() if n > 1), key=repr)
    if not talkers:
        return {}
    key = hashlib.sha256(repr((VERSION, talkers, SAMPLE_RATE)).encode()).hexdigest()[:10]
    path = cache / f"babble_{set_name}_{key}.npz"
    if path.exists():
        with np.load(path) as stored:
            return {talker: stored[f"talker{i}"] for i, talker in enumerate(talkers)}
    speech = list((pool.map if pool else map)(speak, *zip(*talkers)))
    tmp = path.with_name(f".{path.name}.tmp.npz")
    np.savez(tmp, **{f"talker{i}": audio for i, audio in enumerate(speech)})
    os.replace(tmp, path)
    return dict(zip(talkers, speech))


_ROOMS: list[np.ndarray] = []  # the rooms of the set a worker renders
_SPOKEN: dict[Talker, np.ndarray] = {}  # its shared babble talkers


def _use_set(rirs: list[np.ndarray], spoken: dict[Talker, np.ndarray]) -> None:
    global _ROOMS, _SPOKEN
    _ROOMS, _SPOKEN = rirs, spoken


def render_to(job: tuple[BenchUtterance, Path]) -> float:
    """Write the wav of an utterance unless it exists already; return its duration in seconds."""
    utterance, path = job
    if not path.exists():
        tmp = path.with_name(f".{path.name}.tmp")
        sf.write(tmp, render(utterance, _ROOMS, _SPOKEN), SAMPLE_RATE, subtype="PCM_16", format="WAV")
        os.replace(tmp, path)
    return sf.info(path).duration


def make_bench(
    data_dir: Path,
    wav_dir: Path,
    sizes: dict[str, int],
    seed: int = 0,
    nj: int = 1,
    mix: Sequence[float] = DEFAULT_MIX,
    ranges: ConditionRanges = ConditionRanges(),
    synthesizer: str = "espeak-ng",
) -> None:
    """Generate ``sizes[set]`` utterances of each set into ``data_dir/<set>``, audio in ``wav_dir/<set>``.

    Raises:
        ModuleNotFoundError: naming the package, if one that Kokoro needs is missing.
    """
    if min(sizes.values()) < 1:
        raise ValueError(f"every set needs at least one utterance: {sizes}")
    if synthesizer == "kokoro":
        kokoro.check_installed()
    data_dir, wav_dir = Path(data_dir).absolute(), Path(wav_dir).absolute()
    for set_name, num in sizes.items():
        utterances = plan(set_name, num, seed, mix, ranges, synthesizer)
        (wav_dir / set_name).mkdir(parents=True, exist_ok=True)
        wavs = [wav_dir / set_name / u.wav_name for u in utterances]
        missing = not all(wav.exists() for wav in wavs)
        with ProcessPoolExecutor(nj) as pool:
            rirs, rt60s = rooms_of(set_name, seed, ranges, wav_dir, pool)
            spoken = shared_talkers(set_name, utterances, wav_dir, pool) if missing else {}
        with ProcessPoolExecutor(nj, initializer=_use_set, initargs=(rirs, spoken)) as pool:
            jobs = pool.map(render_to, zip(utterances, wavs), chunksize=4)
            durations = np.array(list(tqdm(jobs, total=num, desc=f"cs_bench {set_name}", unit="utt")))
        conditions = {u.utt_id: u.condition.describe(rt60s) for u in utterances}
        write_data_dir(data_dir / set_name, utterances, wavs, {"utt2condition": conditions})
        logging.info(
            f"{data_dir / set_name}: {num} utterances, {durations.sum() / 3600:.2f} h, "
            f"{durations.min():.1f}-{durations.max():.1f} s (mean {durations.mean():.1f} s), "
            f"{len({u.speaker for u in utterances})} speakers, rooms RT60 {min(rt60s):.2f}-{max(rt60s):.2f} s"
        )
