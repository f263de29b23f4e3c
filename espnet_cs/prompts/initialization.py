"""Where soft prompts start: vectors the frozen backbone already knows how to read.

Random prompts would make the model at step 0 far worse than Whisper; these start it close to
Whisper itself (``docs/methods.md``, "How soft prompts meet Whisper"). Decoder prompts start as a
previous-text context: ``<|startofprev|>`` and random frequent tokens (:func:`frequent_tokens`), or
the end of a given previous text (:func:`text_tokens`, ``init_text``).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import whisper
from whisper.audio import N_SAMPLES
from whisper.model import AudioEncoder, TextDecoder
from whisper.tokenizer import Tokenizer

from espnet_cs.config_yaml import ConfigError

# Byte-level BPE ranks merges by frequency: the first ids are the most frequent tokens.
FREQUENT_TOKENS = 5000


@torch.no_grad()
def silence_states(encoder: AudioEncoder, n_mels: int, n: int) -> torch.Tensor:
    """(n_layers, n, d_model) what each block receives at the last ``n`` frames of a silent 30-s window.

    Encoder self-attention knows order only through the positional embeddings, so prompts that
    start as these states are read, at first, as the trailing silence Whisper saw in training.
    """
    if n > encoder.positional_embedding.size(0):
        raise ValueError(
            f"encoder prompts: length {n} exceeds Whisper's {encoder.positional_embedding.size(0)} audio positions"
        )
    weight = encoder.conv1.weight
    mel = whisper.log_mel_spectrogram(torch.zeros(N_SAMPLES, device=weight.device), n_mels).to(weight.dtype)
    x = F.gelu(encoder.conv2(F.gelu(encoder.conv1(mel[None])))).permute(0, 2, 1) + encoder.positional_embedding
    states = []
    for block in encoder.blocks:
        states.append(x[0, -n:])
        x = block(x)
    return torch.stack(states)


def frequent_tokens(sot_prev: int, n: int) -> torch.Tensor:
    """(n,) ``<|startofprev|>`` and ``n - 1`` tokens drawn from the most frequent BPE merges
    (vocabulary initialization, Lester et al. 2021), from torch's random generator."""
    return torch.cat([torch.tensor([sot_prev]), torch.randint(0, FREQUENT_TOKENS, (n - 1,))])


def text_tokens(tokenizer: Tokenizer, text: str, n: int) -> torch.Tensor:
    """(n,) ``<|startofprev|>`` and the last ``n - 1`` tokens of the previous text ``text``,
    encoded as Whisper encodes a prompt (``" " + text``; Whisper also keeps a long prompt's end).

    Raises:
        ConfigError: ``text`` has fewer than ``n - 1`` tokens.
    """
    tokens = tokenizer.encode(" " + text.strip())
    if len(tokens) < n - 1:
        raise ConfigError(f"decoder soft_prompts: init_text has {len(tokens)} tokens, length {n} needs {n - 1}")
    return torch.tensor([tokenizer.sot_prev, *tokens[len(tokens) - (n - 1) :]])


@torch.no_grad()
def previous_text_states(decoder: TextDecoder, tokens: torch.Tensor) -> torch.Tensor:
    """(n_layers, n, d_model) the previous-text context ``tokens`` (n,) as Whisper reads it, block by block.

    Set 0 is their token embeddings (the decoder adds positions when it inserts them); set ``i``
    is what block ``i`` receives for them when the audio is uninformative (all-zero encoder states).
    """
    n = tokens.numel()
    embeddings = decoder.token_embedding.weight[tokens.to(decoder.token_embedding.weight.device)]
    x = (embeddings + decoder.positional_embedding[:n])[None]
    silence = x.new_zeros(1, 1, x.size(-1))
    states = [embeddings]
    for block in decoder.blocks[:-1]:
        x = block(x, silence, mask=decoder.mask)
        states.append(x[0])
    return torch.stack(states)
