"""Utterances of a prepared corpus and the Kaldi data dir they are written to.

A data dir holds ``wav.scp`` (recording -> audio file), ``segments`` when utterances are cut from
longer recordings (``utt recording start end``, seconds), ``text``, ``utt2spk``, ``spk2utt`` and
``utt2category`` (cs/zh/en): what stage 2 (``espnet_cs.data_format``) checks, decodes (flac
included) and cuts.
"""

from __future__ import annotations

import logging
import random
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

from espnet_cs.corpora import CorpusError
from espnet_cs.data_format import MAX_SECONDS
from espnet_cs.kaldi_dir import spk2utt, write_kaldi_map

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Utterance:
    """One utterance: ``start``/``end`` (seconds) cut it from ``recording``; ``None`` means the whole file."""

    utt_id: str
    recording: str
    audio: Path
    speaker: str
    text: str  # normalized (espnet_cs.corpora.text_norm)
    category: str  # cs, zh or en
    duration: float  # seconds
    start: float | None = None
    end: float | None = None


def audio_duration(path: Path, problems: list[str]) -> float:
    """Duration of an audio file from its header; 0 and a problem naming the file if unreadable."""
    try:
        return sf.info(str(path)).duration
    except (sf.LibsndfileError, RuntimeError) as e:
        problems.append(f"{path}: cannot read the audio: {e}")
        return 0.0


def keep_usable(utterances: Iterable[Utterance], name: str, min_seconds: float = 0.0) -> list[Utterance]:
    """The utterances with a transcript, at least ``min_seconds`` long and at most Whisper's 30 s;
    how many each rule drops is logged."""
    kept, dropped = [], Counter()
    for utt in utterances:
        if not utt.text:
            dropped["empty transcript after normalization"] += 1
        elif utt.duration > MAX_SECONDS:
            dropped[f"longer than {MAX_SECONDS:g} s"] += 1
        elif utt.duration < min_seconds:
            dropped[f"shorter than {min_seconds:g} s"] += 1
        else:
            kept.append(utt)
    for reason, count in sorted(dropped.items()):
        log.info("%s: dropped %d utterance(s): %s", name, count, reason)
    return kept


def split_off(
    utterances: Sequence[Utterance], share: float, seed: int, name: str
) -> tuple[list[Utterance], list[Utterance]]:
    """``(rest, held_out)``: a seeded random ``share`` of the utterances held out (at least one, not all).

    Raises:
        CorpusError: if ``utterances`` (of the set ``name``) are fewer than two.
    """
    if len(utterances) < 2:
        raise CorpusError([f"{name}: {len(utterances)} usable utterance(s), too few to hold out a validation set"])
    ordered = sorted(utterances, key=lambda u: u.utt_id)
    count = min(len(ordered) - 1, max(1, round(share * len(ordered))))
    held = set(random.Random(seed).sample(range(len(ordered)), count))
    return ([u for i, u in enumerate(ordered) if i not in held], [u for i, u in enumerate(ordered) if i in held])


def write_data_dir(out: Path, utterances: Sequence[Utterance]) -> None:
    """Write the Kaldi data dir ``out`` atomically (built beside it, renamed over it).

    Raises:
        CorpusError: on duplicate utterance ids or a recording id naming two audio files.
    """
    problems = [
        f"{out.name}: utterance id {utt} occurs {n} times"
        for utt, n in Counter(u.utt_id for u in utterances).items()
        if n > 1
    ]
    recordings: dict[str, Path] = {}
    for u in utterances:
        if recordings.setdefault(u.recording, u.audio) != u.audio:
            problems.append(f"{out.name}: recording {u.recording} is both {recordings[u.recording]} and {u.audio}")
    if problems:
        raise CorpusError(problems)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    write_kaldi_map(tmp / "wav.scp", {rec: path.absolute() for rec, path in recordings.items()})
    if any(u.start is not None for u in utterances):
        write_kaldi_map(tmp / "segments", {u.utt_id: f"{u.recording} {u.start:.3f} {u.end:.3f}" for u in utterances})
    write_kaldi_map(tmp / "text", {u.utt_id: u.text for u in utterances})
    utt2spk = {u.utt_id: u.speaker for u in utterances}
    write_kaldi_map(tmp / "utt2spk", utt2spk)
    write_kaldi_map(tmp / "utt2category", {u.utt_id: u.category for u in utterances})
    speakers = spk2utt(utt2spk)
    write_kaldi_map(tmp / "spk2utt", {spk: " ".join(utts) for spk, utts in speakers.items()})
    shutil.rmtree(out, ignore_errors=True)
    tmp.rename(out)
    categories = Counter(u.category for u in utterances)
    log.info(
        "%s: %d utterances, %.2f h, %d speakers (%s)",
        out,
        len(utterances),
        sum(u.duration for u in utterances) / 3600,
        len(speakers),
        ", ".join(f"{c} {categories[c]}" for c in ("cs", "zh", "en")),
    )


def write_test_set(out: Path, utterances: Sequence[Utterance], problems: Sequence[str]) -> int:
    """Write a monolingual test set's usable utterances to ``out``; returns how many.

    Raises:
        CorpusError: with ``problems`` (found while reading the corpus), if there are any.
    """
    if problems:
        raise CorpusError(list(problems))
    usable = keep_usable(utterances, out.name)
    write_data_dir(out, usable)
    return len(usable)
