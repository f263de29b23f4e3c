"""Decoding benchmark: espnet-cs against openai-whisper and faster-whisper on the same weights and data.

Zero-shot decoding, greedy and beam search, of synthetic code-switching utterances (espeak-ng,
``espnet_cs.synth``), each padded to Whisper's 30-s window, task tokens ``<|startoftranscript|><|zh|>
<|transcribe|><|notimestamps|>``, batches of ``--batch``, ``--threads`` CPU threads for every decoder:

Every decoder runs in its own process, as its users run it: the espnet-cs ones with malloc's
options as ``espnet_cs.bin.decode`` sets them on CPU (:func:`espnet_cs.host_memory.serve_from_heap`).

- ``espnet-cs``: :class:`espnet_cs.decoding.Transcriber` (finished utterances leave the batch);
- ``espnet-cs tcmalloc``: the same under tcmalloc, as the recipes run it (``path.sh`` preloads it;
  glibc's options are then left alone);
- ``espnet-cs keep-batch``: the same with ``drop_finished=False`` (what the optimization buys);
- ``espnet-cs int8``: the same with the linear layers quantized to int8 (``torch.ao`` dynamic
  quantization; opt-in, its hypotheses differ);
- ``espnet-cs beam 5``: the same with ``beam_size=5`` (:mod:`espnet_cs.beam_search`);
- ``openai-whisper``: ``whisper.decode`` (greedy, KV cache, the same options), which must give
  the same tokens as ``espnet-cs``;
- ``openai-whisper beam 5``: ``whisper.decode`` with ``beam_size=5``, one audio at a time (its
  batched beam search does not repeat an audio's encoder states for the audio's beams);
- ``faster-whisper batch`` (float32, int8; ``beam 5``: float32 with ``beam_size=5``): faster-whisper's
  model, features and task tokens, the batch through CTranslate2's ``generate`` as faster-whisper's
  batched pipeline calls it;
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
the median and every round. Ratios and token agreement compare peers searching with the same beam
size; a table of targets follows (:data:`SPEED_TARGETS`, :data:`TOKEN_TARGETS`), and, for the
utterances where espnet-cs's tokens differ from openai-whisper's, both hypotheses as
openai-whisper scores them (:func:`differences`).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from importlib.metadata import version
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


def espnet_cs(threads: int, beam_size: int, drop_finished: bool = True, int8: bool = False) -> Decoder:
    from espnet_cs.decoding import DecodingConfig, Transcriber
    from espnet_cs.host_memory import serve_from_heap
    from espnet_cs.model import CSWhisperModel

    serve_from_heap()  # as espnet_cs.bin.decode does on CPU
    model = CSWhisperModel.from_backbone("whisper-base", task_tokens="zh", pad_to_30s=True)
    transcriber = Transcriber.from_model(model, DecodingConfig(drop_finished=drop_finished, beam_size=beam_size))
    if int8:
        from espnet_cs.quantization import quantize_linear_int8

        quantize_linear_int8(transcriber.encoder)
        quantize_linear_int8(transcriber.decoder)
    return lambda audios: [h.tokens for h in transcriber(audios)]


def openai_whisper(threads: int, beam_size: int) -> Decoder:
    """``whisper.decode``: the batch at once greedily; with a beam, one audio at a time (its batched
    beam search does not repeat an audio's encoder states for its beams)."""
    import whisper

    from espnet_cs.backbone import load_whisper

    model, _ = load_whisper("whisper-base")
    model.eval()
    options = whisper.DecodingOptions(
        language="zh",
        without_timestamps=True,
        temperature=0.0,
        fp16=False,
        beam_size=beam_size if beam_size > 1 else None,
    )

    def decode(audios: Sequence[np.ndarray]) -> list[list[int]]:
        mel = torch.stack([whisper.log_mel_spectrogram(whisper.pad_or_trim(torch.from_numpy(a))) for a in audios])
        batches = mel.split(1) if beam_size > 1 else [mel]
        return [r.tokens for batch in batches for r in whisper.decode(model, batch, options)]

    return decode


def faster_whisper_batch(compute_type: str, threads: int, beam_size: int) -> Decoder:
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
            beam_size=beam_size,
            patience=1,  # faster-whisper's defaults; length_penalty 1: the log-probability over the length
            length_penalty=1,
            max_length=max_length,
            suppress_blank=True,
            suppress_tokens=[-1],
        )
        return [r.sequences_ids[0] for r in results]

    return decode


