"""Test-only: write an openai-whisper model as a CTranslate2 model directory.

Fills ctranslate2's own ``WhisperSpec`` and saves it with ``ModelSpec.save``, so the files are
what ctranslate2 itself writes (variable order, aliases, quantization) and its runtime loads them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import whisper
from ctranslate2.specs import whisper_spec
from whisper.model import Whisper


def write_ct2_whisper(
    model: Whisper, out_dir: Path, quantization: str = "float32", alignment_heads: list[list[int]] | None = None
) -> Path:
    """Save ``model`` as ``out_dir``/{model.bin, config.json, vocabulary.json}; returns ``out_dir``."""
    d = model.dims
    # copies: ctranslate2's int8 quantization scales arrays in place
    sd = {k: v.detach().float().numpy().copy() for k, v in model.state_dict().items()}
    spec = whisper_spec.WhisperSpec(d.n_audio_layer, d.n_audio_head, d.n_text_layer, d.n_text_head)

    def linear(s, *names: str) -> None:  # fused along dim 0; the bias-less key gets zeros
        s.weight = np.concatenate([sd[f"{n}.weight"] for n in names])
        zeros = np.zeros(len(sd[f"{names[0]}.weight"]), np.float32)
        s.bias = np.concatenate([sd.get(f"{n}.bias", zeros) for n in names])

    def norm(s, name: str) -> None:
        s.gamma, s.beta = sd[f"{name}.weight"], sd[f"{name}.bias"]

    def block(s, p: str, cross: bool) -> None:
        linear(s.self_attention.linear[0], f"{p}.attn.query", f"{p}.attn.key", f"{p}.attn.value")
        linear(s.self_attention.linear[1], f"{p}.attn.out")
        norm(s.self_attention.layer_norm, f"{p}.attn_ln")
        if cross:
            linear(s.attention.linear[0], f"{p}.cross_attn.query")
            linear(s.attention.linear[1], f"{p}.cross_attn.key", f"{p}.cross_attn.value")
            linear(s.attention.linear[2], f"{p}.cross_attn.out")
            norm(s.attention.layer_norm, f"{p}.cross_attn_ln")
        linear(s.ffn.linear_0, f"{p}.mlp.0")
        linear(s.ffn.linear_1, f"{p}.mlp.2")
        norm(s.ffn.layer_norm, f"{p}.mlp_ln")

    enc, dec = spec.encoder, spec.decoder
    linear(enc.conv1, "encoder.conv1")
    linear(enc.conv2, "encoder.conv2")
    enc.position_encodings.encodings = sd["encoder.positional_embedding"]
    norm(enc.layer_norm, "encoder.ln_post")
    for i, layer in enumerate(enc.layer):
        block(layer, f"encoder.blocks.{i}", cross=False)
    dec.embeddings.weight = sd["decoder.token_embedding.weight"]
    dec.position_encodings.encodings = sd["decoder.positional_embedding"]
    norm(dec.layer_norm, "decoder.ln")
    dec.projection.weight = sd["decoder.token_embedding.weight"]  # tied; saved as an alias
    for i, layer in enumerate(dec.layer):
        block(layer, f"decoder.blocks.{i}", cross=True)

    tokenizer = whisper.tokenizer.get_tokenizer(d.n_vocab >= 51865, num_languages=d.n_vocab - 51765 - 1)
    vocabulary = [f"t{i}" for i in range(d.n_vocab)]  # the runtime looks up special tokens only
    for token, index in tokenizer.encoding._special_tokens.items():
        vocabulary[index] = token
    spec.register_vocabulary(vocabulary)
    spec.config.lang_ids = list(tokenizer.all_language_tokens)
    spec.config.suppress_ids, spec.config.suppress_ids_begin = [], []
    spec.config.alignment_heads = alignment_heads
    spec.validate()
    spec.optimize(quantization=quantization)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    spec.save(str(out_dir))
    return out_dir
