"""LibriSpeech test-clean (OpenSLR 12), English-only, for the forgetting check.

Layout (``librispeech_dir`` holds ``LibriSpeech/``)::

    LibriSpeech/test-clean/<speaker>/<chapter>/<speaker>-<chapter>-<n>.flac
    LibriSpeech/test-clean/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt   <utt> <UPPERCASE TEXT>

Text is lowercased (apostrophes inside words stay), every utterance is category ``en``.
Utterances longer than Whisper's 30 s window (a few in test-clean) are dropped and counted.
"""

from __future__ import annotations

from pathlib import Path

from espnet_cs.corpora import CorpusError
from espnet_cs.corpora.kaldi_data import Utterance, audio_duration, write_test_set
from espnet_cs.corpora.text_norm import normalize_transcript
from espnet_cs.kaldi_dir import read_kaldi_map

SUBSET = "LibriSpeech/test-clean"


def prepare_librispeech_test_clean(librispeech_dir: Path, out: Path) -> int:
    """Write the Kaldi dir ``out`` (e.g. ``data/librispeech_test_clean``); returns its utterance count.

    Raises:
        CorpusError: naming a missing subset, flac files missing for transcript lines, unreadable audio.
    """
    subset = librispeech_dir / SUBSET
    transcripts = sorted(subset.glob("*/*/*.trans.txt"))
    if not transcripts:
        raise CorpusError(
            [
                f"LibriSpeech: no {subset}/<speaker>/<chapter>/*.trans.txt",
                f"--librispeech_dir {librispeech_dir} must hold LibriSpeech/test-clean (OpenSLR 12)",
            ]
        )
    problems: list[str] = []
    utterances = []
    for trans in transcripts:
        for utt, raw in read_kaldi_map(trans).items():
            flac = trans.parent / f"{utt}.flac"
            if not flac.is_file():
                problems.append(f"{trans}: {utt}: audio {flac} missing")
                continue
            utterances.append(
                Utterance(
                    utt,
                    utt,
                    flac,
                    trans.parent.parent.name,
                    normalize_transcript(raw),
                    "en",
                    audio_duration(flac, problems),
                )
            )
    return write_test_set(out, utterances, problems)