def faster_whisper_transcribe(threads: int, beam_size: int) -> Decoder:
    from faster_whisper import WhisperModel

    model = WhisperModel(str(ctranslate2_dir()), device="cpu", compute_type="float32", cpu_threads=threads)

    def decode(audios: Sequence[np.ndarray]) -> list[list[int]]:
        hyps = []
        for audio in audios:
            segments, _ = model.transcribe(
                audio,
                language="zh",
                beam_size=beam_size,
                temperature=0.0,
                without_timestamps=True,
                condition_on_previous_text=False,
                vad_filter=False,
            )
            hyps.append([t for s in segments for t in s.tokens])
        return hyps

    return decode


def espnet_beam_search(threads: int, beam_size: int) -> Decoder:
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
        beam_size=beam_size,
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
    if name.startswith("trained "):
        decode = trained(Path(name.removeprefix("trained ")))
    else:
        decode = PEERS[name].build(threads=args.threads, beam_size=PEERS[name].beam_size)
    subset = utterances[: args.espnet_utterances] if name == "espnet beam 1" else utterances
    seconds, hyps = run(decode, subset, args.batch)
    return {"seconds": seconds * len(utterances) / len(subset), "hyps": hyps, "allocator": allocator_in_use()}


def measure_peer(name: str, args: argparse.Namespace) -> tuple[float, list[list[int]]]:
    """:func:`measure` in a fresh process: each decoder runs with its own allocator state and settings,
    as its users run it (espnet-cs sets malloc's options as ``espnet_cs.bin.decode`` does)."""
    argv = ["--one", name]
    for option in ("utterances", "seed", "batch", "threads", "espnet_utterances"):
        argv += [f"--{option}", str(getattr(args, option))]
    allocator = PEERS[name].allocator if name in PEERS else "glibc"
    result = measure_in_child("benchmarks.decode", argv, environment_for(allocator))
    if result["allocator"] != allocator:
        raise RuntimeError(f"{name} ran on {result['allocator']}'s malloc")
    return result["seconds"], result["hyps"]


def openai_whisper_logprobs() -> Callable[[np.ndarray, Sequence[list[int]]], list[list[float]]]:
    """A scorer of hypotheses as openai-whisper's search scores them: for an audio and its
    hypotheses (tokens without task tokens and end of text), each token's log-probability and the
    end of text's last, from Whisper-base's log-softmax after ``whisper.decode``'s logit filters
    (blank and non-speech tokens suppressed), each hypothesis teacher-forced after the task tokens."""
    import whisper
    from whisper.decoding import DecodingTask

    from espnet_cs.backbone import load_whisper

    model, _ = load_whisper("whisper-base")
    model.eval()
    task = DecodingTask(model, whisper.DecodingOptions(language="zh", without_timestamps=True, fp16=False, beam_size=5))
    begin, eot = task.sample_begin, task.tokenizer.eot

    @torch.no_grad()
    def score(audio: np.ndarray, hyps: Sequence[list[int]]) -> list[list[float]]:
        features = model.encoder(whisper.log_mel_spectrogram(whisper.pad_or_trim(torch.from_numpy(audio)))[None])
        scored = []
        for hyp in hyps:
            sequence = torch.tensor([[*task.initial_tokens, *hyp, eot]])
            logits = model.decoder(sequence[:, :-1], features)[0, begin - 1 :]
            logprobs = []
            for step, target in enumerate(sequence[0, begin:].tolist()):
                step_logits = logits[step : step + 1].clone()
                for logit_filter in task.logit_filters:
                    logit_filter.apply(step_logits, sequence[:, : begin + step])
                logprobs.append(torch.log_softmax(step_logits.float(), dim=-1)[0, target].item())
            scored.append(logprobs)
        return scored

    return score


