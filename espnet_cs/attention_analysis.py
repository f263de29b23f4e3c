"""Teacher-forced passes of a model over a Kaldi data dir: decoder self-attention and LID-head statistics.

Above the model (stage 4's statistics, stage 10's attention maps), while :mod:`espnet_cs.guidance`
holds what the model itself uses.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
import torch
from tqdm import tqdm

from espnet_cs.guidance.capture import capture_attention
from espnet_cs.guidance.heads import lid_head_statistics, own_language_share
from espnet_cs.guidance.rows import WordRows
from espnet_cs.guidance.statistics import HeadStatistics
from espnet_cs.kaldi_dir import read_kaldi_map
from espnet_cs.model import CSWhisperModel
from espnet_cs.precision import widened


def read_batches(
    data_dir: Path, batch_size: int, max_utts: int | None = None, utts: list[str] | None = None
) -> Iterator[list[tuple[str, np.ndarray, str]]]:
    """Batches of (utterance id, 16-kHz audio, transcript), longest first; all or ``utts``."""
    wavs, texts = read_kaldi_map(data_dir / "wav.scp"), read_kaldi_map(data_dir / "text")
    missing = sorted(set(utts or wavs) - set(texts) | set(utts or []) - set(wavs))
    if missing:
        raise ValueError(f"{data_dir}: utterances without audio or text: {missing[:5]}")
    utts = sorted(utts or wavs)[:max_utts]
    lengths = {u: sf.info(wavs[u]).frames for u in utts}
    utts.sort(key=lambda u: -lengths[u])
    for i in range(0, len(utts), batch_size):
        yield [(u, sf.read(wavs[u], dtype="float32")[0], texts[u]) for u in utts[i : i + batch_size]]


@torch.no_grad()
def attention_passes(
    model: CSWhisperModel,
    data_dir: Path,
    batch_size: int = 8,
    max_utts: int | None = None,
    utts: list[str] | None = None,
) -> Iterator[tuple[dict[int, torch.Tensor], WordRows, int]]:
    """For each batch: ``{layer: (batch, heads, positions, positions)}``, its word tokens, its size.

    Each utterance is padded by the encoder's padding policy, as in training and decoding, so the
    attention of an utterance does not depend on its batch mates.
    """
    model.eval()
    device = next(model.parameters()).device
    batches = list(read_batches(data_dir, batch_size, max_utts, utts))
    for batch in tqdm(batches, desc=f"attention {data_dir.name}", unit="batch"):
        speech_lengths = torch.tensor([len(a) for _, a, _ in batch])
        speech = torch.zeros(len(batch), int(speech_lengths.max()))
        for i, (_, audio, _) in enumerate(batch):
            speech[i, : len(audio)] = torch.from_numpy(audio)
        ids = [model.tokenizer.encode_target(text) for _, _, text in batch]
        text_lengths = torch.tensor([len(t) for t in ids])
        text = torch.full((len(batch), int(text_lengths.max())), -1)
        for i, t in enumerate(ids):
            text[i, : len(t)] = torch.tensor(t)
        speech, speech_lengths, text, text_lengths = (
            t.to(device) for t in (speech, speech_lengths, text, text_lengths)
        )
        memory, memory_lengths, _ = model.encoder(speech, speech_lengths)
        inputs, _ = model.teacher_forcing(text, text_lengths)
        with capture_attention(model.decoder) as captured:
            model.decoder(memory, memory_lengths, inputs, None)
        words = WordRows.of_targets(model.tokenizer, text, text_lengths, model.decoder.soft_prompts.length)
        positions = model.decoder.soft_prompts.length + inputs.size(1)
        yield captured.in_batch_order(memory_lengths, positions), words, len(batch)


def collect_head_statistics(
    model: CSWhisperModel, data_dir: Path, batch_size: int, settings: dict[str, Any], max_utts: int | None = None
) -> HeadStatistics:
    """LID-head statistics of ``model`` over ``data_dir``, batch by batch (stage 4 or one of its split jobs)."""
    dims = model.encoder.backbone_identity.dims
    every_head = [(layer, h) for layer in range(dims["n_text_layer"]) for h in range(dims["n_text_head"])]
    counts = torch.zeros(dims["n_text_layer"], dims["n_text_head"], dtype=torch.long)
    batch_shares, n_sentences, with_words, word_tokens, hits, pairs = [], 0, 0, 0, 0, 0
    for attention, words, n in attention_passes(model, data_dir, batch_size, max_utts):
        indicator, share = lid_head_statistics(attention, words, n)
        counts += indicator.sum(0)
        batch_shares.append(widened(share.sum(0)))
        n_sentences += n
        with_words += int(torch.bincount(words.batch, minlength=n).gt(0).sum())
        word_tokens += len(words.rows)
        h, p = own_language_share(attention, every_head, words)
        hits, pairs = hits + h, pairs + p
    lid_attention = torch.stack(batch_shares) if batch_shares else torch.zeros(0, *counts.shape)
    return HeadStatistics(settings, counts, lid_attention, n_sentences, with_words, word_tokens, hits, pairs)
