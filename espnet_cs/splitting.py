"""Splitting a Kaldi data dir into parallel jobs made of whole batches.

Batched passes take utterances longest first (ties in key order). The encoder's padding policy
makes a sentence's hypothesis (:mod:`espnet_cs.bin.decode`) and LID-head statistics
(:mod:`espnet_cs.bin.select_heads`) independent of its batch mates, yet tensor shapes, and with
them float rounding in per-batch sums, still follow the batches. A split here is a set of whole batches of that order; within a split,
the same order forms exactly those batches again (every batch but the globally last one is full,
and that one comes last in its split). So every job sees the batches a single job would, and
merged results equal single-job ones. Batches go to the splits round-robin, which spreads long
and short batches evenly.
"""

from __future__ import annotations

import hashlib
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path

from espnet_cs.kaldi_dir import read_kaldi_map, spk2utt, write_kaldi_map

AUDIO_DIGESTS = "utt2sha256"
"""Stage 2's file of the sha256 of each utterance's formatted samples: what its audio is."""
UTTERANCE_FILES = ("wav.scp", "text", "utt2spk", "utt2category", "utt2num_samples", "speech_shape", AUDIO_DIGESTS)
"""Files of a data dir keyed by utterance that a split carries (those present)."""


def longest_first(lengths: Mapping[str, int]) -> list[str]:
    """Utterance ids by decreasing length, ties in key order: the order of every batched pass."""
    return sorted(lengths, key=lambda utt: (-lengths[utt], utt))


def make_batches(lengths: Mapping[str, int], batch_size: int) -> list[list[str]]:
    """Consecutive ``batch_size`` utterances of :func:`longest_first`."""
    if batch_size < 1:
        raise ValueError(f"batch size must be positive, got {batch_size}")
    order = longest_first(lengths)
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def split_batches(batches: Sequence[list[str]], nj: int) -> list[list[str]]:
    """Utterances of each split: batch ``i`` goes to split ``i mod nj``; at most ``nj`` splits, none empty."""
    if nj < 1:
        raise ValueError(f"number of jobs must be positive, got {nj}")
    splits: list[list[str]] = [[] for _ in range(min(nj, len(batches)))]
    for i, batch in enumerate(batches):
        splits[i % len(splits)].extend(batch)
    return splits


def read_lengths(data_dir: Path) -> dict[str, int]:
    """Samples per utterance from ``utt2num_samples`` (written by stage 2)."""
    path = data_dir / "utt2num_samples"
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: split only stage-2 outputs (dump/raw/<set>)")
    return {utt: int(value) for utt, value in read_kaldi_map(path).items()}


def write_splits(data_dir: Path, out_dir: Path, nj: int, batch_size: int) -> int:
    """Write ``out_dir/1 .. out_dir/<n>``, each a data dir of whole batches; returns ``n`` (at most ``nj``).

    Split dirs left from an earlier run beyond ``n`` are removed, so ``out_dir`` holds just these.
    """
    lengths = read_lengths(data_dir)
    if not lengths:
        raise ValueError(f"{data_dir} has no utterances")
    missing = sorted(set(read_kaldi_map(data_dir / "wav.scp")) ^ set(lengths))
    if missing:
        raise ValueError(
            f"{data_dir}: wav.scp and utt2num_samples differ in {len(missing)} utterances, e.g. {missing[:3]}"
        )
    splits = split_batches(make_batches(lengths, batch_size), nj)
    tables = {name: read_kaldi_map(data_dir / name) for name in UTTERANCE_FILES if (data_dir / name).exists()}
    for k, utts in enumerate(splits, 1):
        split_dir = out_dir / str(k)
        for name, table in tables.items():
            write_kaldi_map(split_dir / name, {u: table[u] for u in utts if u in table})
        if "utt2spk" in tables:
            speakers = spk2utt({utt: tables["utt2spk"][utt] for utt in utts})
            write_kaldi_map(split_dir / "spk2utt", {spk: " ".join(us) for spk, us in speakers.items()})
    for stale in out_dir.iterdir():
        if stale.is_dir() and stale.name.isdigit() and int(stale.name) > len(splits):
            shutil.rmtree(stale)
    return len(splits)


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes (identifies the utterance list of a split, a model file)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def audio_sha256(data_dir: Path) -> str:
    """Identity of a stage-2 dir's audio: the sha256 of its :data:`AUDIO_DIGESTS` file.

    It changes when an utterance is added, removed or its samples change, even if every id and
    path stays the same (``wav.scp`` alone would not tell).
    """
    path = data_dir / AUDIO_DIGESTS
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist: {data_dir} was not made by this stage 2; rerun stage 2")
    return file_sha256(path)
