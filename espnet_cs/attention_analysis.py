"""Teacher-forced passes over a Kaldi data dir that collect decoder self-attention statistics."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator, Optional

import numpy as np
import soundfile as sf
import torch
from tqdm import tqdm

from espnet_cs.guidance import WordRows
from espnet_cs.kaldi_dir import read_kaldi_map
from espnet_cs.decoder import in_batch_order
from espnet_cs.model import CSWhisperModel


def read_batches(data_dir: Path, batch_size: int, max_utts: Optional[int] = None,
                 utts: Optional[list[str]] = None) -> Iterator[list[tuple[str, np.ndarray, str]]]:
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
    model: CSWhisperModel, data_dir: Path, batch_size: int = 8, max_utts: Optional[int] = None,
    utts: Optional[list[str]] = None,
) -> Iterator[tuple[dict[int, torch.Tensor], WordRows, int]]:
    """For each batch: ``{layer: (batch, heads, positions, positions)}``, its word tokens, its size."""
    model.eval()
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
        memory, memory_lengths, _ = model.encoder(speech, speech_lengths)
        inputs, _ = model.teacher_forcing(text, text_lengths)
        with model.decoder.capture_attention() as captured:
            model.decoder(memory, memory_lengths, inputs, None)
        yield in_batch_order(captured, memory_lengths), model.word_rows(text, text_lengths), len(batch)
