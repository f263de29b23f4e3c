"""AISHELL-1 test set (OpenSLR 33), Mandarin-only, for the forgetting check.

Layout (``aishell_dir`` holds ``data_aishell/``, the per-speaker archives of ``wav/`` extracted)::

    data_aishell/wav/test/<speaker>/<utt>.wav            e.g. S0764/BAC009S0764W0121.wav
    data_aishell/transcript/aishell_transcript_v0.8.txt  <utt> <words separated by spaces>

Words are joined (Mandarin is written unspaced), every utterance is category ``zh``. Wavs
without a transcript line (AISHELL-1 has a few) are skipped and counted; utterances longer than
30 s would be dropped (counted) but AISHELL-1 has none.
"""

from __future__ import annotations

import logging
from pathlib import Path

from espnet_cs.corpora import CorpusError
from espnet_cs.corpora.kaldi_data import Utterance, audio_duration, write_test_set
from espnet_cs.corpora.text_norm import normalize_transcript
from espnet_cs.kaldi_dir import read_kaldi_map

log = logging.getLogger(__name__)

TRANSCRIPT = "data_aishell/transcript/aishell_transcript_v0.8.txt"
WAV_DIR = "data_aishell/wav/test"


def prepare_aishell_test(aishell_dir: Path, out: Path) -> int:
    """Write the Kaldi dir ``out`` (e.g. ``data/aishell_test``); returns its utterance count.

    Raises:
        CorpusError: naming a missing transcript, missing or unextracted wavs, unreadable audio.
    """
    transcript, wav_dir = aishell_dir / TRANSCRIPT, aishell_dir / WAV_DIR
    wavs = sorted(wav_dir.glob("*/*.wav"))
    problems = [] if transcript.is_file() else [f"AISHELL-1 transcript missing: {transcript}"]
    if not wavs:
        archives = sorted((aishell_dir / "data_aishell/wav").glob("*.tar.gz"))
        problems.append(
            f"AISHELL-1: no {wav_dir}/<speaker>/*.wav"
            + (
                f"; extract the {len(archives)} archives first: cd {archives[0].parent} && "
                "for f in *.tar.gz; do tar xzf $f; done"
                if archives
                else ""
            )
        )
    if problems:
        raise CorpusError(problems + [f"--aishell_dir {aishell_dir} must hold data_aishell/ (OpenSLR 33)"])
    texts = read_kaldi_map(transcript)
    untranscribed = [wav for wav in wavs if wav.stem not in texts]
    if untranscribed:
        log.info("AISHELL-1 test: %d wav(s) without a transcript skipped", len(untranscribed))
    utterances = []
    for wav in wavs:
        if wav.stem in texts:
            text = normalize_transcript(texts[wav.stem])
            utterances.append(
                Utterance(wav.stem, wav.stem, wav, wav.parent.name, text, "zh", audio_duration(wav, problems))
            )
    return write_test_set(out, utterances, problems)
