"""Decode a Kaldi data dir greedily: a trained model (``--asr_train_config``, ``--asr_model_file``)
or, without them, the zero-shot Whisper backbone (``--whisper_model``, ``--prompt``).

Writes into ``--out_dir``: ``text`` (hypotheses), ``token`` (token ids), ``token_lang``
(zh/en/other per token) and ``decode_info.json``. With ``--guarded_out_dir`` it also writes the
hypotheses the repetition guard would have produced: greedy decoding is causal, so those are
prefixes of the unguarded ones and cost nothing extra.
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

import kaldiio
import numpy as np
import torch
from tqdm import tqdm

from espnet_cs.decoding import GreedyConfig, RepetitionGuard
from espnet_cs.inference import SAMPLE_RATE, Hypothesis, Transcriber, apply_guard
from espnet_cs.kaldi_dir import write_atomic, write_kaldi_map


def str2bool(value: str) -> bool:
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", type=Path, required=True, help="Kaldi dir with a 16-kHz wav.scp (stage 2 output)")
    parser.add_argument("--out_dir", type=Path, required=True)
    parser.add_argument("--asr_train_config", help="config.yaml of a model trained by espnet_cs.bin.train")
    parser.add_argument("--asr_model_file", help="its model file, e.g. valid.loss.ave.pth")
    parser.add_argument("--whisper_model", default="whisper-base", help="zero-shot backbone spec (see espnet_cs.backbone)")
    parser.add_argument("--prompt", choices=["single", "cs"], default="cs", help="decoder prompt: <|zh|> or <|zh|><|en|>")
    parser.add_argument("--pad_to_30s", type=str2bool, default=True, help="pad audio to Whisper's 30-s window")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--guard", type=str2bool, default=False, help="stop looping hypotheses while decoding")
    parser.add_argument("--guarded_out_dir", type=Path, help="also write the guarded hypotheses here")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--cache_dir", help="cache of converted backbones")
    return parser


def load_audio(wav_scp: Path) -> dict[str, np.ndarray]:
    """All utterances of a 16-kHz ``wav.scp`` as float arrays in [-1, 1]."""
    audios = {}
    for utt, (rate, samples) in kaldiio.load_scp(str(wav_scp)).items():
        if rate != SAMPLE_RATE:
            raise ValueError(f"{wav_scp}: {utt} is {rate} Hz, expected {SAMPLE_RATE} (run stage 2 to resample)")
        audios[utt] = samples.astype(np.float32) / (32768.0 if samples.dtype == np.int16 else 1.0)
    return audios


def write_hypotheses(out_dir: Path, hyps: dict[str, Hypothesis]) -> None:
    """``text``, ``token`` and ``token_lang`` of the hypotheses (``text`` last: it marks completion)."""
    write_kaldi_map(out_dir / "token", {u: " ".join(map(str, h.tokens)) for u, h in hyps.items()})
    write_kaldi_map(out_dir / "token_lang", {u: " ".join(l.name.lower() for l in h.languages) for u, h in hyps.items()})
    write_kaldi_map(out_dir / "text", {u: h.text for u, h in hyps.items()})


def main(argv: list[str] | None = None) -> None:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    guard = RepetitionGuard()
    config = GreedyConfig(guard=guard if args.guard else None)
    if bool(args.asr_train_config) != bool(args.asr_model_file):
        raise SystemExit("decode.py: --asr_train_config and --asr_model_file go together")
    if args.asr_model_file:
        if not Path(args.asr_model_file).exists():
            raise SystemExit(f"decode.py: model file {args.asr_model_file} does not exist (did training finish?)")
        transcriber = Transcriber.from_trained(args.asr_train_config, args.asr_model_file, config)
    else:
        transcriber = Transcriber.from_backbone(
            args.whisper_model, args.prompt, args.pad_to_30s, config, cache_dir=args.cache_dir
        )
    audios = load_audio(args.data_dir / "wav.scp")
    # Longest first: similar lengths share a batch, and the slowest batch shows up early.
    utts = sorted(audios, key=lambda u: -len(audios[u]))
    hyps: dict[str, Hypothesis] = {}
    start = time.perf_counter()
    for i in tqdm(range(0, len(utts), args.batch_size), desc=f"decode {args.data_dir.name}", unit="batch"):
        batch = utts[i : i + args.batch_size]
        hyps.update(zip(batch, transcriber([audios[u] for u in batch])))
    elapsed = time.perf_counter() - start
    audio_seconds = sum(len(a) for a in audios.values()) / SAMPLE_RATE

    info = {
        "data_dir": str(args.data_dir), "model_file": args.asr_model_file,
        "backbone": transcriber.encoder.backbone_identity.spec,
        "backbone_sha256": transcriber.encoder.backbone_identity.sha256, "prompt": transcriber.tokenizer.prompt,
        "prompt_tokens": list(transcriber.tokenizer.sot_sequence), "pad_to_30s": transcriber.encoder.pad_to_30s,
        "guard": args.guard, "batch_size": args.batch_size, "utterances": len(hyps),
        "decode_seconds": round(elapsed, 2), "audio_seconds": round(audio_seconds, 2),
        "real_time_factor": round(elapsed / audio_seconds, 4),
    }
    write_atomic(args.out_dir / "decode_info.json", json.dumps(info, indent=2) + "\n")
    write_hypotheses(args.out_dir, hyps)
    logging.info("decoded %d utterances in %.1f s (RTF %.3f) -> %s", len(hyps), elapsed, info["real_time_factor"], args.out_dir)

    if args.guarded_out_dir:
        guarded = {u: apply_guard(h, len(audios[u]) / SAMPLE_RATE, guard, transcriber.tokenizer) for u, h in hyps.items()}
        cut = sum(g is not h for g, h in zip(guarded.values(), hyps.values()))
        guarded_info = {**info, "guard": True, "derived_from": str(args.out_dir), "hypotheses_cut": cut}
        write_atomic(args.guarded_out_dir / "decode_info.json", json.dumps(guarded_info, indent=2) + "\n")
        write_hypotheses(args.guarded_out_dir, guarded)
        logging.info("repetition guard cut %d of %d hypotheses -> %s", cut, len(hyps), args.guarded_out_dir)


if __name__ == "__main__":
    main()
