"""LID-head selection (stage 4): which decoder self-attention heads attend to the language tokens.

A teacher-forced pass of the frozen backbone over the training targets with the two-LID prompt
counts, for every layer and head, the sentences in which it is an LID head (definition in
:mod:`espnet_cs.guidance`). Writes into ``--out_dir``:

* ``counts.json``: the per-head counts, the number of sentences and of LID heads;
* ``heads_top<share>.json``, ``heads_all.json``, ``heads_random<share>.json``: selections for
  ``model_conf.guidance.heads_file`` (top share of the LID heads, all LID heads, a random share
  of all heads as the ablation);
* ``heads.png``: a layer x head heat map of the counts, selected heads marked.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Optional

import torch

from espnet_cs.attention_analysis import attention_passes
from espnet_cs.figures import plt
from espnet_cs.bin.decode import str2bool
from espnet_cs.decoder import WhisperCSDecoder
from espnet_cs.encoder import WhisperCSEncoder
from espnet_cs.guidance import HeadSelection, lid_head_statistics, own_language_share, select_heads
from espnet_cs.kaldi_dir import write_atomic
from espnet_cs.model import CSWhisperModel
from espnet_cs.tokenizer import CSTokenizer


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", type=Path, required=True, help="training data (stage 2 output)")
    parser.add_argument("--out_dir", type=Path, required=True)
    parser.add_argument("--whisper_model", default="whisper-base")
    parser.add_argument("--pad_to_30s", type=str2bool, default=False)
    parser.add_argument("--top_share", type=float, default=0.6, help="share of the LID heads kept (the paper's best: 0.6)")
    parser.add_argument("--random_share", type=float, default=0.5, help="share of all heads in the random ablation")
    parser.add_argument("--min_fraction", type=float, default=0.1,
                        help="an LID head is one in at least this fraction of the sentences")
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--max_utts", type=int, help="use only this many utterances")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def backbone_model(whisper_model: str, pad_to_30s: bool) -> CSWhisperModel:
    """The frozen backbone with the two-LID prompt, nothing added."""
    encoder = WhisperCSEncoder(whisper_model=whisper_model, pad_to_30s=pad_to_30s)
    vocab = CSTokenizer.for_vocab(encoder.backbone_identity.dims["n_vocab"]).vocab_size
    decoder = WhisperCSDecoder(vocab, encoder.output_size(), whisper_model=whisper_model)
    return CSWhisperModel(encoder, decoder, prompt="cs")


def plot_counts(counts: torch.Tensor, selected: list[tuple[int, int]], n_sentences: int, path: Path) -> None:
    layers, heads = counts.shape
    fig, ax = plt.subplots(figsize=(1 + 0.5 * heads, 1 + 0.45 * layers))
    image = ax.imshow(counts.numpy() / max(n_sentences, 1), cmap="viridis", vmin=0, vmax=1, origin="lower")
    for layer, head in selected:
        ax.add_patch(plt.Rectangle((head - 0.5, layer - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2))
    ax.set(xlabel="head", ylabel="decoder layer", xticks=range(heads), yticks=range(layers),
           title=f"share of {n_sentences} sentences in which a head is an LID head\n(red: selected)")
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: Optional[list[str]] = None) -> None:
    args = get_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    model = backbone_model(args.whisper_model, args.pad_to_30s)
    dims = model.encoder.backbone_identity.dims
    counts = torch.zeros(dims["n_text_layer"], dims["n_text_head"], dtype=torch.long)
    lid_attention = torch.zeros(dims["n_text_layer"], dims["n_text_head"])
    n_sentences = with_words = 0
    hits = pairs = 0
    every_head = [(l, h) for l in range(dims["n_text_layer"]) for h in range(dims["n_text_head"])]
    for attention, words, n in attention_passes(model, args.data_dir, args.batch_size, args.max_utts):
        indicator, share = lid_head_statistics(attention, words, n)
        counts += indicator.sum(0)
        lid_attention += share.sum(0)
        n_sentences += n
        with_words += int(torch.bincount(words.batch, minlength=n).gt(0).sum())
        h, p = own_language_share(attention, every_head, words)
        hits, pairs = hits + h, pairs + p
    if with_words == 0:
        raise SystemExit(f"select_heads.py: no targets in {args.data_dir} have Mandarin or English word tokens")

    args.out_dir.mkdir(parents=True, exist_ok=True)
    sha = model.encoder.backbone_identity.sha256
    selections = {f"top{round(100 * args.top_share)}": ("top", args.top_share), "all": ("all", 1.0),
                  f"random{round(100 * args.random_share)}": ("random", args.random_share)}
    for name, (mode, share) in selections.items():
        lid_heads, heads = select_heads(counts, lid_attention, n_sentences, mode, share, args.min_fraction, args.seed)
        if not heads:
            raise SystemExit(f"select_heads.py: no LID heads found (min_fraction {args.min_fraction}); lower it")
        HeadSelection(sha, *counts.shape, heads=heads, mode=mode, share=share, counts=counts.tolist(),
                      lid_attention=(lid_attention / n_sentences).tolist(), n_sentences=n_sentences, lid_heads=lid_heads).save(args.out_dir / f"heads_{name}.json")
        if mode == "top":
            plot_counts(counts, heads, n_sentences, args.out_dir / "heads.png")
            top = heads
    summary = {"backbone": model.encoder.backbone_identity.spec, "backbone_sha256": sha, "sentences": n_sentences,
               "sentences_with_word_tokens": with_words, "heads": len(every_head), "lid_heads": len(lid_heads),
               "selected_top": len(top), "counts": counts.tolist(),
               "mean_lid_attention": (lid_attention / n_sentences).tolist(),
               "own_language_share_all_heads": hits / max(pairs, 1)}
    write_atomic(args.out_dir / "counts.json", json.dumps(summary, indent=1) + "\n")
    logging.info("%d of %d heads are LID heads (in >= %.0f%% of %d sentences); kept %d: %s",
                 len(lid_heads), len(every_head), 100 * args.min_fraction, n_sentences, len(top), top)


if __name__ == "__main__":
    main()
