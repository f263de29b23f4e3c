"""Training benchmark: espnet-cs against the usual Hugging Face route (transformers + PEFT) on the same data.

Both routes train Whisper-base from the same weights on the same Kaldi training set (stage 2's
``dump/raw/<train>``, 16-kHz audio and text) for ``--epochs`` epochs with the same method
options, batch size, optimizer (AdamW, weight decay 0.01, constant learning rate) and gradient
clipping (5), on this machine's CPU with ``--threads`` threads:

- ``espnet-cs``: ``python -m espnet_cs.bin.train`` with ``conf/tuning/<method>.yaml`` (ESPnet's
  trainer, true-length ``sorted`` batches, LoRA from ESPnet's ``create_adapter``);
- ``transformers``: ``WhisperForConditionalGeneration`` holding the same weights (written by
  ``espnet_cs.export``, whose logits equal openai-whisper's; transformers 5 no longer ships its
  ``convert_openai_to_hf`` script), its ``WhisperFeatureExtractor``
  (30-s windows, as that route requires), ``Seq2SeqTrainer``, and PEFT's LoRA (the same rank,
  alpha and attention projections) for ``lora``.

The targets are the task tokens followed by the text and end of text, with the loss on the text
and end of text only, in both routes. Each run is its own process: it prints the seconds of each
training epoch (no validation) and its peak resident memory. Then each trained model decodes the
test set with the same greedy decoder (:class:`espnet_cs.decoding.Transcriber`; the transformers
model with its LoRA merged, read back as a backbone, 30-s windows as it was trained) and is
scored by :mod:`espnet_cs.scoring` (MER with its 95% bootstrap interval over the test utterances,
and the paired-bootstrap difference to the transformers route on the same utterances).

    tools/venv/bin/pip install -r benchmarks/requirements.txt  # peft, accelerate: this benchmark only
    python -m benchmarks.train --dump egs2/mini_cs/asr1/dump/raw [--methods lora fft] [--epochs 2] \\
        [--threads 2] [--record]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchmarks import harness
from benchmarks.harness import ROOT, Table, common_options, measure_in_child, report
from espnet_cs.config_yaml import load_yaml
from espnet_cs.methods import CONF

WORK = harness.WORK / "train"


def subset(data: Path, utterances: int | None, out: Path) -> Path:
    """The first ``utterances`` (sorted ids; all for None) of a stage-2 dir ``<recipe>/dump/raw/<set>``,
    written to a dir of their own with absolute audio paths (the recipe's are relative to it)."""
    from espnet_cs.kaldi_dir import read_kaldi_map, write_kaldi_map

    recipe = data.parents[2]
    target = out / f"{data.name}_{utterances or 'all'}"
    target.mkdir(parents=True, exist_ok=True)
    wavs = read_kaldi_map(data / "wav.scp")
    keep = sorted(wavs)[:utterances]
    write_kaldi_map(target / "wav.scp", {u: recipe / wavs[u] for u in keep})
    for name in ("text", "speech_shape"):
        table = read_kaldi_map(data / name)
        write_kaldi_map(target / name, {u: table[u] for u in keep})
    return target


def espnet_cs_route(method: str, sets: dict[str, Path], epochs: int, out: Path) -> dict:
    """Train with ``espnet_cs.bin.train`` (a child process); seconds per epoch from ESPnet's reporter."""
    import torch

    out.mkdir(parents=True, exist_ok=True)
    train, valid = sets["train"], sets["valid"]
    command = [sys.executable, "-m", "espnet_cs.bin.train", "--config", str(CONF / f"{method}.yaml")]
    command += ["--ngpu", "0", "--output_dir", str(out), "--max_epoch", str(epochs), "--num_workers", "0"]
    for prefix, data in (("train", train), ("valid", valid)):
        command += [f"--{prefix}_data_path_and_name_and_type", f"{data}/wav.scp,speech,sound"]
        command += [f"--{prefix}_data_path_and_name_and_type", f"{data}/text,text,text"]
        command += [f"--{prefix}_shape_file", f"{data}/speech_shape"]
    with open(out / "train.log", "w") as log:
        subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT)
    reporter = torch.load(out / "checkpoint.pth", map_location="cpu", weights_only=False)["reporter"]
    epoch_train = [stats["train"]["time"].total_seconds() for _, stats in sorted(reporter["stats"].items())]
    return {
        "epoch_seconds": epoch_train,
        "peak_mib": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "model": {"config": str(out / "config.yaml"), "file": str(out / f"{epochs}epoch.pth")},
    }


def hf_checkpoint(out: Path) -> Path:
    """Whisper-base as a transformers directory (:func:`espnet_cs.export.export` of the zero-shot model)."""
    from espnet_cs.backbone.export import export
    from espnet_cs.model import CSWhisperModel

    target = out / "whisper-base-hf"
    if not (target / "config.json").is_file():
        export(CSWhisperModel.from_backbone("whisper-base"), target)
    return target


