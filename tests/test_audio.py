"""Tests of espnet_cs.audio: reading wav.scp entries through soundfile, truncation caught."""

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from espnet_cs.audio import SAMPLE_RATE, AudioError, AudioProblem, read_entry, to_mono_16k

FRAMES = 1000


def truncated(path: Path, subtype: str, container: str) -> Path:
    """A stereo file of ``FRAMES`` frames whose last third of bytes is cut off."""
    samples = np.random.default_rng(0).uniform(-0.5, 0.5, (FRAMES, 2)).astype(np.float32)
    sf.write(path, samples, SAMPLE_RATE, subtype=subtype, format=container)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) - len(whole) // 3])
    return path


@pytest.mark.parametrize("container", ["WAV", "WAVEX"])
@pytest.mark.parametrize("subtype", ["PCM_16", "PCM_24", "FLOAT"])
def test_truncated_wav_of_any_sample_format_is_caught(tmp_path, subtype, container):
    path = truncated(tmp_path / "a.wav", subtype, container)
    for entry in (str(path), f"cat {path} |"):
        with pytest.raises(AudioError, match=f"the header promises {FRAMES} samples, the file holds") as error:
            read_entry(entry)
        assert error.value.problem is AudioProblem.TRUNCATED


def test_whole_wav_is_read_as_written(tmp_path):
    samples = np.random.default_rng(0).integers(-8000, 8000, (FRAMES, 2), dtype=np.int16)
    sf.write(tmp_path / "a.wav", samples, 8000, subtype="PCM_16")
    data, rate = read_entry(str(tmp_path / "a.wav"))
    assert rate == 8000 and data.dtype == np.float32
    np.testing.assert_array_equal(data, samples / 32768)
    assert to_mono_16k(data, rate).shape == (2 * FRAMES,)


@pytest.mark.parametrize(
    "entry, problem, detail",
    [
        ("{d}/missing.wav", AudioProblem.MISSING, ""),
        ("{d}/empty.wav", AudioProblem.EMPTY, "0 bytes"),
        ("true |", AudioProblem.EMPTY, "command printed nothing"),
        ("echo oops >&2; exit 3 |", AudioProblem.PIPE_FAILED, "exit status 3: oops"),
    ],
)
def test_unusable_entries_say_why(tmp_path, entry, problem, detail):
    (tmp_path / "empty.wav").touch()
    with pytest.raises(AudioError) as error:
        read_entry(entry.format(d=tmp_path))
    assert (error.value.problem, error.value.detail) == (problem, detail)
