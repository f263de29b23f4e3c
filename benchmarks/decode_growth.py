"""How decoding time grows with utterance length and with the number of utterances.

Utterances of a stage-2 data dir (cs_bench's test set by default) are grouped by duration; each
group of ``--per_bin`` utterances is decoded greedily in batches of ``--batch`` by a trained
system (true length, its own padding policy) and by zero-shot Whisper-base (30-s windows, the
``zh`` task tokens), with ``--threads`` threads; then the trained system decodes 1x, 2x and 4x
``--per_bin`` utterances of the whole set. It prints seconds per utterance and the real-time
factor of each.

    python -m benchmarks.decode_growth --exp egs2/cs_bench/asr1/exp/lora \\
        --data egs2/cs_bench/asr1/dump/raw/test [--per_bin 16] [--threads 2] [--record]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from benchmarks.harness import Table, common_options, report

BINS = ((0, 4), (4, 6), (6, 8), (8, 11), (11, 30))  # seconds


def timed(decode: Callable[[Sequence[np.ndarray]], object], audios: list[np.ndarray], batch: int) -> float:
    """Wall seconds to decode ``audios`` in batches (after one warm-up batch)."""
    decode(audios[:batch])
    start = time.perf_counter()
    for i in range(0, len(audios), batch):
        decode(audios[i : i + batch])
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> None:
    from espnet_cs.bin.decode import load_audio
    from espnet_cs.decoding import Transcriber
    from espnet_cs.model import CSWhisperModel

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_options(parser)
    parser.add_argument("--exp", type=Path, required=True, help="a trained system's exp dir")
    parser.add_argument("--data", type=Path, required=True, help="a stage-2 data dir")
    parser.add_argument("--per_bin", type=int, default=16)
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    audios = load_audio(args.data / "wav.scp")
    seconds = {u: len(a) / 16000 for u, a in audios.items()}
    model_file = next(p for p in (args.exp / "valid.loss.ave.pth", args.exp / "valid.loss.best.pth") if p.is_file())
    trained = Transcriber.from_trained(str(args.exp / "config.yaml"), str(model_file))
    zero_shot = Transcriber.from_model(CSWhisperModel.from_backbone("whisper-base", "zh", pad_to_30s=True))

    by_length = Table(
        [
            "length (s)", "utterances", "mean (s)", "trained s / utt", "trained RTF", "zero-shot s / utt",
            "zero-shot RTF",
        ],
        title=(
            f"Decoding time by utterance length: {args.per_bin} utterances of {args.data} per bin, batch {args.batch}, "
            f"{args.threads} threads, greedy; `{args.exp.name}` at true length, zero-shot Whisper-base in 30-s windows"
        ),
    )  # fmt: skip
    for low, high in BINS:
        utts = sorted(u for u, s in seconds.items() if low <= s < high)[: args.per_bin]
        if not utts:
            continue
        batch_audio = [audios[u] for u in utts]
        audio_seconds = sum(seconds[u] for u in utts)
        cells = []
        for transcriber in (trained, zero_shot):
            wall = timed(transcriber, batch_audio, args.batch)
            cells += [f"{wall / len(utts):.2f}", f"{wall / audio_seconds:.3f}"]
        by_length.rows.append([f"{low}-{high}", str(len(utts)), f"{audio_seconds / len(utts):.1f}", *cells])

    by_number = Table(
        ["utterances", "audio (s)", "wall (s)", "s / utt", "RTF"],
        title=f"Decoding time by number of utterances: `{args.exp.name}`, the first utterances of {args.data} by id",
    )
    for count in (args.per_bin, 2 * args.per_bin, 4 * args.per_bin):
        utts = sorted(audios)[:count]
        audio_seconds = sum(seconds[u] for u in utts)
        wall = timed(trained, [audios[u] for u in utts], args.batch)
        by_number.rows.append(
            [
                str(len(utts)),
                f"{audio_seconds:.0f}",
                f"{wall:.1f}",
                f"{wall / len(utts):.2f}",
                f"{wall / audio_seconds:.3f}",
            ]
        )
    report(
        "decode_growth", "One process, the same models for every row", [by_length, by_number], args.record, argv=argv
    )


if __name__ == "__main__":
    main()
