"""Python API: transcribe audio with a packed model (``python -m espnet_cs.bin.pack``).

from espnet_cs.api import Speech2Text

speech2text = Speech2Text.from_pretrained("exp/spt4asr/packed.zip")  # or the unpacked dir
result = speech2text("utt.wav")  # or a 1-D float array of 16-kHz samples
result.text    # the hypothesis
result.tokens  # its token ids
result.pieces  # [(token text, "zh" | "en" | "other"), ...]

# openai-whisper's beam search and temperature fallback (espnet_cs.search, espnet_cs.loop_control):
Speech2Text.from_pretrained("exp/spt4asr/packed.zip", decoding=DecodingConfig(beam_size=5, fallback=Fallback()))
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from whisper.audio import N_SAMPLES

from espnet_cs.audio import SAMPLE_RATE, to_mono_16k
from espnet_cs.decoding import DecodingConfig, Hypothesis, Transcriber
from espnet_cs.packing import BACKBONE_KEY, CONFIG_KEY, MODEL_KEY, load_packed, unpack_zip, unpacked_files

Speech = str | os.PathLike | np.ndarray


class Speech2Text:
    """Transcription of one utterance (at most 30 s) with a packed model: greedy, or as ``decoding`` says
    (e.g. ``DecodingConfig(beam_size=5, fallback=Fallback())``)."""

    def __init__(self, transcriber: Transcriber) -> None:
        self.transcriber = transcriber

    @classmethod
    def from_pretrained(cls, model: str | os.PathLike, **kwargs) -> Speech2Text:
        """Load a packed zip, or a directory ESPnet's ``unpack`` (or ``espnet_model_zoo``) wrote.

        Keyword arguments are those of :meth:`from_files`.
        """
        path = Path(model)
        if path.is_dir():
            return cls.from_files(**unpacked_files(path), **kwargs)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such packed model (zip) or unpacked model directory")
        with tempfile.TemporaryDirectory() as tmp:  # everything is read while the model is built
            return cls.from_files(**unpack_zip(path, tmp), **kwargs)

    @classmethod
    def from_files(
        cls,
        asr_train_config: str,
        asr_model_file: str,
        backbone_identity_file: str,
        whisper_model: str | None = None,
        cache_dir: str | None = None,
        decoding: DecodingConfig = DecodingConfig(),
        device: str = "cpu",
    ) -> Speech2Text:
        """Build from unpacked files, e.g. ``Speech2Text.from_files(**ModelDownloader().unpack_local_file(zip))``.

        Args:
            asr_train_config, asr_model_file, backbone_identity_file: the unpacked files.
            whisper_model: backbone spec instead of the packed one (a local copy; sha256 checked).
            cache_dir: cache of converted backbones.
            decoding: search and loop-control options (:class:`espnet_cs.search.DecodingConfig`).
            device: torch device.
        Raises:
            espnet_cs.packing.BackboneError: the backbone is missing or not the one trained on.
            ValueError: the beam search would not fit the device's memory.
        """
        files = {CONFIG_KEY: asr_train_config, MODEL_KEY: asr_model_file, BACKBONE_KEY: backbone_identity_file}
        model = load_packed(files, whisper_model, cache_dir, device)
        transcriber = Transcriber.from_model(model, decoding, device)
        transcriber.check_memory(batch_size=1)
        return cls(transcriber)

    def __call__(self, speech: Speech, sample_rate: int = SAMPLE_RATE) -> Hypothesis:
        """Transcribe an audio file (any rate and channels soundfile reads) or a 1-D float array.

        Args:
            speech: a path, or (samples,) float audio in [-1, 1].
            sample_rate: rate of an array (files carry their own); resampled to 16 kHz.
        """
        return self.transcriber([load_speech(speech, sample_rate)])[0]


def load_speech(speech: Speech, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """(samples,) float32 16-kHz mono audio of at most 30 s from a file or an array.

    Raises:
        FileNotFoundError: no such file.
        ValueError: undecodable file, array not 1-D or not float, empty or longer than 30 s.
    """
    if isinstance(speech, (str, os.PathLike)):
        path = Path(speech)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such audio file")
        try:
            data, rate = sf.read(path, dtype="float32", always_2d=True)
        except sf.LibsndfileError as e:
            raise ValueError(f"{path}: not an audio file soundfile can decode: {e}") from e
        source = str(path)
    else:
        data, rate, source = np.asarray(speech), sample_rate, "audio array"
        if data.ndim != 1 or not np.issubdtype(data.dtype, np.floating):
            raise ValueError(
                f"{source}: expected a 1-D float array of mono samples, got {data.dtype} of shape "
                f"{data.shape} (average the channels of multi-channel audio)"
            )
        data = data.astype(np.float32)[:, None]
    audio = to_mono_16k(data, rate)
    if audio.size == 0:
        raise ValueError(f"{source}: no samples")
    if audio.size > N_SAMPLES:
        raise ValueError(
            f"{source}: {audio.size / SAMPLE_RATE:.1f} s of audio; Whisper reads at most "
            f"{N_SAMPLES // SAMPLE_RATE} s at once: split it first"
        )
    return audio
