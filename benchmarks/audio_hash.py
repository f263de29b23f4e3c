"""Reading every audio file's bytes for a digest against stage 2's formatting of the same files.

Writes ``--gb`` GB of 16-kHz 16-bit mono wav files of 3-10 s (a Kaldi data dir of them) under
``--work``, then times, with every file in the page cache (the CPU cost; a cold cache adds one
read of the files to each): sha256 and blake2b of every file's bytes (what stage 2's check of
its audio reads) and ``espnet_cs.data_format.format_data_dir`` of the dir (stage 2 itself) with
``--nj`` processes. It prints the seconds and GB/s of each, and their ratio.

    PYTHONPATH=$PWD tools/venv/bin/python benchmarks/audio_hash.py --gb 2 --nj 2
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from espnet_cs.audio import SAMPLE_RATE
from espnet_cs.data_format import format_data_dir


def make_corpus(src: Path, gigabytes: float) -> list[Path]:
    """Random 3-10-s wav files totalling ``gigabytes`` GB and a Kaldi data dir ``src`` naming them."""
    rng = np.random.default_rng(0)
    audio, files, total = src / "audio", [], 0
    audio.mkdir(parents=True)
    while total < gigabytes * 1e9:
        path = audio / f"utt{len(files):06d}.wav"
        sf.write(path, rng.integers(-8000, 8000, int(rng.uniform(3, 10) * SAMPLE_RATE), dtype=np.int16), SAMPLE_RATE)
        files.append(path)
        total += path.stat().st_size
    names = [path.stem for path in files]
    (src / "wav.scp").write_text("".join(f"{n} {p}\n" for n, p in zip(names, files)))
    (src / "text").write_text("".join(f"{n} hello world\n" for n in names))
    (src / "utt2spk").write_text("".join(f"{n} s\n" for n in names))
    return files


def time_digest(files: list[Path], algorithm: str) -> float:
    """Seconds to digest every file's bytes."""
    start = time.perf_counter()
    for path in files:
        with path.open("rb") as f:
            hashlib.file_digest(f, algorithm)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gb", type=float, default=2.0, help="GB of wav files to write")
    parser.add_argument("--nj", type=int, default=2, help="processes of stage 2")
    parser.add_argument("--work", type=Path, default=Path("benchmarks/work/audio_hash"))
    args = parser.parse_args()
    shutil.rmtree(args.work, ignore_errors=True)
    files = make_corpus(args.work / "data", args.gb)
    size = sum(path.stat().st_size for path in files) / 1e9
    time_digest(files, "sha256")  # into the page cache
    seconds = {algorithm: time_digest(files, algorithm) for algorithm in ("sha256", "blake2b")}
    start = time.perf_counter()
    format_data_dir(args.work / "data", args.work / "dump", nj=args.nj)
    seconds[f"stage 2, --nj {args.nj}"] = time.perf_counter() - start
    print(f"{len(files)} files, {size:.2f} GB")
    for name, s in seconds.items():
        print(f"{name}: {s:.1f} s, {size / s:.2f} GB/s")
    for algorithm in ("sha256", "blake2b"):
        print(f"{algorithm} / stage 2: {seconds[algorithm] / seconds[f'stage 2, --nj {args.nj}']:.3f}")
    shutil.rmtree(args.work)


if __name__ == "__main__":
    main()
