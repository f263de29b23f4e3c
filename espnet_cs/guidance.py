"""LID attention heads of Whisper's decoder: statistics, selection, and the attention-guidance loss.

Positions. With the two-LID prompt the teacher-forced decoder input is
``[soft prompts] <|sot|> <|zh|> <|en|> <|transcribe|> <|notimestamps|> y1 y2 ...``. Target token
``y_i`` is *output* at the position just before it; that position's row of a self-attention map
is "the attention of ``y_i``". Its ``<|zh|>`` and ``<|en|>`` columns are the LID columns. Word
tokens are the targets tagged ``zh`` or ``en`` (:mod:`espnet_cs.tokenizer`); the others
(spaces, punctuation, end of text) are neither counted nor guided.

LID head (indicator). In one sentence, head ``(layer, head)`` is an LID head when, averaged over
the sentence's word tokens, the attention on the two LID columns together exceeds the attention
on every other single column: the LID columns dominate. Heads are ranked by the number of
sentences in which they are LID heads; those that are LID heads in at least ``min_fraction`` of
the sentences are *the LID heads*; ties in the ranking go to the head with more LID-column
attention summed over the sentences. A selection keeps a top share of them (or all, or a random
share of all heads as an ablation).

Guidance loss. For every selected head and word token, the two LID-column attentions are
regressed (squared error) toward the code-switching map: ``c`` on the column of the token's own
language, 0 on the other. Per word token, the squared errors are summed over the two columns and
averaged over the selected heads; the loss sums that over the word tokens and divides by the
number of utterances, the normalization of ESPnet's cross-entropy, so that lambda weighs
comparable quantities.
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import torch

from espnet_cs.tokenizer import Language


@dataclass(frozen=True)
class WordRows:
    """Where the word tokens of a teacher-forced batch are.

    ``batch``, ``rows`` and ``languages`` are 1-D, one entry per word token: its utterance, the
    position that outputs it, and its language (``Language.ZH``/``EN``). ``zh_column`` and
    ``en_column`` are the positions of ``<|zh|>`` and ``<|en|>``.
    """

    batch: torch.Tensor
    rows: torch.Tensor
    languages: torch.Tensor
    zh_column: int
    en_column: int

    @classmethod
    def from_tags(cls, tags: Sequence[Sequence[Language]], first_target_row: int, zh_column: int, en_column: int) -> "WordRows":
        """From per-utterance target tags; target ``i`` is output at row ``first_target_row + i``."""
        entries = [(b, first_target_row + i, int(tag)) for b, utt in enumerate(tags)
                   for i, tag in enumerate(utt) if tag in (Language.ZH, Language.EN)]
        batch, rows, languages = (torch.tensor(column, dtype=torch.long) for column in zip(*entries)) if entries else \
            (torch.zeros(0, dtype=torch.long),) * 3
        return cls(batch, rows, languages, zh_column, en_column)

    def lid_attention(self, attention: torch.Tensor) -> torch.Tensor:
        """(tokens, heads, 2) attention on the (zh, en) columns of each word token's row.

        Args:
            attention: (batch, heads, positions, positions) one layer's probabilities.
        """
        rows = attention[self.batch.to(attention.device), :, self.rows.to(attention.device)]
        return rows[..., [self.zh_column, self.en_column]]


def lid_head_statistics(attention: dict[int, torch.Tensor], words: WordRows, n_utts: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Whether each head is an LID head in each utterance, and its mean LID-column attention there.

    Args:
        attention: ``{layer: (batch, heads, positions, positions)}``.
        words: the word tokens of the batch.
        n_utts: batch size (utterances without word tokens are never LID, with attention 0).
    Returns:
        (utterances, layers, heads) bool indicator and float LID-column attention.
    """
    indicators, shares = [], []
    for layer in sorted(attention):
        probs = attention[layer]
        rows = probs[words.batch, :, words.rows]  # (tokens, heads, positions)
        totals = torch.zeros(n_utts, *rows.shape[1:], dtype=rows.dtype).index_add_(0, words.batch, rows)
        counts = torch.bincount(words.batch, minlength=n_utts).clamp(min=1)
        mean = totals / counts[:, None, None]  # (utts, heads, positions)
        lid = mean[..., words.zh_column] + mean[..., words.en_column]
        others = mean.clone()
        others[..., [words.zh_column, words.en_column]] = -1
        has_words = torch.bincount(words.batch, minlength=n_utts) > 0
        indicators.append((lid > others.max(dim=-1).values) & has_words[:, None])
        shares.append(lid)
    return torch.stack(indicators, dim=1), torch.stack(shares, dim=1)


