"""Acoustic conditions of the ``cs_bench`` corpus: speed, room reverberation, noise and level.

An utterance's dry speech goes through, in this order:

1. **speed perturbation** by 0.9, 1.0 or 1.1 as Kaldi's and ESPnet's recipes do it (sox ``speed``:
   resampling, so tempo and pitch change together);
2. **reverberation**: convolution with the impulse response of a simulated shoebox room
   (pyroomacoustics' image source method). Rooms are drawn per split (``random_room``),
   so test rooms are unseen in training; each room's RT60 is measured on its impulse response
   (Schroeder backward integration, T20 extrapolated) after one correction of the requested
   absorption, since Sabine's formula overestimates the absorption a shoebox needs;
3. **additive noise** at a signal-to-noise ratio over the whole utterance: stationary coloured
   noise (white, pink, brown: power spectrum ``1 / f**exponent``) or babble, the sum of several
   other synthetic utterances of the same split;
4. **level**: the mixture is scaled to an RMS level in dBFS (lowered if it would clip).
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import pyroomacoustics as pra
from scipy.signal import fftconvolve, resample_poly

from espnet_cs.audio import SAMPLE_RATE

NOISE_EXPONENTS = {"white": 0.0, "pink": 1.0, "brown": 2.0}
NOISES = ("none", *NOISE_EXPONENTS, "babble")
PEAK = 0.99  # largest sample magnitude of a mixture
TAIL_SECONDS = 0.3  # reverberant tail kept after the speech


@dataclass(frozen=True)
class ConditionRanges:
    """The distribution acoustic conditions are drawn from (one per utterance).

    Attributes:
        speeds: speed perturbation factors, equally likely.
        reverb_share: share of utterances in a room (the rest are dry).
        rt60: range of the requested RT60 of a room in seconds.
        rooms: rooms simulated per split.
        noise_shares: share of each kind of noise (``NOISES``).
        snr_db: range of the SNR in dB.
        babble_talkers: range of the number of talkers in babble.
        level_dbfs: range of the RMS level of the mixture.
    """

    speeds: tuple[float, ...] = (0.9, 1.0, 1.1)
    reverb_share: float = 0.7
    rt60: tuple[float, float] = (0.2, 0.7)
    rooms: int = 40
    noise_shares: tuple[tuple[str, float], ...] = (
        ("none", 0.2),
        ("white", 0.1),
        ("pink", 0.15),
        ("brown", 0.1),
        ("babble", 0.45),
    )
    snr_db: tuple[float, float] = (5.0, 25.0)
    babble_talkers: tuple[int, int] = (3, 6)
    level_dbfs: tuple[float, float] = (-35.0, -15.0)


@dataclass(frozen=True)
class Condition:
    """The acoustic condition of one utterance; ``room`` indexes the split's rooms (-1: dry)."""

    speed: float
    room: int
    noise: str
    snr_db: float
    babble_talkers: int
    level_dbfs: float

    def describe(self, rt60: Sequence[float]) -> str:
        """One ``key=value`` line, e.g. ``speed=1.1 rt60=0.43 noise=babble/4 snr=12.3 level=-24.1``."""
        room = f"{rt60[self.room]:.2f}" if self.room >= 0 else "dry"
        noise = f"babble/{self.babble_talkers}" if self.noise == "babble" else self.noise
        snr = f" snr={self.snr_db:.1f}" if self.noise != "none" else ""
        return f"speed={self.speed} rt60={room} noise={noise}{snr} level={self.level_dbfs:.1f}"


def draw_condition(rng: random.Random, ranges: ConditionRanges) -> Condition:
    """A random condition from ``ranges``."""
    names, shares = zip(*ranges.noise_shares)
    return Condition(
        speed=rng.choice(ranges.speeds),
        room=rng.randrange(ranges.rooms) if rng.random() < ranges.reverb_share else -1,
        noise=rng.choices(names, weights=shares)[0],
        snr_db=rng.uniform(*ranges.snr_db),
        babble_talkers=rng.randint(*ranges.babble_talkers),
        level_dbfs=rng.uniform(*ranges.level_dbfs),
    )


def change_speed(audio: np.ndarray, factor: float) -> np.ndarray:
    """``audio`` played ``factor`` times faster (sox ``speed``): ``len / factor`` samples."""
    ratio = Fraction(factor).limit_denominator(100)
    return audio if ratio == 1 else resample_poly(audio, ratio.denominator, ratio.numerator)


def measure_rt60(rir: np.ndarray) -> float:
    """RT60 in seconds of an impulse response: its T20 from Schroeder backward integration."""
    return float(pra.experimental.measure_rt60(rir, fs=SAMPLE_RATE, decay_db=20))


