"""LID heads (stage 4): which decoder self-attention heads attend to the language tokens.

A teacher-forced pass of the frozen backbone over the training targets with the two-LID task
tokens counts, for every layer and head, the word tokens at which it is an LID head (definition in
:mod:`espnet_cs.guidance`). Writes into ``--out_dir``:

* ``lid_heads.json``: the LID heads ranked, with the per-head counts
  (:class:`espnet_cs.guidance.heads.LidHeads`); a model's ``model_conf.guidance`` names this file
  and says which of them it guides (``selection: top``, ``fraction: 0.6``, ...);
* ``heads.png``: a layer x head heat map of the counts, the LID heads marked.

Split over parallel jobs (:mod:`espnet_cs.bin.split_data`), each job writes only its raw
statistics (``--stats_out``; a file already holding them for the same data and settings is kept,
so a rerun redoes only failed jobs), and ``--merge`` ranks from all of them; the result equals
that of one job (:mod:`espnet_cs.guidance.statistics`)::

    python -m espnet_cs.bin.select_heads --data_dir split/1 --stats_out logdir/stats.1.npz
    python -m espnet_cs.bin.select_heads --merge logdir/stats.*.npz --out_dir exp/lid_heads
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
import torch
from espnet2.utils.types import str2bool

from espnet_cs.attention_analysis import collect_head_statistics
from espnet_cs.device import checked_device
from espnet_cs.figures import plt
from espnet_cs.guidance.heads import Head
from espnet_cs.guidance.statistics import HeadStatistics
from espnet_cs.model import CSWhisperModel
from espnet_cs.splitting import audio_sha256, file_sha256


def get_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data_dir", type=Path, help="training data (stage 2 output, or a split of it)")
    parser.add_argument("--out_dir", type=Path, help="where lid_heads.json and heads.png go")
    parser.add_argument("--stats_out", type=Path, help="only collect the raw statistics of --data_dir into this file")
    parser.add_argument("--merge", type=Path, nargs="+", help="rank from these --stats_out files")
    parser.add_argument("--whisper_model", default="whisper-base")
    parser.add_argument("--pad_to_30s", type=str2bool, default=False)
    parser.add_argument(
        "--min_fraction",
        type=float,
        default=0.1,
        help="an LID head is one at least at this fraction of the word tokens",
    )
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--max_utts", type=int, help="use only this many utterances")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    return parser


def plot_counts(counts: torch.Tensor, lid_heads: list[Head], word_tokens: int, path: Path) -> None:
    """Heat map of the share of word tokens at which each head is an LID head, each cell labelled
    with its percentage (the distribution the ranking reads), the LID heads framed in red."""
    layers, heads = counts.shape
    shares = counts.numpy() / max(word_tokens, 1)
    fig, ax = plt.subplots(figsize=(1 + 0.6 * heads, 1 + 0.5 * layers))
    image = ax.imshow(shares, cmap="viridis", vmin=0, vmax=1, origin="lower")
    for (layer, head), share in np.ndenumerate(shares):
        ax.text(
            head, layer, f"{100 * share:.0f}", ha="center", va="center", fontsize=7, color="w" if share < 0.6 else "k"
        )
    for layer, head in lid_heads:
        ax.add_patch(plt.Rectangle((head - 0.5, layer - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2))
    ax.set(
        xlabel="head",
        ylabel="decoder layer",
        xticks=range(heads),
        yticks=range(layers),
        title=f"% of {word_tokens} word tokens at which a head is an LID head\n(red: the LID heads; layer 0 is never one)",
    )
    fig.colorbar(image, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def collect_statistics(args: argparse.Namespace) -> HeadStatistics | None:
    """The statistics of ``--data_dir``; None if ``--stats_out`` holds them already."""
    try:
        device = checked_device(args.device)
    except ValueError as error:
        raise SystemExit(f"select_heads.py: {error}") from error
    model = CSWhisperModel.from_backbone(args.whisper_model, "zh_en", args.pad_to_30s).to(device)
    identity = model.encoder.backbone_identity
    settings = {
        "data_dir": str(args.data_dir),
        "audio_sha256": audio_sha256(args.data_dir),
        "text_sha256": file_sha256(args.data_dir / "text"),
        "backbone": identity.spec,
        "backbone_sha256": identity.sha256,
        "pad_to_30s": args.pad_to_30s,
        "batch_size": args.batch_size,
        "max_utts": args.max_utts,
    }
    if args.stats_out and args.stats_out.exists():
        before = HeadStatistics.load(args.stats_out).settings
        changed = sorted(key for key in before.keys() | settings.keys() if before.get(key) != settings.get(key))
        if not changed:
            logging.info(
                "%s holds these statistics (same audio, text, backbone, settings) already, skipped", args.stats_out
            )
            return None
        logging.info("collecting %s again: changed since: %s", args.stats_out, ", ".join(changed))
    return collect_head_statistics(model, args.data_dir, args.batch_size, settings, args.max_utts)


def write_lid_heads(stats: HeadStatistics, args: argparse.Namespace) -> None:
    """``lid_heads.json`` and the heat map of ``stats`` into ``--out_dir``."""
    if stats.with_words == 0:
        raise SystemExit("select_heads.py: no training targets have Mandarin or English word tokens")
    lid_heads = stats.lid_heads(args.min_fraction)
    if not lid_heads.ranked:
        raise SystemExit(f"select_heads.py: no LID heads found (min_fraction {args.min_fraction}); lower it")
    args.out_dir.mkdir(parents=True, exist_ok=True)
    lid_heads.save(args.out_dir / "lid_heads.json")
    plot_counts(stats.counts, lid_heads.ranked, stats.word_tokens, args.out_dir / "heads.png")
    logging.info(
        "%d of %d heads are LID heads (at >= %.0f%% of %d word tokens), ranked: %s -> %s",
        len(lid_heads.ranked),
        stats.counts.numel(),
        100 * args.min_fraction,
        stats.word_tokens,
        lid_heads.ranked,
        args.out_dir / "lid_heads.json",
    )


def main(argv: list[str] | None = None) -> None:
    parser = get_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.merge:
        if args.data_dir or args.stats_out or not args.out_dir:
            parser.error("--merge takes --out_dir, and no --data_dir or --stats_out")
        try:
            stats = HeadStatistics.merge(
                [HeadStatistics.load(path) for path in args.merge], [str(p) for p in args.merge]
            )
        except (FileNotFoundError, ValueError) as error:
            raise SystemExit(f"select_heads.py: {error}") from error
        write_lid_heads(stats, args)
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
    write_lid_heads(stats, args)


if __name__ == "__main__":
    main()
