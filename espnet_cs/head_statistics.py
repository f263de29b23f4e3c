"""Raw LID-head statistics of a data dir (stage 4): collected per split job, saved, merged exactly.

For every decoder layer and head: the number of sentences in which it is an LID head (an
integer), and its LID-column attention summed over the sentences of each batch (definitions in
:mod:`espnet_cs.guidance`); plus the counts behind the own-language share. Merging adds the
integers and sums the per-batch attention with :func:`math.fsum`, the correctly rounded total
whatever the order: the statistics of split jobs merge to exactly those of one job, provided the
splits consist of whole batches (:mod:`espnet_cs.splitting`).
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

import numpy as np
import torch

from espnet_cs.attention_analysis import attention_passes
from espnet_cs.guidance import lid_head_statistics, own_language_share
from espnet_cs.kaldi_dir import write_atomic
from espnet_cs.model import CSWhisperModel

SPLIT_KEYS = ("data_dir", "wav_scp_sha256", "text_sha256")  # differ between the splits of one data dir


@dataclass
class HeadStatistics:
    """LID-head statistics of some sentences.

    Attributes:
        settings: what identifies them (data, backbone, padding, batch size).
        counts: (layers, heads) sentences in which each head is an LID head.
        batch_lid_attention: (batches, layers, heads) LID-column attention summed over each batch's sentences.
        n_sentences: sentences seen.
        with_words: sentences with Mandarin or English word tokens.
        hits, pairs: word-token x head pairs whose larger LID-column attention is on their own
            language, and all such pairs (every head).
    """

    settings: dict[str, Any]
    counts: torch.Tensor
    batch_lid_attention: torch.Tensor
    n_sentences: int
    with_words: int
    hits: int
    pairs: int

    def lid_attention(self) -> torch.Tensor:
        """(layers, heads) LID-column attention summed over all sentences (float64, exactly rounded)."""
        per_head = self.batch_lid_attention.double().reshape(len(self.batch_lid_attention), -1).T.tolist()
        return torch.tensor([math.fsum(values) for values in per_head], dtype=torch.float64).reshape(self.counts.shape)

    def save(self, path: Path) -> None:
        buffer = io.BytesIO()
        np.savez(buffer, settings=json.dumps(self.settings), counts=self.counts.numpy(),
                 batch_lid_attention=self.batch_lid_attention.numpy(),
                 scalars=np.array([self.n_sentences, self.with_words, self.hits, self.pairs]))
        write_atomic(path, buffer.getvalue())

    @classmethod
    def load(cls, path: Path) -> "HeadStatistics":
        with np.load(path, allow_pickle=False) as data:
            n_sentences, with_words, hits, pairs = (int(x) for x in data["scalars"])
            return cls(json.loads(str(data["settings"])), torch.from_numpy(data["counts"]),
                       torch.from_numpy(data["batch_lid_attention"]), n_sentences, with_words, hits, pairs)

    @classmethod
    def merge(cls, parts: Sequence["HeadStatistics"], names: Sequence[str]) -> "HeadStatistics":
        """The statistics of all parts' sentences (``names``: where each part is from, for errors).

        Raises:
            ValueError: the parts were collected with other backbones or settings.
        """
        common = {k: v for k, v in parts[0].settings.items() if k not in SPLIT_KEYS}
        for part, name in zip(parts, names):
            differing = sorted(k for k in (set(common) | set(part.settings)) - set(SPLIT_KEYS)
                               if part.settings.get(k) != common.get(k))
            if differing:
                raise ValueError(f"{name} was collected with other settings than {names[0]}: {differing}")
        return cls({**common, "splits": len(parts)}, sum(p.counts for p in parts),
                   torch.cat([p.batch_lid_attention for p in parts]), sum(p.n_sentences for p in parts),
                   sum(p.with_words for p in parts), sum(p.hits for p in parts), sum(p.pairs for p in parts))


def collect(model: CSWhisperModel, data_dir: Path, batch_size: int, settings: dict[str, Any],
            max_utts: Optional[int] = None) -> HeadStatistics:
    """Teacher-forced passes of ``model`` over ``data_dir``, batch by batch."""
    dims = model.encoder.backbone_identity.dims
    every_head = [(l, h) for l in range(dims["n_text_layer"]) for h in range(dims["n_text_head"])]
    counts = torch.zeros(dims["n_text_layer"], dims["n_text_head"], dtype=torch.long)
    batch_shares, n_sentences, with_words, hits, pairs = [], 0, 0, 0, 0
    for attention, words, n in attention_passes(model, data_dir, batch_size, max_utts):
        indicator, share = lid_head_statistics(attention, words, n)
        counts += indicator.sum(0)
        batch_shares.append(share.sum(0).float())
        n_sentences += n
        with_words += int(torch.bincount(words.batch, minlength=n).gt(0).sum())
        h, p = own_language_share(attention, every_head, words)
        hits, pairs = hits + h, pairs + p
    lid_attention = torch.stack(batch_shares) if batch_shares else torch.zeros(0, *counts.shape)
    return HeadStatistics(settings, counts, lid_attention, n_sentences, with_words, hits, pairs)
