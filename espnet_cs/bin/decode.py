"""Decode a Kaldi data dir: a trained model (``--asr_train_config``, ``--asr_model_file``) or,
without them, the zero-shot Whisper backbone (``--whisper_model``, ``--task_tokens``).

Greedy by default; ``--beam_size`` > 1 searches as openai-whisper's beam search (``--patience``,
``--length_penalty``). Loop control, each off by default: ``--temperature_fallback`` (openai-whisper's
``transcribe`` rule), ``--no_repeat_ngram_size`` and ``--guard`` (the repetition guard). Bad options
are errors before any audio is read, a beam too large for the device's memory included.

Writes into ``--out_dir``: ``text`` (hypotheses), ``token`` (token ids), ``token_lang``
(zh/en/other per token) and ``decode_info.json`` (settings, the search and loop-control options
that differ from greedy decoding's, and cost; see :mod:`espnet_cs.decode_dir`). With
``--guarded_out_dir`` it also writes the hypotheses ``--guard true`` would have produced: the guard
cuts a hypothesis as searched (greedy decoding is causal, so its guarded hypotheses are prefixes
of the unguarded ones), so they cost nothing extra.

``--decode_variant NAME`` records the name of these options in ``decode_info.json``; an out dir that
holds a complete decode of that variant made with other decoding options is an error, before any
audio is read (:func:`espnet_cs.decode_dir.variant_conflict`), so a variant's name never holds
decodes of two sets of options.

An ``--out_dir`` (and ``--guarded_out_dir``) that already holds a complete decode of the same
audio (stage 2's per-utterance digests) with the same model file, backbone and settings is left as
it is, and the log says so or what changed: a rerun redoes what its inputs changed, and rerunning
the jobs of a split decode (:mod:`espnet_cs.bin.split_data`, :mod:`espnet_cs.bin.merge_decodes`)
redoes only the failed ones.
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import kaldiio
import numpy as np
import torch
from espnet2.utils.types import str2bool
from tqdm import tqdm

from espnet_cs.audio import SAMPLE_RATE
from espnet_cs.decode_dir import check_variant_name, decode_staleness, variant_conflict, write_decode_dir
from espnet_cs.decoding import DecodingConfig, Hypothesis, RepetitionGuard, Transcriber, apply_guard
from espnet_cs.device import checked_device
from espnet_cs.host_memory import serve_from_heap
from espnet_cs.loop_control import Fallback
from espnet_cs.model import CSWhisperModel
from espnet_cs.quantization import quantize_linear_int8
from espnet_cs.renamed import RENAMED_OPTIONS, add_renamed_options, task_tokens_type
from espnet_cs.splitting import audio_sha256, file_sha256, longest_first
from espnet_cs.tokenizer import TASK_TOKEN_LANGUAGES


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", type=Path, required=True, help="Kaldi dir with a 16-kHz wav.scp (stage 2 output)")
    parser.add_argument("--out_dir", type=Path, required=True)
    parser.add_argument("--asr_train_config", help="config.yaml of a model trained by espnet_cs.bin.train")
    parser.add_argument("--asr_model_file", help="its model file, e.g. valid.loss.ave.pth")
    parser.add_argument(
        "--whisper_model", default="whisper-base", help="zero-shot backbone spec (see espnet_cs.backbone)"
    )
    parser.add_argument(
        "--task_tokens",
        type=task_tokens_type,
        choices=sorted(TASK_TOKEN_LANGUAGES),
        default="zh_en",
        help="the zero-shot decoder's task tokens, by their language tokens: zh = <|zh|>, zh_en = <|zh|><|en|>",
    )
    add_renamed_options(parser, RENAMED_OPTIONS)
    parser.add_argument("--pad_to_30s", type=str2bool, default=True, help="pad audio to Whisper's 30-s window")
    parser.add_argument("--batch_size", type=int, default=16)
    parser.add_argument("--beam_size", type=int, default=1, help="beams per utterance (1: greedy)")
    parser.add_argument(
        "--patience", type=float, help="beam search ends after patience x beam_size finished candidates (default 1)"
    )
    parser.add_argument(
        "--length_penalty",
        type=float,
        help="rank candidates by log-probability / ((5 + length) / 6) ** length_penalty (default: / length)",
    )
    parser.add_argument(
        "--temperature_fallback",
        type=str2bool,
        default=False,
        help="re-decode a hypothesis that compresses too well or is too improbable by sampling at rising temperatures",
    )
    parser.add_argument(
        "--fallback_temperatures",
        default="0.2,0.4,0.6,0.8,1.0",
        help="comma-separated, each > 0 (the first decode is at 0)",
    )
    parser.add_argument("--compression_ratio_threshold", type=float, default=2.4, help="gzip ratio of a looping text")
    parser.add_argument("--logprob_threshold", type=float, default=-1.0, help="average log-probability of a poor text")
    parser.add_argument("--best_of", type=int, default=5, help="candidates sampled per fallback temperature")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fallback's sampling")
    parser.add_argument(
        "--no_repeat_ngram_size", type=int, default=0, help="never repeat an n-gram of this size (0: off)"
    )
    parser.add_argument("--guard", type=str2bool, default=False, help="cut looping hypotheses (the repetition guard)")
    parser.add_argument("--guarded_out_dir", type=Path, help="also write the guarded hypotheses here")
    parser.add_argument(
        "--decode_variant",
        default="",
        help="the name of these decoding options (recorded; an out dir holding this variant made with other "
        "options is an error, not redone)",
    )
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--cache_dir", help="cache of converted backbones")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (the same tokens on each)")
    parser.add_argument(
        "--serve_from_heap",
        type=str2bool,
        default=True,
        help="on CPU, serve large tensors from malloc's heap instead of fresh mappings "
        "(espnet_cs.host_memory.serve_from_heap: faster 30-s batches; resident memory stays at its peak)",
    )
    parser.add_argument(
        "--int8",
        type=str2bool,
        default=False,
        help="int8 dynamic quantization of every linear layer (CPU only; faster, hypotheses change slightly)",
    )
    return parser


def load_audio(wav_scp: Path) -> dict[str, np.ndarray]:
    """All utterances of a 16-kHz ``wav.scp`` as float arrays in [-1, 1]."""
    audios = {}
    for utt, (rate, samples) in kaldiio.load_scp(str(wav_scp)).items():
        if rate != SAMPLE_RATE:
            raise ValueError(f"{wav_scp}: {utt} is {rate} Hz, expected {SAMPLE_RATE} (run stage 2 to resample)")
        audios[utt] = samples.astype(np.float32) / (32768.0 if samples.dtype == np.int16 else 1.0)
    return audios


def hypothesis_files(hyps: dict[str, Hypothesis]) -> dict[str, dict[str, str]]:
    """``{file: {utt: value}}`` of the hypotheses for :func:`espnet_cs.decode_dir.write_decode_dir`."""
    return {
        "token": {u: " ".join(map(str, h.tokens)) for u, h in hyps.items()},
        "token_lang": {u: " ".join(language.name.lower() for language in h.languages) for u, h in hyps.items()},
        "text": {u: h.text for u, h in hyps.items()},
    }


def decoding_config(args: argparse.Namespace) -> DecodingConfig:
    """The search and loop-control options of the arguments.

    Raises:
        SystemExit: an option is out of range (a beam size < 1, a temperature <= 0, ...).
    """
    try:
        temperatures = tuple(float(t) for t in args.fallback_temperatures.split(","))
    except ValueError as error:
        raise SystemExit(f"decode.py: --fallback_temperatures {args.fallback_temperatures!r}: {error}") from error
    try:
        fallback = (
            Fallback(temperatures, args.compression_ratio_threshold, args.logprob_threshold, args.best_of, args.seed)
            if args.temperature_fallback
            else None
        )
        return DecodingConfig(
            guard=RepetitionGuard() if args.guard else None,
            beam_size=args.beam_size,
            patience=args.patience,
            length_penalty=args.length_penalty,
            no_repeat_ngram_size=args.no_repeat_ngram_size,
            fallback=fallback,
        )
    except ValueError as error:
        raise SystemExit(f"decode.py: {error}") from error


def load_transcriber(args: argparse.Namespace, config: DecodingConfig) -> Transcriber:
    """The trained model of the arguments, or the zero-shot backbone."""
    if bool(args.asr_train_config) != bool(args.asr_model_file):
        raise SystemExit("decode.py: --asr_train_config and --asr_model_file go together")
    if args.int8 and args.device != "cpu":
        raise SystemExit(f"decode.py: --int8 runs on the CPU only, not on {args.device}")
    try:
        device = str(checked_device(args.device))
    except ValueError as error:
        raise SystemExit(f"decode.py: {error}") from error
    if args.asr_model_file:
        for kind, path in (("model file", args.asr_model_file), ("training config", args.asr_train_config)):
            if not Path(path).exists():
                raise SystemExit(f"decode.py: {kind} {path} does not exist (did training finish?)")
        transcriber = Transcriber.from_trained(args.asr_train_config, args.asr_model_file, config, device)
    else:
        transcriber = Transcriber.from_model(
            CSWhisperModel.from_backbone(args.whisper_model, args.task_tokens, args.pad_to_30s, args.cache_dir),
            config,
            device,
        )
    if args.int8:
        quantize_linear_int8(transcriber.encoder)
        quantize_linear_int8(transcriber.decoder)
    return transcriber


def decode_settings(args: argparse.Namespace, transcriber: Transcriber) -> dict:
    """What identifies a decode: the utterances, the model and the decoding options."""
    identity = transcriber.encoder.backbone_identity
    return {
        "data_dir": str(args.data_dir),
        "audio_sha256": audio_sha256(args.data_dir),
        "model_file": args.asr_model_file,
        "model_file_sha256": file_sha256(Path(args.asr_model_file)) if args.asr_model_file else None,
        "backbone": identity.spec,
        "backbone_sha256": identity.sha256,
        "task_tokens": transcriber.tokenizer.task_tokens,
        "task_token_ids": list(transcriber.tokenizer.sot_sequence),
        "pad_to_30s": transcriber.encoder.pad_to_30s,
        "guard": args.guard,
        "batch_size": args.batch_size,
        **transcriber.config.settings(),  # absent when greedy: earlier decodes stay valid
        **({"int8": True} if args.int8 else {}),  # absent when off: float decodes stay valid
        **({"decode_variant": args.decode_variant} if args.decode_variant else {}),
    }


def main(argv: list[str] | None = None) -> None:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.serve_from_heap and args.device.partition(":")[0] == "cpu":  # a bad name is load_transcriber's error
        serve_from_heap()
    if args.decode_variant:
        try:
            check_variant_name(args.decode_variant)
        except ValueError as error:
            raise SystemExit(f"decode.py: {error}") from error
    config = decoding_config(args)
    transcriber = load_transcriber(args, config)
    try:
        transcriber.check_memory(args.batch_size)
        settings = decode_settings(args, transcriber)
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(f"decode.py: {error}") from error
    guard = config.guard or RepetitionGuard()
    guarded_settings = {**settings, "guard": True, "derived_from": str(args.out_dir)}
    conflict = variant_conflict(args.out_dir, settings) or (
        args.guarded_out_dir and variant_conflict(args.guarded_out_dir, guarded_settings)
    )
    if conflict:
        raise SystemExit(f"decode.py: {conflict}")
    reason = decode_staleness(args.out_dir, settings) or (
        args.guarded_out_dir and decode_staleness(args.guarded_out_dir, guarded_settings)
    )
    if not reason:
        logging.info("%s holds this decode (same audio, model and settings) complete already, skipped", args.out_dir)
        return
    logging.info("decoding into %s: %s", args.out_dir, reason)

    audios = load_audio(args.data_dir / "wav.scp")
    # Longest first: similar lengths share a batch, and the slowest batch shows up early.
    utts = longest_first({u: len(a) for u, a in audios.items()})
    hyps: dict[str, Hypothesis] = {}
    start = time.perf_counter()
    for i in tqdm(range(0, len(utts), args.batch_size), desc=f"decode {args.data_dir.name}", unit="batch"):
        batch = utts[i : i + args.batch_size]
        hyps.update(zip(batch, transcriber([audios[u] for u in batch])))
    elapsed = time.perf_counter() - start
    audio_samples = sum(len(a) for a in audios.values())
    info = {
        **settings,
        "utterances": len(hyps),
        "audio_samples": audio_samples,
        "decode_seconds": round(elapsed, 2),
        "audio_seconds": round(audio_samples / SAMPLE_RATE, 2),
        "real_time_factor": round(elapsed / (audio_samples / SAMPLE_RATE), 4),
    }
    write_decode_dir(args.out_dir, info, hypothesis_files(hyps))
    logging.info(
        "decoded %d utterances in %.1f s (RTF %.3f) -> %s", len(hyps), elapsed, info["real_time_factor"], args.out_dir
    )

    if args.guarded_out_dir:
        guarded = {
            u: apply_guard(h, len(audios[u]) / SAMPLE_RATE, guard, transcriber.tokenizer) for u, h in hyps.items()
        }
        cut = sum(g is not h for g, h in zip(guarded.values(), hyps.values()))
        write_decode_dir(
            args.guarded_out_dir, {**info, **guarded_settings, "hypotheses_cut": cut}, hypothesis_files(guarded)
        )
        logging.info("repetition guard cut %d of %d hypotheses -> %s", cut, len(hyps), args.guarded_out_dir)


if __name__ == "__main__":
    main()
