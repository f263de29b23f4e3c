"""The ``mini_cs`` corpus: synthetic Mandarin-English code-switching speech as Kaldi data dirs.

Each split (train/valid/test) has its own speakers (``SPLIT_SPEAKERS``: valid and test
speakers are unseen in training) and its own frames: the utterances are cs_bench's conversational
text (:mod:`espnet_cs.synth.conversation`, shorter: ``DEMO_STYLE``), so every test utterance comes
from frames no training utterance uses. Everything derives from the seed alone: a wav is a pure function of
its text and speaker, so the output does not depend on the number of processes. Wavs are
written atomically and named after a digest of their content, so an interrupted run resumes
and a run with another seed never reuses a stale file; a data dir is written last, atomically,
once all its audio exists.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from espnet_cs.audio import SAMPLE_RATE
from espnet_cs.kaldi_dir import spk2utt, write_kaldi_map
from espnet_cs.synth.conversation import Style, sample_utterances
from espnet_cs.synth.speech import SPEAKERS, Speaker, synthesize
from espnet_cs.text import CATEGORIES

SPLIT_SPEAKERS: dict[str, tuple[Speaker, ...]] = {
    "train": SPEAKERS[:8],
    "valid": SPEAKERS[8:10],
    "test": SPEAKERS[10:],
}
DEFAULT_MIX = (0.6, 0.2, 0.2)  # shares of cs, zh, en utterances
# cs_bench's conversational features, in utterances of one clause or two (cs_bench: up to three),
# which keeps the demo's audio, and so its run time, close to those of single sentences.
DEMO_STYLE = Style(clauses=(0.9, 0.1, 0.0))


@dataclass(frozen=True)
class Utterance:
    """One planned utterance; ``utt_id`` is ``<speaker>-<category>-<index>`` (Kaldi order)."""

    utt_id: str
    speaker: Speaker
    category: str
    text: str

    @property
    def wav_name(self) -> str:
        digest = hashlib.sha256(repr((self.text, self.speaker, SAMPLE_RATE)).encode()).hexdigest()
        return f"{self.utt_id}_{digest[:10]}.wav"


def category_counts(num: int, mix: Sequence[float]) -> list[int]:
    """Split ``num`` utterances by the shares ``mix`` (largest remainder, exact total)."""
    if len(mix) != len(CATEGORIES) or min(mix) < 0 or sum(mix) <= 0:
        raise ValueError(f"mix needs {len(CATEGORIES)} non-negative shares, got {mix}")
    quotas = [num * share / sum(mix) for share in mix]
    counts = [int(q) for q in quotas]
    by_remainder = sorted(range(len(quotas)), key=lambda i: counts[i] - quotas[i])
    for i in by_remainder[: num - sum(counts)]:
        counts[i] += 1
    return counts


def plan(split: str, num: int, seed: int, mix: Sequence[float] = DEFAULT_MIX) -> list[Utterance]:
    """The utterances of ``split``, sorted by id; deterministic for ``seed``."""
    rng = random.Random(f"mini_cs/{seed}/{split}")
    categories = [c for c, n in zip(CATEGORIES, category_counts(num, mix)) for _ in range(n)]
    rng.shuffle(categories)
    texts = sample_utterances(split, categories, rng, DEMO_STYLE)
    speakers = SPLIT_SPEAKERS[split]
    utterances = []
    for i, (category, text) in enumerate(zip(categories, texts)):
        speaker = speakers[i % len(speakers)]
        utterances.append(Utterance(f"{speaker.name}-{category}-{i:06d}", speaker, category, text))
    return sorted(utterances, key=lambda u: u.utt_id)


def synthesize_to(job: tuple[Utterance, Path]) -> float:
    """Write the wav of an utterance unless it exists already; return its duration in seconds."""
    utterance, path = job
    if not path.exists():
        audio = synthesize(utterance.text, utterance.speaker)
        tmp = path.with_name(f".{path.name}.tmp")
        sf.write(tmp, audio, SAMPLE_RATE, subtype="PCM_16", format="WAV")
        os.replace(tmp, path)
    return sf.info(path).duration


def write_data_dir(
    out: Path, utterances: Sequence[Utterance], wavs: Sequence[Path], extra: Mapping[str, Mapping[str, str]] = {}
) -> None:
    """Write a Kaldi data dir (``wav.scp text utt2spk spk2utt utt2category`` and ``extra``'s files) atomically.

    ``utterances`` need ``utt_id``, ``text``, ``category`` and ``speaker.name``.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    write_kaldi_map(tmp / "wav.scp", [(u.utt_id, str(w)) for u, w in zip(utterances, wavs)])
    write_kaldi_map(tmp / "text", [(u.utt_id, u.text) for u in utterances])
    utt2spk = {u.utt_id: u.speaker.name for u in utterances}
    write_kaldi_map(tmp / "utt2spk", utt2spk)
    write_kaldi_map(tmp / "utt2category", [(u.utt_id, u.category) for u in utterances])
    write_kaldi_map(tmp / "spk2utt", {spk: " ".join(utts) for spk, utts in spk2utt(utt2spk).items()})
    for name, table in extra.items():
        write_kaldi_map(tmp / name, table)
    old = out.with_name(f".{out.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def make_corpus(
    data_dir: Path,
    sizes: dict[str, int],
    seed: int = 0,
    nj: int = 1,
    mix: Sequence[float] = DEFAULT_MIX,
    wav_dir: Path | None = None,
) -> None:
    """Synthesize ``sizes[split]`` utterances per split into ``data_dir/<split>``.

    Audio goes to ``wav_dir/<split>/`` (default ``data_dir/../downloads/mini_cs/wav``).
    """
    if min(sizes.values()) < 1:
        raise ValueError(f"every split needs at least one utterance: {sizes}")
    data_dir = Path(data_dir).absolute()
    wav_dir = Path(wav_dir).absolute() if wav_dir else data_dir.parent / "downloads/mini_cs/wav"
    with ProcessPoolExecutor(nj) as pool:
        for split, num in sizes.items():
            utterances = plan(split, num, seed, mix)
            (wav_dir / split).mkdir(parents=True, exist_ok=True)
            wavs = [wav_dir / split / u.wav_name for u in utterances]
            jobs = pool.map(synthesize_to, zip(utterances, wavs), chunksize=4)
            durations = np.array(list(tqdm(jobs, total=num, desc=f"mini_cs {split}", unit="utt")))
            write_data_dir(data_dir / split, utterances, wavs)
            logging.info(
                f"{data_dir / split}: {num} utterances, {durations.sum() / 3600:.2f} h, "
                f"{durations.min():.1f}-{durations.max():.1f} s "
                f"(mean {durations.mean():.1f} s), speakers "
                f"{' '.join(s.name for s in SPLIT_SPEAKERS[split])}"
            )
