"""Raw LID-head statistics of a data dir (stage 4): collected per split job, saved, merged exactly.

For every decoder layer and head: the number of word tokens in which it is an LID head (an
integer), and its mean LID-column attention summed over the sentences of each batch (definitions in
:mod:`espnet_cs.guidance`); plus the counts behind the own-language share. Merging adds the
integers and sums the per-batch attention with :func:`math.fsum`, the correctly rounded total
whatever the order: the statistics of split jobs merge to exactly those of one job, provided the
splits consist of whole batches (:mod:`espnet_cs.splitting`).
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from espnet_cs.guidance.heads import LidHeads, rank_lid_heads
from espnet_cs.kaldi_dir import write_atomic

SETTINGS_PER_DATA_SPLIT = ("data_dir", "audio_sha256", "text_sha256")  # differ between the splits of one data dir


@dataclass
class HeadStatistics:
    """LID-head statistics of some sentences.

    Attributes:
        settings: what identifies them (data, backbone, padding, batch size).
        counts: (layers, heads) word tokens in which each head is an LID head.
        batch_lid_attention: (batches, layers, heads) LID-column attention summed over each batch's sentences.
        n_sentences: sentences seen.
        with_words: sentences with Mandarin or English word tokens.
        word_tokens: their word tokens.
        hits, pairs: word-token x head pairs whose larger LID-column attention is on their own
            language, and all such pairs (every head).
    """

    settings: dict[str, Any]
    counts: torch.Tensor
    batch_lid_attention: torch.Tensor
    n_sentences: int
    with_words: int
    word_tokens: int
    hits: int
    pairs: int

    def lid_attention(self) -> torch.Tensor:
        """(layers, heads) LID-column attention summed over all sentences (float64, exactly rounded)."""
        per_head = self.batch_lid_attention.double().reshape(len(self.batch_lid_attention), -1).T.tolist()
        return torch.tensor([math.fsum(values) for values in per_head], dtype=torch.float64).reshape(self.counts.shape)

    def save(self, path: Path) -> None:
        buffer = io.BytesIO()
        np.savez(
            buffer,
            settings=json.dumps(self.settings),
            counts=self.counts.numpy(),
            batch_lid_attention=self.batch_lid_attention.numpy(),
            scalars=np.array([self.n_sentences, self.with_words, self.word_tokens, self.hits, self.pairs]),
        )
        write_atomic(path, buffer.getvalue())

    @classmethod
    def load(cls, path: Path) -> HeadStatistics:
        with np.load(path, allow_pickle=False) as data:
            n_sentences, with_words, word_tokens, hits, pairs = (int(x) for x in data["scalars"])
            return cls(
                json.loads(str(data["settings"])),
                torch.from_numpy(data["counts"]),
                torch.from_numpy(data["batch_lid_attention"]),
                n_sentences,
                with_words,
                word_tokens,
                hits,
                pairs,
            )

    @classmethod
    def merge(cls, parts: Sequence[HeadStatistics], names: Sequence[str]) -> HeadStatistics:
        """The statistics of all parts' sentences (``names``: where each part is from, for errors).

        Raises:
            ValueError: the parts were collected with other backbones or settings.
        """
        common = {k: v for k, v in parts[0].settings.items() if k not in SETTINGS_PER_DATA_SPLIT}
        for part, name in zip(parts, names):
            differing = sorted(
                k
                for k in (set(common) | set(part.settings)) - set(SETTINGS_PER_DATA_SPLIT)
                if part.settings.get(k) != common.get(k)
            )
            if differing:
                raise ValueError(f"{name} was collected with other settings than {names[0]}: {differing}")
        return cls(
            {**common, "splits": len(parts)},
            sum(p.counts for p in parts),
            torch.cat([p.batch_lid_attention for p in parts]),
            sum(p.n_sentences for p in parts),
            sum(p.with_words for p in parts),
            sum(p.word_tokens for p in parts),
            sum(p.hits for p in parts),
            sum(p.pairs for p in parts),
        )

    def lid_heads(self, min_fraction: float) -> LidHeads:
        """The ranked LID heads of these statistics: heads that are LID heads in at least ``min_fraction`` of the word tokens."""
        lid_attention = self.lid_attention()
        layers, heads = self.counts.shape
        return LidHeads(
            self.settings["backbone"],
            self.settings["backbone_sha256"],
            layers,
            heads,
            rank_lid_heads(self.counts, lid_attention, self.word_tokens, min_fraction),
            self.counts.tolist(),
            (lid_attention / max(self.n_sentences, 1)).tolist(),
            self.n_sentences,
            self.with_words,
            self.word_tokens,
            min_fraction,
            self.hits / max(self.pairs, 1),
        )