def differences(
    ours: str, reference: str, results: dict[str, dict], utterances: list[tuple[str, np.ndarray]]
) -> Table | None:
    """The utterances whose tokens from ``ours`` differ from ``reference``'s, each with both hypotheses
    scored as openai-whisper scores (:func:`openai_whisper_logprobs`): a floating-point tie shows as a
    log-probability difference near zero where the hypotheses part, a rule difference does not."""
    differing = [i for i, (a, b) in enumerate(zip(results[ours]["hyps"], results[reference]["hyps"])) if a != b]
    if not differing:
        return None
    score = openai_whisper_logprobs()
    table = Table(
        [
            "utterance",
            "tokens (ours, theirs)",
            "first differing token",
            "its log p: ours - theirs",
            "sum log p: ours",
            "sum log p: theirs",
            "sum log p / length: ours - theirs",
        ],
        title=f"Utterances whose {ours} tokens differ from {reference}'s, scored by openai-whisper:",
    )
    for i in differing:
        hyps = results[ours]["hyps"][i], results[reference]["hyps"][i]
        logprobs = score(utterances[i][1], hyps)
        part = next(k for k, (a, b) in enumerate(zip([*hyps[0], None], [*hyps[1], None])) if a != b)
        sums = [sum(lp) for lp in logprobs]
        ranked = [total / len(hyp) if hyp else float("-inf") for total, hyp in zip(sums, hyps)]  # openai's ranking
        table.rows.append(
            [
                utterances[i][0],
                f"{len(hyps[0])}, {len(hyps[1])}",
                str(part),
                f"{logprobs[0][part] - logprobs[1][part]:.2e}",
                f"{sums[0]:.4f}",
                f"{sums[1]:.4f}",
                f"{ranked[0] - ranked[1]:.2e}",
            ]
        )
    return table


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
        beam_size = PEERS[name].beam_size if name in PEERS else 1
        results[label] = {
            "seconds": statistics.median(times[name]),
            "runs": times[name],
            "hyps": hyps_of[name],
            "beam": beam_size,
        }

    def counterpart(peer: str, beam_size: int) -> str | None:
        """The measured peer of ``COUNTERPARTS[peer]`` that searches with ``beam_size``, if any."""
        name = COUNTERPARTS[peer].get(beam_size)
        return name if name in results else None

    def same_tokens(name: str, reference: str) -> tuple[int, int]:
        """Utterances with the same tokens from ``name`` and ``reference``, and utterances."""
        pairs = list(zip(results[name]["hyps"], results[reference]["hyps"]))
        return sum(a == b for a, b in pairs), len(pairs)

    setup = (
        f"Whisper-base, {len(utterances)} synthetic utterances ({audio_seconds / 60:.1f} min of audio), "
        f"batch {args.batch}, {args.threads} threads, <|zh|>, greedy or beam search (column beam); "
        f"30-s windows except trained models; each decoder in its own process; seconds: median of "
        f"{args.rounds} alternating round(s); tokens: of all hypotheses; ratios and token agreement against the "
        "peer searching with the same beam"
    )
    peers = [p for p in COUNTERPARTS if any(counterpart(p, r["beam"]) for r in results.values())]
    columns = ["decoder", "beam", "tokens", "seconds", "rounds", "RTF", *(f"/ {p}" for p in peers)]
    table = Table([*columns, "same tokens as openai-whisper"])
    for name, r in results.items():
        references = [counterpart(p, r["beam"]) for p in peers]
        ratios = [f"{r['seconds'] / results[ref]['seconds']:.2f}" if ref else "" for ref in references]
        reference = counterpart("openai-whisper", r["beam"])
        same = "{}/{}".format(*same_tokens(name, reference)) if reference else ""
        cells = [
            name,
            str(r["beam"]),
            str(sum(map(len, r["hyps"]))),
            f"{r['seconds']:.1f}",
            " ".join(f"{t:.1f}" for t in r["runs"]),
        ]
        table.rows.append([*cells, f"{r['seconds'] / audio_seconds:.3f}", *ratios, same])

    targets = Table(["target", "measured", "met"], title="Targets:")
    for ours, theirs, bound in SPEED_TARGETS:
        if ours in results and theirs in results:
            ratio = results[ours]["seconds"] / results[theirs]["seconds"]
            targets.rows.append(
                [f"{ours} / {theirs} <= {bound:.2f}", f"{ratio:.2f}", "yes" if ratio <= bound else "no"]
            )
    tables = [table, targets]
    for ours, theirs, bound in TOKEN_TARGETS:
        if ours in results and theirs in results:
            same, total = same_tokens(ours, theirs)
            share = same / total
            targets.rows.append(
                [
                    f"{ours} tokens = {theirs}'s on >= {bound:.0%}",
                    f"{same}/{total} ({share:.0%})",
                    "yes" if share >= bound else "no",
                ]
            )
            if diagnosis := differences(ours, theirs, results, utterances):
                tables.append(diagnosis)
    versions = ", ".join(
        f"{package} {version(package)}" for package in ("torch", "openai-whisper", "faster-whisper", "ctranslate2")
    )
    report("decode", setup, [t for t in tables if t.rows], args.record, argv=argv, notes=[f"Versions: {versions}."])