def transformers_route(method: str, sets: dict[str, Path], epochs: int, out: Path, threads: int) -> dict:
    """Train with transformers' ``Seq2SeqTrainer`` (and PEFT for LoRA) in this process."""
    import torch
    from transformers import (
        Seq2SeqTrainer,
        Seq2SeqTrainingArguments,
        TrainerCallback,
        WhisperFeatureExtractor,
        WhisperForConditionalGeneration,
    )

    from espnet_cs.kaldi_dir import read_kaldi_map
    from espnet_cs.tokenizer import CSTokenizer

    torch.set_num_threads(threads)
    config = load_yaml(CONF / f"{method}.yaml")
    tokenizer = CSTokenizer(config.get("task_tokens", "zh_en"))
    model = WhisperForConditionalGeneration.from_pretrained(hf_checkpoint(out.parent))
    if config.get("adapter") == "lora":
        from peft import LoraConfig, get_peft_model

        lora = config["adapter_conf"]
        names = {"query": "q_proj", "key": "k_proj", "value": "v_proj", "out": "out_proj"}
        model = get_peft_model(
            model,
            LoraConfig(
                r=lora["rank"],
                lora_alpha=lora["alpha"],
                lora_dropout=lora.get("dropout_rate", 0.0),
                target_modules=[names[m] for m in lora["target_modules"]],
                bias="none",
            ),
        )
    features = WhisperFeatureExtractor(feature_size=model.config.num_mel_bins)
    task = list(tokenizer.sot_sequence)
    wavs = read_kaldi_map(sets["train"] / "wav.scp")
    texts = read_kaldi_map(sets["train"] / "text")

    class KaldiSet(torch.utils.data.Dataset):
        def __init__(self) -> None:
            self.utts = sorted(wavs)

        def __len__(self) -> int:
            return len(self.utts)

        def __getitem__(self, index: int) -> dict:
            import soundfile as sf

            utt = self.utts[index]
            audio, _ = sf.read(wavs[utt], dtype="float32")
            mel = features(audio, sampling_rate=16000, return_tensors="pt").input_features[0]
            # labels: task tokens (decoder inputs only: -100) + text + end of text; transformers shifts
            # them right behind <|startoftranscript|>.
            labels = task[1:] + tokenizer.encode(texts[utt]) + [tokenizer.eot]
            return {"input_features": mel, "labels": labels}

    def collate(items: list[dict]) -> dict:
        width = max(len(i["labels"]) for i in items)
        labels = torch.full((len(items), width), -100)
        for row, item in enumerate(items):
            labels[row, : len(item["labels"])] = torch.tensor(item["labels"])
        labels[:, : len(task) - 1] = -100  # no loss on the task tokens (espnet-cs: the same)
        inputs = torch.full((len(items), width), tokenizer.eot)
        inputs[:, 0] = task[0]
        for row, item in enumerate(items):
            inputs[row, 1 : len(item["labels"])] = torch.tensor(item["labels"][:-1])
        return {
            "input_features": torch.stack([i["input_features"] for i in items]),
            "decoder_input_ids": inputs,
            "labels": labels,
        }

    class EpochTimer(TrainerCallback):
        def __init__(self) -> None:
            self.seconds: list[float] = []

        def on_epoch_begin(self, args, state, control, **kwargs):
            self.start = time.perf_counter()

        def on_epoch_end(self, args, state, control, **kwargs):
            self.seconds.append(time.perf_counter() - self.start)

    timer = EpochTimer()
    arguments = Seq2SeqTrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=config["batch_size"],
        learning_rate=config["optim_conf"]["lr"],
        weight_decay=0.01,
        lr_scheduler_type="constant",
        max_grad_norm=5.0,
        num_train_epochs=epochs,
        use_cpu=True,
        save_strategy="no",
        report_to=[],
        logging_steps=10,
        dataloader_num_workers=0,
        remove_unused_columns=False,
        seed=0,
    )
    Seq2SeqTrainer(
        model=model, args=arguments, train_dataset=KaldiSet(), data_collator=collate, callbacks=[timer]
    ).train()
    merged = model.merge_and_unload() if hasattr(model, "merge_and_unload") else model
    merged.save_pretrained(out / "model")
    return {
        "epoch_seconds": timer.seconds,
        "peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "model": {"hf_dir": str(out / "model"), "task_tokens": tokenizer.task_tokens},
    }


def test_errors(model: dict, test_set: Path, threads: int) -> dict[str, list[int]]:
    """``{utt: [errors, reference units]}`` of greedy decoding of the test set with the trained model."""
    import soundfile as sf
    import torch

    from espnet_cs.decoding import Transcriber
    from espnet_cs.kaldi_dir import read_kaldi_map
    from espnet_cs.model import CSWhisperModel
    from espnet_cs.scoring import score

    torch.set_num_threads(threads)
    if "hf_dir" in model:
        transcriber = Transcriber.from_model(CSWhisperModel.from_backbone(model["hf_dir"], model["task_tokens"]))
    else:
        transcriber = Transcriber.from_trained(model["config"], model["file"])
    wavs = read_kaldi_map(test_set / "wav.scp")
    refs = read_kaldi_map(test_set / "text")
    utts = sorted(wavs)
    hyps = {}
    for i in range(0, len(utts), 16):
        batch = utts[i : i + 16]
        hyps.update(zip(batch, (h.text for h in transcriber([sf.read(wavs[u], dtype="float32")[0] for u in batch]))))
    return {u.utt_id: [u.counts.errors, u.counts.ref_units] for u in score(refs, hyps).utts}


