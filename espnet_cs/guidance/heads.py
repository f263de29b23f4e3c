"""LID heads: the per-token indicator, the ranking stage 4 writes (``lid_heads.json``) and the registered selections made from it."""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch

from espnet_cs.guidance.rows import WordRows
from espnet_cs.kaldi_dir import write_atomic

Head = tuple[int, int]  # (decoder layer, head)
FIRST_GUIDABLE_LAYER = 1
"""Decoder layer 0's self-attention is computed from the frozen token and position embeddings
alone: no adapter (they follow a sublayer) can change its attention maps, so its heads are neither
ranked nor selected. Decoder soft prompts add keys to it and could; guided soft prompts
(``spt4asr_ag``) still select as the adapters do."""


def guidable_heads(n_layers: int, n_heads: int) -> list[Head]:
    """Every head of the layers from :data:`FIRST_GUIDABLE_LAYER` on."""
    return [(layer, h) for layer in range(FIRST_GUIDABLE_LAYER, n_layers) for h in range(n_heads)]


def lid_head_statistics(
    attention: dict[int, torch.Tensor], words: WordRows, n_utts: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """In how many of each utterance's word tokens each head is an LID head, and its mean
    LID-column attention over them.

    Args:
        attention: ``{layer: (batch, heads, positions, positions)}``.
        words: the word tokens of the batch.
        n_utts: batch size (utterances without word tokens count 0, with attention 0).
    Returns:
        (utterances, layers, heads) int64 LID-token counts and float mean LID-column attention.
    """
    counts, shares = [], []
    for layer in sorted(attention):
        probs = attention[layer]
        batch = words.batch.to(probs.device)
        rows = probs[batch, :, words.rows.to(probs.device)]  # (tokens, heads, positions)
        lid = rows[..., words.zh_column] + rows[..., words.en_column]  # (tokens, heads)
        others = rows.clone()
        others[..., [words.zh_column, words.en_column]] = -1
        is_lid = (lid > others.max(dim=-1).values).long()
        counts.append(is_lid.new_zeros(n_utts, rows.shape[1]).index_add_(0, batch, is_lid))
        tokens = torch.bincount(batch, minlength=n_utts).clamp(min=1)[:, None]
        shares.append(lid.new_zeros(n_utts, rows.shape[1]).index_add_(0, batch, lid) / tokens)
    return torch.stack(counts, dim=1).cpu(), torch.stack(shares, dim=1).cpu()


def selected_lid_attention(attention: dict[int, torch.Tensor], heads: Sequence[Head], words: WordRows) -> torch.Tensor:
    """(tokens, selected heads, 2) attention of each word token on the (zh, en) columns, heads by layer.

    Args:
        attention: ``{layer: (batch, heads, positions, positions)}``.
        heads: the selected heads; the result's heads are ordered by layer, then as given.
    """
    layers = sorted({layer for layer, _ in heads}) or [next(iter(attention))]  # no heads: (tokens, 0, 2)
    return torch.cat(
        [
            words.lid_attention(attention[layer])[:, [h for head_layer, h in heads if head_layer == layer]]
            for layer in layers
        ],
        dim=1,
    )


def own_language_share(attention: dict[int, torch.Tensor], heads: Sequence[Head], words: WordRows) -> tuple[int, int]:
    """(word-token x head pairs whose larger LID-column attention is on their own language, all pairs)."""
    lid = selected_lid_attention(attention, heads, words)
    hits = int((lid.argmax(-1) == words.languages.to(lid.device)[:, None]).sum())
    return hits, lid.shape[0] * lid.shape[1]


def rank_lid_heads(
    counts: torch.Tensor, lid_attention: torch.Tensor, word_tokens: int, min_fraction: float
) -> list[Head]:
    """The LID heads of the layers from :data:`FIRST_GUIDABLE_LAYER` on, ranked by the word tokens
    in which they are LID heads (ties: more LID-column attention first).

    Args:
        counts: (layers, heads) word tokens in which each head is an LID head.
        lid_attention: (layers, heads) mean LID-column attention summed over the sentences.
        word_tokens: word tokens seen.
        min_fraction: an LID head is one in at least this fraction of the word tokens.
    """
    ranked = sorted(
        (
            (int(counts[layer, h]), float(lid_attention[layer, h]), layer, h)
            for layer, h in guidable_heads(*counts.shape)
        ),
        reverse=True,
    )
    return [(layer, h) for c, _, layer, h in ranked if c >= min_fraction * word_tokens and c > 0]


Selection = Callable[[Sequence[Head], float, int, int, int], list[Head]]
"""``(ranked LID heads, fraction, n_layers, n_heads, seed) -> heads to guide``."""

# guidance selection name -> Selection
SELECTIONS: dict[str, Selection] = {}


def register_selection(name: str) -> Callable[[Selection], Selection]:
    """Function decorator: make ``selection: name`` of the guidance options choose heads with it."""

    def add(selection: Selection) -> Selection:
        SELECTIONS[name] = selection
        return selection

    return add


@register_selection("top")
def top_fraction(ranked: Sequence[Head], fraction: float, n_layers: int, n_heads: int, seed: int) -> list[Head]:
    """The ``fraction`` of the ranked LID heads first in rank (at least one)."""
    return list(ranked[: max(1, round(fraction * len(ranked)))]) if ranked else []


@register_selection("all")
def every_lid_head(ranked: Sequence[Head], fraction: float, n_layers: int, n_heads: int, seed: int) -> list[Head]:
    """Every LID head."""
    return list(ranked)


@register_selection("random")
def random_fraction(ranked: Sequence[Head], fraction: float, n_layers: int, n_heads: int, seed: int) -> list[Head]:
    """A random ``fraction`` of all :func:`guidable_heads`, LID heads or not (the ablation)."""
    everyone = guidable_heads(n_layers, n_heads)
    return sorted(random.Random(seed).sample(everyone, max(1, round(fraction * len(everyone)))))


def select(
    ranked: Sequence[Head], mode: str, fraction: float, n_layers: int, n_heads: int, seed: int = 0
) -> list[Head]:
    """Heads to guide: the registered selection ``mode`` (:data:`SELECTIONS`) of the ranked LID heads."""
    if mode not in SELECTIONS:
        raise ValueError(f"unknown head selection {mode!r}: choose from {list(SELECTIONS)}")
    return SELECTIONS[mode](ranked, fraction, n_layers, n_heads, seed)


@dataclass
class LidHeads:
    """The LID heads of a backbone over some sentences (stage 4's ``lid_heads.json``).

    Attributes:
        backbone, backbone_sha256: the backbone they were found on (spec and identity).
        n_layers, n_heads: its decoder's shape.
        ranked: the LID heads, ranked (:func:`rank_lid_heads`).
        counts: (layers, heads) word tokens in which each head is an LID head.
        mean_lid_attention: (layers, heads) LID-column attention per sentence.
        n_sentences: sentences seen; sentences_with_words: those with Mandarin or English word tokens.
        word_tokens: the word tokens of those sentences.
        min_fraction: the LID-head threshold used (a share of the word tokens).
        own_language_share: share of (word token, head) pairs over all heads whose larger
            LID-column attention is on the token's own language (:func:`own_language_share`).
    """

    backbone: str
    backbone_sha256: str
    n_layers: int
    n_heads: int
    ranked: list[Head]
    counts: list[list[int]]
    mean_lid_attention: list[list[float]]
    n_sentences: int
    sentences_with_words: int
    word_tokens: int
    min_fraction: float
    own_language_share: float

    def select(self, mode: str, fraction: float, seed: int = 0) -> list[Head]:
        """Heads to guide (:func:`select`); never empty."""
        heads = select(self.ranked, mode, fraction, self.n_layers, self.n_heads, seed)
        if not heads:
            raise ValueError(f"no LID heads to select from (min_fraction {self.min_fraction}): lower it in stage 4")
        return heads

    def save(self, path: Path) -> None:
        write_atomic(path, json.dumps(asdict(self), indent=1) + "\n")

    @classmethod
    def load(cls, path: str | Path, backbone_sha256: str, n_layers: int, n_heads: int) -> LidHeads:
        """Read and check the LID heads of the backbone they will guide.

        Raises:
            FileNotFoundError: no such file (run stage 4).
            ValueError: not such a file, or found on another backbone or decoder shape.
        """
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"LID heads {path} do not exist: run stage 4 (LID-head selection) first")
        heads = cls._read(path)
        if heads.backbone_sha256 != backbone_sha256:
            raise ValueError(
                f"{path}: LID heads were found on the backbone with sha256 "
                f"{heads.backbone_sha256}, not on this one ({backbone_sha256})"
            )
        bad = [h for h in heads.ranked if not (0 <= h[0] < n_layers and 0 <= h[1] < n_heads)]
        if bad or (heads.n_layers, heads.n_heads) != (n_layers, n_heads):
            outside = f" (outside it: {bad})" if bad else ""
            raise ValueError(
                f"{path}: LID heads found on a decoder of {heads.n_layers} layers x {heads.n_heads} heads{outside} "
                f"do not fit a decoder of {n_layers} layers x {n_heads} heads: re-run stage 4 on this backbone"
            )
        return heads

    @classmethod
    def _read(cls, path: Path) -> LidHeads:
        """The heads in ``path``, checked to be JSON of this class's fields and shapes."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise _not_a_heads_file(path, f"not JSON ({e})") from e
        names = [f.name for f in fields(cls)]
        if not isinstance(data, dict):
            raise _not_a_heads_file(path, f"JSON {type(data).__name__}, not an object with the keys {names}")
        missing, unknown = [n for n in names if n not in data], sorted(set(data) - set(names))
        if missing or unknown:
            raise _not_a_heads_file(path, f"keys missing {missing}, unknown keys {unknown}")
        wrong = [name for name, valid in _field_checks(data).items() if not valid]
        if wrong:
            raise _not_a_heads_file(path, f"wrong type or shape of {wrong}")
        return cls(**{**data, "ranked": [tuple(h) for h in data["ranked"]]})


def _not_a_heads_file(path: Path, reason: str) -> ValueError:
    return ValueError(
        f"{path} is not an LID-head file written by stage 4 (espnet_cs.bin.select_heads): {reason}; "
        "re-run stage 4 to write it again"
    )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: object) -> bool:
    return _is_int(value) or isinstance(value, float)


def _is_matrix(value: object, rows: object, columns: object, element: type) -> bool:
    """Whether ``value`` is a ``rows`` x ``columns`` list of lists of ``element`` values."""
    check = _is_int if element is int else _is_number
    return (
        isinstance(value, list)
        and len(value) == rows
        and all(isinstance(row, list) and len(row) == columns and all(map(check, row)) for row in value)
    )


def _field_checks(data: dict) -> dict[str, bool]:
    """Whether each field of a parsed ``lid_heads.json`` has its type (and the tables the file's decoder shape)."""
    layers, heads = data["n_layers"], data["n_heads"]
    return {
        "backbone": isinstance(data["backbone"], str),
        "backbone_sha256": isinstance(data["backbone_sha256"], str),
        "n_layers": _is_int(layers),
        "n_heads": _is_int(heads),
        "ranked": isinstance(data["ranked"], list)
        and all(isinstance(h, list) and len(h) == 2 and all(map(_is_int, h)) for h in data["ranked"]),
        "counts": _is_matrix(data["counts"], layers, heads, int),
        "mean_lid_attention": _is_matrix(data["mean_lid_attention"], layers, heads, float),
        "n_sentences": _is_int(data["n_sentences"]),
        "sentences_with_words": _is_int(data["sentences_with_words"]),
        "word_tokens": _is_int(data["word_tokens"]),
        "min_fraction": _is_number(data["min_fraction"]),
        "own_language_share": _is_number(data["own_language_share"]),
    }
