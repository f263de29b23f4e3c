"""How the guided heads attend to the LID tokens, for the backbone and trained models (stage 10).

For every system: the share of (word token, guided head) pairs whose larger LID-column attention
falls on the token's own language, over ``--data_dir`` (``attention.json``); and, for one
code-switched utterance, the LID-column attention of the guided heads beside the target map
(``attention.png``, like Figure 3 of the attention-guidance paper).

    python -m espnet_cs.bin.attention_report --data_dir dump/raw/test --lid_heads exp/lid_heads/lid_heads.json \\
        --selection top --fraction 0.6 --system backbone --system adapter=exp/adapter \\
        --system guided=exp/adapter_phase1+adapter_ag_phase2 --plot backbone --plot guided --out_dir exp/attention

The heads measured are one selection (``--selection``, ``--fraction``) of stage 4's LID heads, the
same for every system.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

import numpy as np
import torch

from espnet_cs.attention_analysis import attention_passes
from espnet_cs.device import checked_device
from espnet_cs.figures import plt
from espnet_cs.guidance.heads import SELECTIONS, Head, LidHeads, own_language_share
from espnet_cs.kaldi_dir import read_kaldi_map, write_atomic
from espnet_cs.model import CSWhisperModel
from espnet_cs.renamed import RENAMED_GUIDANCE_OPTIONS, add_renamed_options


def load_system(spec: str, whisper_model: str, device: str = "cpu") -> tuple[str, CSWhisperModel]:
    """``backbone`` or ``name=exp_dir`` (its config.yaml and valid.loss.ave.pth), on ``device``."""
    if spec == "backbone":
        return spec, CSWhisperModel.from_backbone(whisper_model, "zh_en", pad_to_30s=False).to(device)
    name, _, exp = spec.partition("=")
    from espnet_cs.task import CSASRTask

    model, _ = CSASRTask.build_inference_model(f"{exp}/config.yaml", f"{exp}/valid.loss.ave.pth", device)
    return name, model


def lid_map(
    model: CSWhisperModel, data_dir: Path, utt: str, heads: list[Head]
) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Word tokens of ``utt``, their (zh, en) attention averaged over ``heads``, and the target map."""
    attention, words, _ = next(attention_passes(model, data_dir, batch_size=1, utts=[utt]))
    lid = torch.stack([words.lid_attention(attention[layer])[:, head] for layer, head in heads]).mean(0)
    ids = model.tokenizer.encode_target(read_kaldi_map(data_dir / "text")[utt])
    tags = model.tokenizer.language_tags(ids)
    labels = [
        model.tokenizer.whisper.encoding.decode_single_token_bytes(t).decode("utf-8", "replace").strip()
        for t, tag in zip(ids, tags)
        if tag.name in ("ZH", "EN")
    ]
    target = torch.nn.functional.one_hot(words.languages, 2).cpu().numpy()
    return labels, lid.cpu().numpy(), target


def plot(maps: dict[str, np.ndarray], labels: list[str], utt: str, path: Path) -> None:
    fig, axes = plt.subplots(1, len(maps), figsize=(2.2 * len(maps), 0.9 + 0.32 * len(labels)), sharey=True)
    for ax, (name, values) in zip(np.atleast_1d(axes), maps.items()):
        ax.imshow(values, cmap="Blues", vmin=0, vmax=1, aspect="auto")
        ax.set(title=name.replace("+", "+\n"), xticks=[0, 1], xticklabels=["<|zh|>", "<|en|>"])
        for (row, col), value in np.ndenumerate(values):
            ax.text(
                col,
                row,
                f"{value:.2f}",
                ha="center",
                va="center",
                fontsize=7,
                color="white" if value > 0.6 else "black",
            )
    np.atleast_1d(axes)[0].set(yticks=range(len(labels)), yticklabels=labels)
    fig.suptitle(f"LID-column attention of the guided heads, {utt}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", type=Path, required=True)
    parser.add_argument("--lid_heads", type=Path, required=True, help="stage 4's lid_heads.json")
    parser.add_argument("--selection", choices=SELECTIONS, default="top", help="which of the LID heads to measure")
    parser.add_argument("--fraction", type=float, default=0.6, help="of the selection (top: of the LID heads)")
    add_renamed_options(parser, RENAMED_GUIDANCE_OPTIONS)
    parser.add_argument("--system", action="append", required=True, help="backbone or name=exp_dir; repeatable")
    parser.add_argument("--whisper_model", default="whisper-base")
    parser.add_argument("--utt", help="the utterance to plot (default: the first code-switched one)")
    parser.add_argument(
        "--plot", action="append", help="a system name to draw in the figure; repeatable (default: every system)"
    )
    parser.add_argument("--out_dir", type=Path, required=True)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")

    try:
        device = str(checked_device(args.device))
    except ValueError as error:
        raise SystemExit(f"attention_report.py: {error}") from error
    categories = read_kaldi_map(args.data_dir / "utt2category")
    utt = args.utt or next(u for u, c in sorted(categories.items()) if c == "cs")
    shares, maps, labels = {}, {}, []
    for spec in args.system:
        name, model = load_system(spec, args.whisper_model, device)
        identity = model.encoder.backbone_identity
        try:
            heads = LidHeads.load(
                args.lid_heads, identity.sha256, identity.dims["n_text_layer"], identity.dims["n_text_head"]
            ).select(args.selection, args.fraction)
        except (FileNotFoundError, ValueError) as e:
            raise SystemExit(f"attention_report.py: {name}: {e}") from e
        hits = pairs = 0
        for attention, words, _ in attention_passes(model, args.data_dir):
            h, p = own_language_share(attention, heads, words)
            hits, pairs = hits + h, pairs + p
        shares[name] = {"own_language": hits / max(pairs, 1), "pairs": pairs}
        labels, lid_columns, target = lid_map(model, args.data_dir, utt, heads)
        if args.plot is None or name in args.plot:
            maps[name] = lid_columns
        logging.info(
            "%s: %.1f%% of word-token x head pairs attend more to their own language", name, 100 * hits / max(pairs, 1)
        )
    maps["target map"] = target
    args.out_dir.mkdir(parents=True, exist_ok=True)
    plot(maps, labels, utt, args.out_dir / "attention.png")
    write_atomic(
        args.out_dir / "attention.json",
        json.dumps(
            {
                "lid_heads": str(args.lid_heads),
                "selection": args.selection,
                "fraction": args.fraction,
                "heads": [list(head) for head in heads],
                "utt": utt,
                "systems": shares,
            },
            indent=1,
        )
        + "\n",
    )


if __name__ == "__main__":
    main()
