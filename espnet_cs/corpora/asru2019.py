"""ASRU 2019 Mandarin-English code-switching challenge data (Datatang) as Kaldi data dirs.

Layout (``asru_dir`` holds the four parts; each utterance is a 16-kHz wav with a one-line
transcript of the same name beside it, at any depth below the part's folder)::

    ZH+EN-200h/data/category*/<group>/<session>/T0055G0002S0001.{wav,txt}   code-switched training
    ZH-500h/data/...                                                       Mandarin training (optional)
    ASRU-DEV/data/*.{wav,txt}                                              development set
    ASRU-TEST/*.{wav,txt}                                                  test set

Transcripts carry Datatang's noise tags (``[N]``, ``[S]``, ``[T]``, ``[P]``), removed with the
other bracketed annotations by :func:`espnet_cs.corpora.text_norm.normalize_transcript`. The
speaker is the ``G<4 digits>`` part of the Datatang file name, else the wav's folder.

Sets: ``train`` (200 h, plus the 500 h with ``include_500h``) minus a seeded ``valid_share``
held out as ``valid``, ``dev`` and ``test``. Every set drops utterances whose text is empty
after normalization or that are longer than 30 s (measured from the wav headers); the training
sets also drop those shorter than ``min_seconds`` (counts logged).
"""

from __future__ import annotations

import re
from pathlib import Path

from espnet_cs.corpora import CorpusError
from espnet_cs.corpora.kaldi_data import Utterance, audio_duration, keep_usable, split_off, write_data_dir
from espnet_cs.corpora.text_norm import category, normalize_transcript

PARTS = {"cs200": "ZH+EN-200h", "zh500": "ZH-500h", "dev": "ASRU-DEV", "test": "ASRU-TEST"}
_SPEAKER = re.compile(r"G\d{4}")


def speaker_of(wav: Path) -> str:
    """``T0055G0002S0001.wav`` -> ``G0002``; the folder name for other file names."""
    match = _SPEAKER.search(wav.stem)
    return match.group(0) if match else wav.parent.name


def read_part(part_dir: Path, problems: list[str]) -> list[Utterance]:
    """Every wav below ``part_dir`` with its transcript; problems name the files."""
    utterances = []
    wavs = sorted(part_dir.rglob("*.wav"))
    if not wavs:
        problems.append(f"{part_dir}: no .wav files below it")
    for wav in wavs:
        txt = wav.with_suffix(".txt")
        if not txt.is_file():
            problems.append(f"{wav}: transcript {txt.name} missing")
            continue
        lines = [line for line in txt.read_text(encoding="utf-8-sig").splitlines() if line.strip()]
        if len(lines) != 1:
            problems.append(f"{txt}: expected one transcript line, found {len(lines)}")
            continue
        text = normalize_transcript(lines[0])
        utterances.append(
            Utterance(
                wav.stem,
                wav.stem,
                wav,
                speaker_of(wav),
                text,
                category(text) if text else "",
                audio_duration(wav, problems),
            )
        )
    return utterances


def prepare_asru2019(
    asru_dir: Path,
    data_dir: Path,
    include_500h: bool = False,
    valid_share: float = 0.05,
    min_seconds: float = 0.1,
    seed: int = 0,
) -> dict[str, int]:
    """Write ``data_dir/{train,valid,dev,test}``; returns the utterances per set.

    Raises:
        CorpusError: listing every missing folder or file and unreadable audio, before anything is written.
    """
    parts = ["cs200"] + (["zh500"] if include_500h else []) + ["dev", "test"]
    missing = [f"ASRU 2019 folder missing: {asru_dir / PARTS[p]}" for p in parts if not (asru_dir / PARTS[p]).is_dir()]
    if missing:
        raise CorpusError(missing + [f"--asru_dir {asru_dir} must hold {', '.join(PARTS[p] for p in parts)}"])
    problems: list[str] = []
    found = {p: read_part(asru_dir / PARTS[p], problems) for p in parts}
    if problems:
        raise CorpusError(problems)
    train = keep_usable(found["cs200"] + found.get("zh500", []), "train+valid", min_seconds)
    sets = dict(zip(("train", "valid"), split_off(train, valid_share, seed, f"ASRU 2019 training data in {asru_dir}")))
    sets.update({name: keep_usable(found[name], name) for name in ("dev", "test")})
    for name, utterances in sets.items():
        write_data_dir(data_dir / name, utterances)
    return {name: len(utterances) for name, utterances in sets.items()}
