"""Acoustic conditions of cs_bench: speed, rooms, noise and level do what they state."""

from __future__ import annotations

import random

import numpy as np
import pytest

from espnet_cs.audio import SAMPLE_RATE
from espnet_cs.synth import acoustics
from espnet_cs.synth.acoustics import Condition, ConditionRanges
from espnet_cs.synth.speech import to_int16


def tone(frequency: float, seconds: float = 1.0) -> np.ndarray:
    return np.sin(2 * np.pi * frequency * np.arange(round(seconds * SAMPLE_RATE)) / SAMPLE_RATE)


def peak_frequency(audio: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(audio * np.hanning(len(audio))))
    return float(np.fft.rfftfreq(len(audio), 1 / SAMPLE_RATE)[np.argmax(spectrum)])


def snr_db(speech: np.ndarray, mixture: np.ndarray) -> float:
    return 10 * np.log10(acoustics.power(speech) / acoustics.power(mixture - speech))


@pytest.mark.parametrize("factor", [0.9, 1.1])
def test_speed_changes_tempo_and_pitch_as_sox_speed(factor):
    slower_or_faster = acoustics.change_speed(tone(1000.0), factor)
    assert abs(len(slower_or_faster) - SAMPLE_RATE / factor) <= 1
    assert peak_frequency(slower_or_faster) == pytest.approx(1000.0 * factor, abs=2.0)
    np.testing.assert_array_equal(acoustics.change_speed(tone(1000.0), 1.0), tone(1000.0))


def test_rt60_measurement_on_a_known_decay():
    rng = np.random.default_rng(0)
    t = np.arange(SAMPLE_RATE) / SAMPLE_RATE
    for rt60 in (0.3, 0.6):
        decay = rng.standard_normal(len(t)) * 10 ** (-3 * t / rt60)  # -60 dB at rt60
        assert acoustics.measure_rt60(decay) == pytest.approx(rt60, rel=0.05)


@pytest.mark.parametrize("rt60", [0.25, 0.45, 0.65])
def test_room_impulse_response_has_the_requested_rt60(rt60):
    rir, measured = acoustics.calibrated_rir(rt60, np.random.default_rng(int(rt60 * 100)))
    assert measured == pytest.approx(rt60, rel=0.1)
    assert measured == pytest.approx(acoustics.measure_rt60(rir))
    assert np.abs(rir).max() == pytest.approx(1.0)


def test_rooms_are_a_function_of_their_seed():
    ranges = ConditionRanges(rt60=(0.2, 0.3))
    first, again = acoustics.random_room(ranges, "a"), acoustics.random_room(ranges, "a")
    np.testing.assert_array_equal(first[0], again[0])
    assert not np.array_equal(first[0], acoustics.random_room(ranges, "b")[0])
    assert 0.18 <= first[1] <= 0.33


def test_reverberation_keeps_the_direct_path_in_place():
    audio = tone(300.0, 0.5)
    rir = np.zeros(800)
    rir[100], rir[500] = 1.0, 0.5  # direct path, one echo 25 ms later
    wet = acoustics.reverberate(audio, rir)
    assert len(wet) == len(audio) + round(acoustics.TAIL_SECONDS * SAMPLE_RATE)
    np.testing.assert_allclose(wet[:400], audio[:400], atol=1e-9)
    np.testing.assert_allclose(wet[400 : len(audio)], audio[400:] + 0.5 * audio[:-400], atol=1e-9)


@pytest.mark.parametrize("exponent, slope", [(0.0, 0.0), (1.0, -3.0), (2.0, -6.0)])
def test_coloured_noise_falls_by_the_stated_db_per_octave(exponent, slope):
    noise = acoustics.coloured_noise(2**18, exponent, np.random.default_rng(1))
    power = np.abs(np.fft.rfft(noise)) ** 2
    frequency = np.fft.rfftfreq(len(noise), 1 / SAMPLE_RATE)
    band = (frequency > 100) & (frequency < 6400)
    fitted = np.polyfit(np.log2(frequency[band]), 10 * np.log10(power[band]), 1)[0]
    assert fitted == pytest.approx(slope, abs=0.3)


@pytest.mark.parametrize("kind", ["white", "pink", "brown", "babble"])
@pytest.mark.parametrize("wanted", [0.0, 10.0, 20.0])
def test_mixture_has_the_requested_snr_after_level_and_16_bits(kind, wanted):
    rng = np.random.default_rng(2)
    speech = 0.3 * tone(220.0, 2.0) * (1 + np.sin(np.arange(2 * SAMPLE_RATE) / 800))
    if kind == "babble":
        noise = acoustics.babble([tone(f, 0.7) for f in (150.0, 310.0, 480.0)], len(speech), rng)
    else:
        noise = acoustics.coloured_noise(len(speech), acoustics.NOISE_EXPONENTS[kind], rng)
    mixture = acoustics.add_noise(speech, noise, wanted)
    assert snr_db(speech, mixture) == pytest.approx(wanted, abs=1e-6)
    gain = 10 ** (-30 / 20) / np.sqrt(acoustics.power(mixture))
    stored = to_int16(acoustics.set_level(mixture, -30.0), "mixture") / 32767
    assert snr_db(speech * gain, stored) == pytest.approx(wanted, abs=1.0)


def test_babble_talkers_have_equal_power_and_loop():
    short, loud = tone(200.0, 0.3), 5 * tone(350.0, 0.5)
    mixture = acoustics.babble([short, loud], SAMPLE_RATE, np.random.default_rng(3))
    assert len(mixture) == SAMPLE_RATE
    assert acoustics.power(mixture) == pytest.approx(2.0, rel=0.05)  # two unit-power talkers


def test_level_is_set_unless_it_would_clip():
    audio = tone(440.0)
    assert 20 * np.log10(np.sqrt(acoustics.power(acoustics.set_level(audio, -20.0)))) == pytest.approx(-20.0)
    loud = acoustics.set_level(audio, 0.0)  # a sine at RMS 1 would peak at 1.41
    assert np.abs(loud).max() == pytest.approx(acoustics.PEAK)
    with pytest.raises(ValueError, match="noise has 3 samples"):
        acoustics.add_noise(audio, np.ones(3), 10.0)


def test_conditions_are_drawn_within_their_ranges():
    ranges = ConditionRanges(snr_db=(5.0, 6.0), level_dbfs=(-30.0, -29.0), rooms=3)
    conditions = [acoustics.draw_condition(random.Random(i), ranges) for i in range(200)]
    assert conditions == [acoustics.draw_condition(random.Random(i), ranges) for i in range(200)]
    assert {c.speed for c in conditions} == {0.9, 1.0, 1.1}
    assert {c.noise for c in conditions} == set(acoustics.NOISES)
    assert {c.room for c in conditions} == {-1, 0, 1, 2}
    assert 0.5 < sum(c.room >= 0 for c in conditions) / 200 < 0.9
    assert all(5.0 <= c.snr_db <= 6.0 and -30.0 <= c.level_dbfs <= -29.0 for c in conditions)
    assert all(3 <= c.babble_talkers <= 6 for c in conditions)


def test_condition_line():
    condition = Condition(speed=1.1, room=1, noise="babble", snr_db=12.34, babble_talkers=4, level_dbfs=-24.06)
    assert condition.describe([0.3, 0.43]) == "speed=1.1 rt60=0.43 noise=babble/4 snr=12.3 level=-24.1"
    dry = Condition(speed=1.0, room=-1, noise="none", snr_db=9.0, babble_talkers=3, level_dbfs=-20.0)
    assert dry.describe([0.3]) == "speed=1.0 rt60=dry noise=none level=-20.0"