def mer_cell(errors: dict[str, list[int]]) -> str:
    """``MER [95% bootstrap interval]`` over the test utterances."""
    from espnet_cs.bootstrap import rate_interval

    num, den = zip(*errors.values())
    interval = rate_interval(list(num), list(den))
    return f"{100 * sum(num) / sum(den):.1f} [{interval.low:.1f}, {interval.high:.1f}]"


def difference_cell(errors: dict[str, list[int]], peer: dict[str, list[int]]) -> str:
    """MER of ``errors`` minus the peer's on the same utterances, with its 95% paired-bootstrap interval."""
    from espnet_cs.bootstrap import paired_difference

    utts = sorted(errors)
    result = paired_difference(
        ([errors[u][0] for u in utts], [errors[u][1] for u in utts]),
        ([peer[u][0] for u in utts], [peer[u][1] for u in utts]),
    )
    return f"{result.difference:+.1f} [{result.interval.low:+.1f}, {result.interval.high:+.1f}]"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    common_options(parser)
    parser.add_argument("--dump", type=Path, default=ROOT / "egs2/mini_cs/asr1/dump/raw")
    parser.add_argument("--train_set", default="train")
    parser.add_argument("--valid_set", default="valid")
    parser.add_argument("--test_set", default="test")
    parser.add_argument("--methods", nargs="+", default=["lora", "fft"])
    parser.add_argument("--routes", nargs="+", default=["espnet-cs", "transformers"])
    parser.add_argument("--train_utts", type=int, help="train on the first N utterances only")
    parser.add_argument("--test_utts", type=int, help="score the first N test utterances only")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--one", nargs=2, metavar=("ROUTE", "METHOD"), help=argparse.SUPPRESS)  # child process
    args = parser.parse_args(argv)
    dump = args.dump.absolute()
    sets = {
        "train": subset(dump / args.train_set, args.train_utts, WORK / "data"),
        "valid": subset(dump / args.valid_set, None, WORK / "data"),
        "test": subset(dump / args.test_set, args.test_utts, WORK / "data"),
    }
    if args.one:
        route, method = args.one
        out = WORK / f"{route}_{method}"
        shutil.rmtree(out, ignore_errors=True)  # a fresh run: nothing resumed
        if route == "espnet-cs":
            result = espnet_cs_route(method, sets, args.epochs, out)
        else:
            result = transformers_route(method, sets, args.epochs, out, args.threads)
        result["test_errors"] = test_errors(result["model"], sets["test"], args.threads)
        print(json.dumps(result))
        return

    results = {}
    for method in args.methods:
        for route in args.routes:
            child = ["--one", route, method, "--dump", str(dump), "--epochs", str(args.epochs)]
            child += ["--train_set", args.train_set, "--valid_set", args.valid_set, "--test_set", args.test_set]
            child += ["--threads", str(args.threads)]
            for option in ("train_utts", "test_utts"):
                if getattr(args, option):
                    child += [f"--{option}", str(getattr(args, option))]
            env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
            results[route, method] = measure_in_child("benchmarks.train", child, env)
            print(f"measured {route} {method}: {results[route, method]['epoch_seconds']}", file=sys.stderr)

    setup = (
        f"Whisper-base, {_count(sets['train'])} utterances of {args.dump / args.train_set}, {args.epochs} epochs, "
        f"the method's batch size, CPU, {args.threads} threads; MER on {_count(sets['test'])} utterances of "
        f"{args.test_set} after the last epoch"
    )
    table = Table(
        [
            "method", "route", "s / epoch", "/ transformers", "peak memory (MiB)", "/ transformers",
            "test MER [95%]", "MER − transformers [95% paired]",
        ]
    )  # fmt: skip
    for (route, method), r in results.items():
        peer = results.get(("transformers", method))
        epoch = sum(r["epoch_seconds"]) / len(r["epoch_seconds"])
        peer_epoch = sum(peer["epoch_seconds"]) / len(peer["epoch_seconds"]) if peer else None
        ratio = f"{epoch / peer_epoch:.2f}" if peer else "—"
        memory = f"{r['peak_mib'] / peer['peak_mib']:.2f}" if peer else "—"
        difference = difference_cell(r["test_errors"], peer["test_errors"]) if peer and peer is not r else "—"
        table.rows.append(
            [
                method,
                route,
                f"{epoch:.0f}",
                ratio,
                f"{r['peak_mib']:.0f}",
                memory,
                mer_cell(r["test_errors"]),
                difference,
            ]
        )
    report("train", setup, [table], args.record, argv=argv)


def _count(data: Path) -> int:
    return len((data / "wav.scp").read_text().splitlines())


if __name__ == "__main__":
    main()
