"""Decoding modes of a trained model on a recipe's test set: threads per job against jobs, and int8.

Runs stage 8's own tools (``espnet_cs.bin.split_data``, ``decode``, ``merge_decodes``, ``score``)
on one trained system of a recipe, each mode from nothing, one after the other:

- ``1 job x N threads``: one ``espnet_cs.bin.decode`` with ``--threads N``;
- ``N jobs x 1 thread``: the set split into N jobs of whole batches, run at once, merged (what
  ``asr.sh --nj N`` does on one machine);
- ``int8``: one job with ``--threads N --int8 true`` (dynamic quantization of every linear layer).

It prints the wall seconds of the decoding processes (model loading included, splitting and
merging not), the real-time factor of that wall time, MER with its 95% bootstrap interval,
the paired difference to the first mode, and how many hypotheses equal the first mode's.

    python -m benchmarks.decode_modes --exp egs2/cs_bench/asr1/exp/lora --data egs2/cs_bench/asr1/dump/raw/test \\
        [--threads 2] [--batch 16] [--record]

(run from the repository root with the recipe's environment, ``. egs2/cs_bench/asr1/path.sh``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import harness
from benchmarks.harness import Table, common_options, report

WORK = harness.WORK / "decode_modes"


def python(*args: str, threads: int) -> subprocess.Popen:
    """``python -m <args>`` started with ``OMP_NUM_THREADS=threads``."""
    return subprocess.Popen([sys.executable, "-m", *args], env={**os.environ, "OMP_NUM_THREADS": str(threads)})


def decode_args(data: Path, out: Path, exp: Path, threads: int, batch: int, int8: bool) -> list[str]:
    model = next(p for p in (exp / "valid.loss.ave.pth", exp / "valid.loss.best.pth") if p.is_file())
    return [
        "espnet_cs.bin.decode",
        "--data_dir", str(data), "--out_dir", str(out),
        "--asr_train_config", str(exp / "config.yaml"), "--asr_model_file", str(model),
        "--batch_size", str(batch), "--threads", str(threads), "--int8", str(int8).lower(),
    ]  # fmt: skip


def wait(*processes: subprocess.Popen) -> None:
    for process in processes:
        if process.wait() != 0:
            raise RuntimeError(f"{process.args} failed with exit status {process.returncode}")


def run_mode(mode: str, data: Path, exp: Path, threads: int, batch: int) -> tuple[float, Path]:
    """Decode ``data`` in ``mode`` from nothing and score it; (wall seconds of the decoding, decode dir)."""
    out = WORK / exp.name / mode.replace(" ", "_")
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    if mode == "jobs":
        wait(python("espnet_cs.bin.split_data", "--data_dir", str(data), "--out_dir", str(out / "split"),
                    "--nj", str(threads), "--batch_size", str(batch), threads=1))  # fmt: skip
        start = time.perf_counter()
        splits = sorted(p for p in (out / "split").iterdir() if p.is_dir())
        wait(*[python(*decode_args(s, out / f"output.{s.name}", exp, 1, batch, False), threads=1) for s in splits])
        seconds = time.perf_counter() - start
        merged = [str(out / f"output.{s.name}") for s in splits]
        wait(python("espnet_cs.bin.merge_decodes", "--data_dir", str(data), "--out_dir", str(out / "decode"),
                    *merged, threads=1))  # fmt: skip
    else:
        wait(python(*decode_args(data, out / "decode", exp, threads, batch, mode == "int8"), threads=threads))
        seconds = time.perf_counter() - start
    wait(python("espnet_cs.bin.score", "--data_dir", str(data), "--hyp", str(out / "decode" / "text"),
                "--out_dir", str(out / "decode"), threads=1))  # fmt: skip
    return seconds, out / "decode"


def errors(decode: Path) -> dict[str, tuple[int, int]]:
    per_utt = json.loads((decode / "scores.json").read_text())["per_utterance"]
    return {
        u: (c["substitutions"] + c["deletions"] + c["insertions"], c["ref_units"]) for u, c in sorted(per_utt.items())
    }


def hypotheses(decode: Path) -> dict[str, str]:
    from espnet_cs.kaldi_dir import read_kaldi_map

    return read_kaldi_map(decode / "token")


def main(argv: list[str] | None = None) -> None:
    from espnet_cs.bootstrap import paired_difference, rate_interval

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_options(parser)
    parser.add_argument("--exp", type=Path, required=True, help="a trained system's exp dir")
    parser.add_argument("--data", type=Path, required=True, help="a stage-2 data dir")
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args(argv)

    modes = {"threads": f"1 job x {args.threads} threads", "jobs": f"{args.threads} jobs x 1 thread", "int8": "int8"}
    results = {}
    for mode, label in modes.items():
        results[mode] = run_mode(mode, args.data.absolute(), args.exp.absolute(), args.threads, args.batch)
        print(f"measured {label}: {results[mode][0]:.1f} s", file=sys.stderr)

    info = json.loads((results["threads"][1] / "decode_info.json").read_text())
    first_errors, first_hyps = errors(results["threads"][1]), hypotheses(results["threads"][1])
    setup = (
        f"`{args.exp.name}` on {args.data} ({info['utterances']} utterances, {info['audio_seconds']:.0f} s of audio), "
        f"batch {args.batch}, this machine's CPU; int8: {args.threads} threads"
    )
    table = Table(
        [
            "mode", "wall s", "RTF (wall)", "MER [95%]", "− first mode [95% paired]",
            "hypotheses equal to the first mode's",
        ]
    )  # fmt: skip
    for mode, (seconds, decode) in results.items():
        errs, hyps = errors(decode), hypotheses(decode)
        num, den = zip(*errs.values())
        interval = rate_interval(list(num), list(den))
        paired = paired_difference(tuple(map(list, zip(*errs.values()))), tuple(map(list, zip(*first_errors.values()))))
        same = sum(hyps[u] == first_hyps[u] for u in first_hyps)
        table.rows.append(
            [
                modes[mode], f"{seconds:.1f}", f"{seconds / info['audio_seconds']:.3f}",
                f"{100 * sum(num) / sum(den):.1f} [{interval.low:.1f}, {interval.high:.1f}]",
                f"{paired.difference:+.1f} [{paired.interval.low:+.1f}, {paired.interval.high:+.1f}]",
                f"{same}/{len(first_hyps)}",
            ]
        )  # fmt: skip
    report("decode_modes", setup, [table], args.record, argv=argv)


if __name__ == "__main__":
    main()