@dataclass(frozen=True)
class Peer:
    """A decoder of the table: ``build(threads=..., beam_size=...)`` makes it; ``allocator``: the malloc of its process."""

    build: Callable[..., Decoder]
    beam_size: int = 1
    allocator: str = "glibc"


PEERS: dict[str, Peer] = {
    "espnet-cs": Peer(espnet_cs),
    "espnet-cs tcmalloc": Peer(espnet_cs, allocator="tcmalloc"),
    "espnet-cs keep-batch": Peer(partial(espnet_cs, drop_finished=False)),
    "espnet-cs int8": Peer(partial(espnet_cs, int8=True)),
    "espnet-cs beam 5": Peer(espnet_cs, beam_size=5),
    "openai-whisper": Peer(openai_whisper),
    "openai-whisper beam 5": Peer(openai_whisper, beam_size=5),
    "faster-whisper batch float32": Peer(partial(faster_whisper_batch, "float32")),
    "faster-whisper batch int8": Peer(partial(faster_whisper_batch, "int8")),
    "faster-whisper batch beam 5 float32": Peer(partial(faster_whisper_batch, "float32"), beam_size=5),
    "faster-whisper transcribe": Peer(faster_whisper_transcribe),
    "espnet beam 1": Peer(espnet_beam_search),
}
COUNTERPARTS = {  # the peers the ratio columns divide by, by beam size
    "openai-whisper": {1: "openai-whisper", 5: "openai-whisper beam 5"},
    "faster-whisper batch float32": {1: "faster-whisper batch float32", 5: "faster-whisper batch beam 5 float32"},
    "faster-whisper transcribe": {1: "faster-whisper transcribe"},
}
SPEED_TARGETS = [  # (decoder, peer, highest ratio of their seconds)
    ("espnet-cs beam 5", "faster-whisper batch beam 5 float32", 1.0),
    ("espnet-cs beam 5", "openai-whisper beam 5", 0.6),
    ("espnet-cs", "faster-whisper batch float32", 0.8),
]
TOKEN_TARGETS = [  # (decoder, peer, lowest share of utterances with the same tokens)
    ("espnet-cs beam 5", "openai-whisper beam 5", 0.95),
    ("espnet-cs", "openai-whisper", 1.0),
]

if __name__ == "__main__":
    main()
