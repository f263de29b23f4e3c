"""LID-head selection (stage 4): which decoder self-attention heads attend to the language tokens.

A teacher-forced pass of the frozen backbone over the training targets with the two-LID prompt
counts, for every layer and head, the sentences in which it is an LID head (definition in
:mod:`espnet_cs.guidance`). Writes into ``--out_dir``:

* ``counts.json``: the per-head counts, the number of sentences and of LID heads;
* ``heads_top<share>.json``, ``heads_all.json``, ``heads_random<share>.json``: selections for
  ``model_conf.guidance.heads_file`` (top share of the LID heads, all LID heads, a random share
  of all heads as the ablation);
* ``heads.png``: a layer x head heat map of the counts, selected heads marked.

Split over parallel jobs (:mod:`espnet_cs.bin.split_data`), each job writes only its raw
statistics (``--stats_out``; a file already holding them for the same data and settings is kept,
so a rerun redoes only failed jobs), and ``--merge`` selects from all of them; the result equals
that of one job (:mod:`espnet_cs.head_statistics`)::

    python -m espnet_cs.bin.select_heads --data_dir split/1 --stats_out logdir/stats.1.npz
    python -m espnet_cs.bin.select_heads --merge logdir/stats.*.npz --out_dir exp/lid_heads
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Optional

import torch

from espnet_cs.bin.decode import str2bool
from espnet_cs.decoder import WhisperCSDecoder
from espnet_cs.encoder import WhisperCSEncoder
from espnet_cs.figures import plt
from espnet_cs.guidance import HeadSelection, select_heads
from espnet_cs.head_statistics import HeadStatistics, collect
from espnet_cs.kaldi_dir import write_atomic
from espnet_cs.model import CSWhisperModel
from espnet_cs.splitting import file_sha256
from espnet_cs.tokenizer import CSTokenizer


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", type=Path, help="training data (stage 2 output, or a split of it)")
    parser.add_argument("--out_dir", type=Path, help="where the selections go")
    parser.add_argument("--stats_out", type=Path, help="only collect the raw statistics of --data_dir into this file")
    parser.add_argument("--merge", type=Path, nargs="+", help="select from these --stats_out files")
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


def collect_statistics(args: argparse.Namespace) -> Optional[HeadStatistics]:
    """The statistics of ``--data_dir``; None if ``--stats_out`` holds them already."""
    model = backbone_model(args.whisper_model, args.pad_to_30s)
    identity = model.encoder.backbone_identity
    settings = {"data_dir": str(args.data_dir), "wav_scp_sha256": file_sha256(args.data_dir / "wav.scp"),
                "text_sha256": file_sha256(args.data_dir / "text"), "backbone": identity.spec,
                "backbone_sha256": identity.sha256, "pad_to_30s": args.pad_to_30s, "batch_size": args.batch_size,
                "max_utts": args.max_utts}
    if args.stats_out and args.stats_out.exists() and HeadStatistics.load(args.stats_out).settings == settings:
        logging.info("%s holds these statistics already, skipped", args.stats_out)
        return None
    return collect(model, args.data_dir, args.batch_size, settings, args.max_utts)


def write_selections(stats: HeadStatistics, args: argparse.Namespace) -> None:
    """The selection files, heat map and ``counts.json`` of ``stats`` into ``--out_dir``."""
    if stats.with_words == 0:
        raise SystemExit("select_heads.py: no training targets have Mandarin or English word tokens")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    counts, lid_attention, n_sentences = stats.counts, stats.lid_attention(), stats.n_sentences
    sha = stats.settings["backbone_sha256"]
    selections = {f"top{round(100 * args.top_share)}": ("top", args.top_share), "all": ("all", 1.0),
                  f"random{round(100 * args.random_share)}": ("random", args.random_share)}
    for name, (mode, share) in selections.items():
        lid_heads, heads = select_heads(counts, lid_attention, n_sentences, mode, share, args.min_fraction, args.seed)
        if not heads:
            raise SystemExit(f"select_heads.py: no LID heads found (min_fraction {args.min_fraction}); lower it")
        HeadSelection(sha, *counts.shape, heads=heads, mode=mode, share=share, counts=counts.tolist(),
                      lid_attention=(lid_attention / n_sentences).tolist(), n_sentences=n_sentences,
                      lid_heads=lid_heads).save(args.out_dir / f"heads_{name}.json")
        if mode == "top":
            plot_counts(counts, heads, n_sentences, args.out_dir / "heads.png")
            top = heads
    summary = {"backbone": stats.settings["backbone"], "backbone_sha256": sha, "sentences": n_sentences,
               "sentences_with_word_tokens": stats.with_words, "heads": counts.numel(), "lid_heads": len(lid_heads),
               "selected_top": len(top), "counts": counts.tolist(),
               "mean_lid_attention": (lid_attention / n_sentences).tolist(),
               "own_language_share_all_heads": stats.hits / max(stats.pairs, 1)}
    write_atomic(args.out_dir / "counts.json", json.dumps(summary, indent=1) + "\n")
    logging.info("%d of %d heads are LID heads (in >= %.0f%% of %d sentences); kept %d: %s",
                 len(lid_heads), counts.numel(), 100 * args.min_fraction, n_sentences, len(top), top)


def main(argv: Optional[list[str]] = None) -> None:
    parser = get_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.merge:
        if args.data_dir or args.stats_out or not args.out_dir:
            parser.error("--merge takes --out_dir, and no --data_dir or --stats_out")
        try:
            stats = HeadStatistics.merge([HeadStatistics.load(path) for path in args.merge], [str(p) for p in args.merge])
        except (FileNotFoundError, ValueError) as error:
            raise SystemExit(f"select_heads.py: {error}")
        write_selections(stats, args)
        return
    if not args.data_dir or bool(args.out_dir) == bool(args.stats_out):
        parser.error("give --data_dir and one of --out_dir or --stats_out (or --merge)")
    stats = collect_statistics(args)
    if stats is None:  # --stats_out holds them already
        return
    if args.stats_out:
        stats.save(args.stats_out)
        logging.info("statistics of %d sentences -> %s", stats.n_sentences, args.stats_out)
        return
    write_selections(stats, args)


if __name__ == "__main__":
    main()