def shoebox_rir(rt60: float, rng: np.random.Generator) -> np.ndarray:
    """The impulse response, source to microphone, of a random shoebox room built for ``rt60``.

    The room is 3-8 m long, 0.6-1 times as wide, 2.5-3.5 m high; source and microphone are at
    least 0.5 m from the walls and 1-3 m apart.
    """
    length = rng.uniform(3.0, 8.0)
    dims = np.array([length, length * rng.uniform(0.6, 1.0), rng.uniform(2.5, 3.5)])
    margin = 0.5
    mic = rng.uniform(margin, dims - margin)
    for _ in range(1000):
        source = rng.uniform(margin, dims - margin)
        if 1.0 <= np.linalg.norm(source - mic) <= 3.0:
            break
    absorption, max_order = pra.inverse_sabine(rt60, dims)
    room = pra.ShoeBox(dims, fs=SAMPLE_RATE, materials=pra.Material(absorption), max_order=max_order)
    room.add_source(source)
    room.add_microphone(mic)
    room.compute_rir()
    rir = np.asarray(room.rir[0][0], dtype=np.float64)
    return rir / np.abs(rir).max()


def calibrated_rir(rt60: float, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """The impulse response of a random room with an RT60 close to ``rt60``, and its measured RT60.

    The room is simulated for ``rt60``, measured, and simulated once more for the RT60 that the
    first measurement says would give ``rt60``.
    """
    state = rng.bit_generator.state
    first = measure_rt60(shoebox_rir(rt60, rng))
    rng.bit_generator.state = state  # the same room, with corrected absorption
    rir = shoebox_rir(min(max(rt60 * rt60 / first, 0.05), 2.0), rng)
    return rir, measure_rt60(rir)


def random_room(ranges: ConditionRanges, seed: str) -> tuple[np.ndarray, float]:
    """A room with an RT60 drawn from ``ranges.rt60``: its impulse response and measured RT60."""
    rng = np.random.default_rng(int.from_bytes(hashlib.sha256(seed.encode()).digest(), "big"))
    return calibrated_rir(rng.uniform(*ranges.rt60), rng)


def reverberate(audio: np.ndarray, rir: np.ndarray) -> np.ndarray:
    """``audio`` in the room of ``rir``, aligned on the direct path, with a ``TAIL_SECONDS`` tail."""
    direct = int(np.argmax(np.abs(rir)))
    samples = len(audio) + round(TAIL_SECONDS * SAMPLE_RATE)
    wet = fftconvolve(audio, rir[direct:])[:samples]
    return np.pad(wet, (0, samples - len(wet)))


def coloured_noise(samples: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise whose power spectrum falls as ``1 / f**exponent`` (0 white, 1 pink, 2 brown)."""
    spectrum = np.fft.rfft(rng.standard_normal(samples))
    frequencies = np.fft.rfftfreq(samples)
    frequencies[0] = frequencies[1] if samples > 1 else 1.0
    noise = np.fft.irfft(spectrum / frequencies ** (exponent / 2), n=samples)
    return noise - noise.mean()


def babble(talkers: Sequence[np.ndarray], samples: int, rng: np.random.Generator) -> np.ndarray:
    """The sum of ``talkers``, each looped to ``samples`` from a random offset and at equal power."""
    mixture = np.zeros(samples)
    for talker in talkers:
        looped = np.resize(talker, samples + len(talker))
        start = int(rng.integers(len(talker)))
        segment = looped[start : start + samples]
        mixture += segment / max(np.sqrt(np.mean(segment**2)), 1e-9)
    return mixture


def power(audio: np.ndarray) -> float:
    """Mean squared sample value."""
    return float(np.mean(np.square(audio, dtype=np.float64)))


def add_noise(speech: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """``speech + noise``, the noise scaled so that ``10 log10(P(speech) / P(noise)) == snr_db``."""
    if len(noise) != len(speech):
        raise ValueError(f"noise has {len(noise)} samples, speech {len(speech)}")
    scale = math.sqrt(power(speech) / (power(noise) * 10 ** (snr_db / 10)))
    return speech + scale * noise


def set_level(audio: np.ndarray, level_dbfs: float) -> np.ndarray:
    """``audio`` scaled to an RMS of ``level_dbfs`` (0 dBFS: RMS 1), or lower if it would exceed ``PEAK``."""
    gain = 10 ** (level_dbfs / 20) / math.sqrt(power(audio))
    return audio * min(gain, PEAK / np.abs(audio).max())
