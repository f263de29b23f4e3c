"""Audio: the sample rate of every audio path, and reading a ``wav.scp`` entry into 16-kHz mono.

An entry is a path to a file soundfile decodes or a Kaldi read pipe ``cmd ... |``, run with
``subprocess`` rather than ``kaldiio.load_scp``: kaldiio ignores a pipe's exit status (a failing
command yields truncated audio), reads only 8/16-bit wav, and returns int16 for wav but float64
for flac.

A WAV file shorter than its header says is caught although libsndfile reads it without an error,
returning the samples that are there (a truncated file would pair a whole transcript with part of
its audio): libsndfile's log of the file (``SoundFile.extra_info``) names the data size the
header promised beside the size the file holds.
"""

from __future__ import annotations

import enum
import io
import re
import subprocess
from math import gcd
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

SAMPLE_RATE = 16000
"""Samples per second, Whisper's (``whisper.audio.SAMPLE_RATE``), here without importing torch."""

_UNKNOWN_LENGTH = 0x7FFF0000  # data sizes from here on are placeholders of writers to a pipe (sox, ffmpeg)
_SHORT_DATA_CHUNK = re.compile(r"^data\s*: (\d+) \(should be \d+\)$", re.MULTILINE)
_BLOCK_ALIGN = re.compile(r"^\s*Block Align\s*: (\d+)$", re.MULTILINE)


class AudioProblem(enum.Enum):
    """Why a ``wav.scp`` entry gives no usable audio."""

    MISSING = "audio file missing"
    EMPTY = "empty audio"
    CORRUPT = "audio cannot be decoded"
    TRUNCATED = "audio shorter than its header says (truncated file)"
    PIPE_FAILED = "pipe command failed"


class AudioError(Exception):
    """A ``wav.scp`` entry gives no usable audio: ``problem`` says why, ``detail`` the specifics."""

    def __init__(self, problem: AudioProblem, detail: str = ""):
        super().__init__(f"{problem.value}: {detail}" if detail else problem.value)
        self.problem = problem
        self.detail = detail


def read_entry(entry: str) -> tuple[np.ndarray, int]:
    """Decode a ``wav.scp`` entry (a path or a read pipe) into float32 ``(frames, channels)`` and its
    sample rate.

    Raises:
        AudioError: a missing or empty file, a failing or silent pipe, undecodable or truncated audio.
    """
    source = _pipe_output(entry) if entry.endswith("|") else _audio_file(entry)
    try:
        with sf.SoundFile(source) as f:
            data, rate, log = f.read(dtype="float32", always_2d=True), f.samplerate, f.extra_info
    except sf.LibsndfileError as e:
        raise AudioError(AudioProblem.CORRUPT, str(e)) from e
    if len(data) == 0:
        raise AudioError(AudioProblem.EMPTY, "0 samples")
    promised = promised_frames(log)
    if promised is not None and promised > len(data):
        raise AudioError(AudioProblem.TRUNCATED, f"the header promises {promised} samples, the file holds {len(data)}")
    return data, rate


def _pipe_output(entry: str) -> io.BytesIO:
    """What the command of a read pipe ``cmd ... |`` prints."""
    proc = subprocess.run(entry[:-1], shell=True, capture_output=True)
    if proc.returncode != 0:
        stderr = proc.stderr.decode(errors="replace").strip().splitlines()
        raise AudioError(AudioProblem.PIPE_FAILED, f"exit status {proc.returncode}: {' '.join(stderr[-3:])}")
    if not proc.stdout:
        raise AudioError(AudioProblem.EMPTY, "command printed nothing")
    return io.BytesIO(proc.stdout)


def _audio_file(entry: str) -> Path:
    """The path of an entry, checked to be a non-empty file."""
    path = Path(entry)
    if not path.is_file():
        raise AudioError(AudioProblem.MISSING)
    if path.stat().st_size == 0:
        raise AudioError(AudioProblem.EMPTY, "0 bytes")
    return path


def promised_frames(log: str) -> int | None:
    """The frames a WAV header promises where libsndfile's log (``SoundFile.extra_info``) says the
    file holds less data (``data : <promised bytes> (should be <bytes held>)``); None where it holds
    all of it, the header leaves the length open (a writer to a pipe) or the file is no WAV."""
    data, block_align = _SHORT_DATA_CHUNK.search(log), _BLOCK_ALIGN.search(log)
    if data is None or block_align is None:
        return None
    size, align = int(data.group(1)), int(block_align.group(1))
    return None if size == 0 or size >= _UNKNOWN_LENGTH or not align else size // align


def to_mono_16k(data: np.ndarray, rate: int) -> np.ndarray:
    """Average ``(frames, channels)`` to mono and resample to 16 kHz (float32, 1-D)."""
    mono = data.mean(axis=1)
    if rate != SAMPLE_RATE:
        g = gcd(SAMPLE_RATE, rate)
        mono = resample_poly(mono, SAMPLE_RATE // g, rate // g).astype(np.float32)
    return mono
