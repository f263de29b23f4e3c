"""Speech for one code-switched sentence with espeak-ng.

The sentence is cut into language runs; Mandarin runs are converted to tone-numbered pinyin
and read by the ``cmn-latn-pinyin`` voice (the ``cmn`` voice misreads characters), English
runs by ``en-us``/``en-gb``. A speaker is one voice variant, speed, pitch and vocal-tract scale,
used for both languages. Runs are trimmed, joined with short pauses and resampled to 16 kHz int16.

The vocal-tract scale ``formant`` shifts every formant by that factor: the audio is resampled as
if it had been recorded at ``formant`` times its rate (all frequencies scale, the duration
shrinks), and espeak-ng speaks ``formant`` times slower to keep the speaking rate.
"""

from __future__ import annotations

import io
import re
import shutil
import subprocess
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import soundfile as sf
from pypinyin import Style, lazy_pinyin
from scipy.signal import resample_poly

from espnet_cs.audio import SAMPLE_RATE
from espnet_cs.synth.sentences import HAN

MAX_SECONDS = 30.0
PAUSE_SECONDS = 0.12  # between language runs
EDGE_SECONDS = 0.25  # silence before and after the utterance
SILENCE = 0.003  # peak amplitude below which espeak-ng's leading/trailing samples are trimmed
MANDARIN_VOICE = "cmn-latn-pinyin"
RUN = re.compile(rf"([{HAN}]+)|([a-z]+(?: [a-z]+)*)")


@dataclass(frozen=True)
class Speaker:
    """An espeak-ng "speaker": voice variant (``m3``), words/minute, pitch 0-99, English voice, and
    vocal-tract scale (formant frequencies times ``formant``)."""

    name: str
    variant: str
    speed: int
    pitch: int
    english: str
    formant: float = 1.0


SPEAKERS: tuple[Speaker, ...] = tuple(
    Speaker(f"spk{i:02d}", variant, speed, pitch, english)
    for i, (variant, speed, pitch, english) in enumerate(
        [
            ("m1", 160, 45, "en-us"),
            ("f1", 150, 60, "en-gb"),
            ("m2", 170, 40, "en-gb"),
            ("f2", 165, 70, "en-us"),
            ("m3", 150, 55, "en-us"),
            ("f3", 175, 55, "en-gb"),
            ("m4", 180, 35, "en-us"),
            ("f4", 155, 65, "en-us"),
            ("m5", 165, 50, "en-gb"),
            ("f5", 160, 75, "en-us"),
            ("m6", 155, 45, "en-gb"),
            ("m7", 175, 60, "en-us"),
            ("m8", 165, 30, "en-gb"),
        ],
        start=1,
    )
)


def language_runs(text: str) -> list[tuple[str, str]]:
    """``[("zh", "这个"), ("en", "project"), ...]`` for a normalized corpus sentence."""
    return [("zh", zh) if zh else ("en", en) for zh, en in RUN.findall(text)]


def to_pinyin(text: str) -> str:
    """Tone-numbered pinyin (neutral tone 5) for espeak-ng's ``cmn-latn-pinyin`` voice."""
    return " ".join(lazy_pinyin(text, style=Style.TONE3, neutral_tone_with_five=True))


def espeak(text: str, voice: str, speaker: Speaker) -> tuple[np.ndarray, int]:
    """Float audio of ``text`` read by ``voice`` as ``speaker``, silence trimmed, and its rate."""
    executable = shutil.which("espeak-ng")
    if executable is None:
        raise RuntimeError("espeak-ng not found on PATH; run tools/install.sh to install it")
    command = [
        executable,
        "-v",
        f"{voice}+{speaker.variant}",
        "-s",
        str(round(speaker.speed / speaker.formant)),
        "-p",
        str(speaker.pitch),
        "--stdout",
        text,
    ]
    result = subprocess.run(command, capture_output=True)
    if result.returncode != 0 or not result.stdout:
        raise RuntimeError(
            f"{' '.join(command)} failed (exit {result.returncode}): {result.stderr.decode(errors='replace').strip()}"
        )
    audio, rate = sf.read(io.BytesIO(result.stdout), dtype="float32")
    voiced = np.flatnonzero(np.abs(audio) > SILENCE)
    if voiced.size == 0:
        raise RuntimeError(f"{' '.join(command)} produced silence")
    return audio[voiced[0] : voiced[-1] + 1], rate


def synthesize_float(text: str, speaker: Speaker) -> np.ndarray:
    """16 kHz mono float speech in [-1, 1] of a normalized corpus sentence, of any length.

    Raises:
        ValueError: if the sentence has no words.
    """
    runs = language_runs(text)
    if not runs:
        raise ValueError(f"nothing to say in {text!r}")
    pieces = [
        espeak(
            to_pinyin(words) if language == "zh" else words,
            MANDARIN_VOICE if language == "zh" else speaker.english,
            speaker,
        )
        for language, words in runs
    ]
    rate = pieces[0][1]
    pause, edge = np.zeros(round(PAUSE_SECONDS * rate)), np.zeros(round(EDGE_SECONDS * rate))
    joined = [edge]
    for audio, _ in pieces:
        joined += [audio, pause]
    joined[-1] = edge
    ratio = Fraction(SAMPLE_RATE / (rate * speaker.formant)).limit_denominator(1000)
    audio = resample_poly(np.concatenate(joined), ratio.numerator, ratio.denominator)
    return np.clip(audio, -1.0, 1.0)


def to_int16(audio: np.ndarray, what: str) -> np.ndarray:
    """16-bit samples of float audio in [-1, 1]; ``what`` names it in the error.

    Raises:
        ValueError: if the audio is longer than ``MAX_SECONDS``.
    """
    if len(audio) > MAX_SECONDS * SAMPLE_RATE:
        raise ValueError(f"{len(audio) / SAMPLE_RATE:.1f} s of speech for {what} exceeds {MAX_SECONDS} s")
    return np.round(np.clip(audio, -1.0, 1.0) * 32767).astype(np.int16)


def synthesize(text: str, speaker: Speaker) -> np.ndarray:
    """16 kHz mono int16 speech of a normalized corpus sentence.

    Raises:
        ValueError: if the sentence has no words or the audio is longer than ``MAX_SECONDS``.
    """
    return to_int16(synthesize_float(text, speaker), repr(text))