def guidance_loss(attention: dict[int, torch.Tensor], heads: Sequence[tuple[int, int]], words: WordRows,
                  target: float, n_utts: int) -> torch.Tensor:
    """Squared error of the selected heads' LID-column attention against the CS map (see above)."""
    if len(words.rows) == 0 or not heads:
        return next(iter(attention.values())).new_zeros(())
    goal = torch.nn.functional.one_hot(words.languages, 2).float() * target  # (tokens, 2): zh, en
    per_token = []
    for layer in sorted({layer for layer, _ in heads}):
        selected = [h for l, h in heads if l == layer]
        lid = words.lid_attention(attention[layer])[:, selected]  # (tokens, selected, 2)
        per_token.append(((lid - goal.to(lid)[:, None]) ** 2).sum(-1))
    return torch.cat(per_token, dim=1).mean(dim=1).sum() / n_utts


def own_language_share(attention: dict[int, torch.Tensor], heads: Sequence[tuple[int, int]], words: WordRows) -> tuple[int, int]:
    """(word-token x head pairs whose larger LID-column attention is on their own language, all pairs)."""
    hits = total = 0
    for layer in sorted({layer for layer, _ in heads}):
        selected = [h for l, h in heads if l == layer]
        lid = words.lid_attention(attention[layer])[:, selected]
        hits += int((lid.argmax(-1) == words.languages.to(lid.device)[:, None]).sum())
        total += lid.shape[0] * lid.shape[1]
    return hits, total


@dataclass
class HeadSelection:
    """LID heads of a backbone and the ones selected for guidance (a JSON file)."""

    backbone_sha256: str
    n_layers: int
    n_heads: int
    heads: list[tuple[int, int]]
    mode: str
    share: float
    counts: list[list[int]] = field(default_factory=list)
    lid_attention: list[list[float]] = field(default_factory=list)
    n_sentences: int = 0
    lid_heads: list[tuple[int, int]] = field(default_factory=list)

    def save(self, path: Path) -> None:
        from espnet_cs.kaldi_dir import write_atomic
        write_atomic(path, json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path, backbone_sha256: str, n_layers: int, n_heads: int) -> "HeadSelection":
        """Read and check a selection against the backbone it will guide."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"head selection {path} does not exist: run stage 4 (LID-head selection) first")
        data = json.loads(path.read_text())
        selection = cls(**{**data, "heads": [tuple(h) for h in data["heads"]],
                           "lid_heads": [tuple(h) for h in data.get("lid_heads", [])]})
        if selection.backbone_sha256 != backbone_sha256:
            raise ValueError(f"{path}: heads were selected on the backbone with sha256 "
                             f"{selection.backbone_sha256}, not on this one ({backbone_sha256})")
        bad = [h for h in selection.heads if not (0 <= h[0] < n_layers and 0 <= h[1] < n_heads)]
        if bad or (selection.n_layers, selection.n_heads) != (n_layers, n_heads):
            raise ValueError(f"{path}: heads {bad or selection.heads} do not fit a decoder of "
                             f"{n_layers} layers x {n_heads} heads")
        if not selection.heads:
            raise ValueError(f"{path}: no heads selected")
        return selection


def select_heads(counts: torch.Tensor, lid_attention: torch.Tensor, n_sentences: int, mode: str, share: float,
                 min_fraction: float, seed: int = 0) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """(LID heads ranked by count, the selected ones).

    Args:
        counts: (layers, heads) sentences in which each head is an LID head.
        lid_attention: (layers, heads) LID-column attention summed over sentences (tie-break).
        mode: ``top`` (the ``share`` of LID heads with the highest counts), ``all`` (every LID
            head) or ``random`` (a random ``share`` of all heads, the ablation).
    """
    layers, heads = counts.shape
    ranked = sorted(((int(counts[l, h]), float(lid_attention[l, h]), l, h) for l in range(layers) for h in range(heads)),
                    reverse=True)
    lid_heads = [(l, h) for c, _, l, h in ranked if c >= min_fraction * n_sentences and c > 0]
    if mode == "all":
        return lid_heads, lid_heads
    if mode == "top":
        return lid_heads, lid_heads[: max(1, round(share * len(lid_heads)))] if lid_heads else []
    if mode == "random":
        everyone = [(l, h) for l in range(layers) for h in range(heads)]
        return lid_heads, sorted(random.Random(seed).sample(everyone, max(1, round(share * len(everyone)))))
    raise ValueError(f"unknown selection mode {mode!r}: top, all or random")
