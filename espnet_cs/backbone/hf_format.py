"""Hugging Face transformers Whisper checkpoints: read into, and written from, openai-whisper's names.

A directory saved by ``WhisperForConditionalGeneration.save_pretrained`` holds ``config.json``
and the weights: ``model.safetensors``, ``model.safetensors.index.json`` with its shards, or
``pytorch_model.bin``. transformers parses the config (:class:`transformers.WhisperConfig`) and
safetensors reads the tensors; the renaming onto openai-whisper's modules is written here because
no maintained library does it (transformers ships only the opposite conversion, as a script of its
repository, not in its wheel). The mapping is one-to-one; ``proj_out.weight`` is the token
embedding again (Whisper ties them) and is only checked to be equal. :func:`to_transformers` is the
inverse, for exporting (:mod:`espnet_cs.backbone.export`).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from pathlib import Path

import torch
from whisper.model import AudioEncoder, ModelDimensions, TextDecoder

CONFIG = "config.json"
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")
_TIED = "proj_out.weight"

# transformers name (after model.encoder. / model.decoder.) -> openai-whisper name (after encoder. / decoder.)
_LAYER = {
    "self_attn.q_proj": "attn.query",
    "self_attn.k_proj": "attn.key",
    "self_attn.v_proj": "attn.value",
    "self_attn.out_proj": "attn.out",
    "self_attn_layer_norm": "attn_ln",
    "encoder_attn.q_proj": "cross_attn.query",
    "encoder_attn.k_proj": "cross_attn.key",
    "encoder_attn.v_proj": "cross_attn.value",
    "encoder_attn.out_proj": "cross_attn.out",
    "encoder_attn_layer_norm": "cross_attn_ln",
    "fc1": "mlp.0",
    "fc2": "mlp.2",
    "final_layer_norm": "mlp_ln",
}
_ENCODER = {"conv1": "conv1", "conv2": "conv2", "embed_positions": "positional_embedding", "layer_norm": "ln_post"}
_DECODER = {"embed_tokens": "token_embedding", "embed_positions": "positional_embedding", "layer_norm": "ln"}
# openai-whisper's ModelDimensions field -> transformers' WhisperConfig key (d_model serves both stacks)
_DIMS_IN_CONFIG = {
    "n_mels": "num_mel_bins",
    "n_audio_ctx": "max_source_positions",
    "n_audio_state": "d_model",
    "n_audio_head": "encoder_attention_heads",
    "n_audio_layer": "encoder_layers",
    "n_vocab": "vocab_size",
    "n_text_ctx": "max_target_positions",
    "n_text_state": "d_model",
    "n_text_head": "decoder_attention_heads",
    "n_text_layer": "decoder_layers",
}
_NAME = re.compile(r"model\.(encoder|decoder)\.(?:layers\.(\d+)\.)?(.+)\.(weight|bias)")


class HuggingFaceFormatError(ValueError):
    """A directory that is not a usable transformers Whisper checkpoint; the message names the file."""


def is_hf_whisper_dir(directory: Path) -> bool:
    """Whether ``directory`` looks like a transformers checkpoint (its ``config.json`` has a ``model_type``)."""
    config = directory / CONFIG
    try:
        return "model_type" in json.loads(config.read_text())
    except (OSError, ValueError):
        return False


def weight_files(directory: Path) -> list[Path]:
    """The files holding the weights of ``directory``: the first of :data:`WEIGHT_FILES` there (an
    index first, then its shards)."""
    for name in WEIGHT_FILES:
        path = directory / name
        if path.is_file() and name.endswith(".index.json"):
            try:
                shards = sorted(set(json.loads(path.read_text())["weight_map"].values()))
            except (ValueError, KeyError, TypeError, AttributeError) as e:
                raise HuggingFaceFormatError(f"{path}: not a safetensors index ({e!r})") from e
            return [path, *(directory / shard for shard in shards)]
        if path.is_file():
            return [path]
    raise HuggingFaceFormatError(
        f"{directory}: a transformers checkpoint with {CONFIG} but none of {list(WEIGHT_FILES)}: "
        "save it with save_pretrained, or copy the weights file"
    )


def whisper_checkpoint(directory: Path) -> dict:
    """``{"dims", "model_state_dict"}`` (float32) of the transformers Whisper checkpoint in ``directory``.

    Raises:
        HuggingFaceFormatError: not a Whisper config, no weights, or tensors missing, extra or of
            the wrong shape (named).
    """
    from transformers import WhisperConfig  # imported here: only this format needs transformers

    try:
        config = WhisperConfig.from_pretrained(directory)
    except (OSError, ValueError) as e:
        raise HuggingFaceFormatError(f"{directory / CONFIG}: not a Whisper config ({e})") from e
    if config.model_type != "whisper":
        raise HuggingFaceFormatError(f"{directory / CONFIG}: model_type {config.model_type!r}, not 'whisper'")
    dims = ModelDimensions(**{field: getattr(config, key) for field, key in _DIMS_IN_CONFIG.items()})
    tensors: dict[str, torch.Tensor] = {}
    for path in weight_files(directory):
        if not path.name.endswith(".index.json"):
            tensors.update(_read_tensors(path))
    state = _renamed(tensors, directory)
    missing = sorted(_expected_names(dims) - state.keys())
    if missing:
        raise HuggingFaceFormatError(
            f"{directory}: {len(missing)} tensors of a Whisper of this config are missing "
            f"(openai-whisper names), e.g. {missing[:5]}"
        )
    return {"dims": asdict(dims), "model_state_dict": state}


def _expected_names(dims: ModelDimensions) -> set[str]:
    """The state-dict names of a Whisper of ``dims`` (built weightless on the meta device)."""
    with torch.device("meta"):
        encoder = AudioEncoder(dims.n_mels, dims.n_audio_ctx, dims.n_audio_state, dims.n_audio_head, dims.n_audio_layer)
        decoder = TextDecoder(dims.n_vocab, dims.n_text_ctx, dims.n_text_state, dims.n_text_head, dims.n_text_layer)
    return {f"encoder.{n}" for n in encoder.state_dict()} | {f"decoder.{n}" for n in decoder.state_dict()}


def _read_tensors(path: Path) -> dict[str, torch.Tensor]:
    """All tensors of a weights file (safetensors or a torch pickle)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        if path.suffix == ".safetensors":
            return load_file(path)
        return torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, KeyError, ValueError, SafetensorError, RuntimeError) as e:
        raise HuggingFaceFormatError(f"{path}: cannot be read as the weights of a checkpoint ({e})") from e


def _renamed(tensors: dict[str, torch.Tensor], directory: Path) -> dict[str, torch.Tensor]:
    """openai-whisper's state dict from transformers' one, every tensor accounted for."""
    state, unknown = {}, []
    for name, tensor in tensors.items():
        name = name.removeprefix("model.") if name.startswith("model.model.") else name
        match = _NAME.fullmatch(name)
        if name == _TIED:
            continue
        if match is None:
            unknown.append(name)
            continue
        stack, layer, module, kind = match.groups()
        table = _ENCODER if stack == "encoder" else _DECODER
        if layer is not None and module in _LAYER:
            target = f"{stack}.blocks.{layer}.{_LAYER[module]}.{kind}"
        elif layer is None and module in table:
            target = f"{stack}.{table[module]}" + ("" if module == "embed_positions" else f".{kind}")
        else:
            unknown.append(name)
            continue
        state[target] = tensor.float()
    if unknown:
        raise HuggingFaceFormatError(f"{directory}: tensors that are not Whisper's: {sorted(unknown)[:5]}")
    tied = tensors.get(_TIED)
    if tied is not None and not torch.equal(tied.float(), state.get("decoder.token_embedding.weight", tied.float())):
        raise HuggingFaceFormatError(f"{directory}: {_TIED} differs from the token embedding: not a plain Whisper")
    return state


def transformers_name(name: str) -> str:
    """The transformers name of an openai-whisper state-dict name (the inverse of the reading)."""
    stack, rest = name.split(".", 1)
    block = re.fullmatch(r"blocks\.(\d+)\.(.+)\.(weight|bias)", rest)
    if block:
        layer, module, kind = block.groups()
        inverse = {v: k for k, v in _LAYER.items()}
        return f"model.{stack}.layers.{layer}.{inverse[module]}.{kind}"
    inverse = {v: k for k, v in (_ENCODER if stack == "encoder" else _DECODER).items()}
    module, _, kind = rest.rpartition(".")
    if rest == "positional_embedding":
        return f"model.{stack}.embed_positions.weight"
    return f"model.{stack}.{inverse[module]}.{kind}"


def transformers_config(dims: ModelDimensions):
    """The transformers ``WhisperConfig`` of a Whisper of ``dims`` (feed-forward 4 x width, as Whisper)."""
    from transformers import WhisperConfig

    keys = {key: getattr(dims, field) for field, key in _DIMS_IN_CONFIG.items()}
    return WhisperConfig(**keys, encoder_ffn_dim=4 * dims.n_audio_state, decoder_ffn_dim=4 * dims.n_text_state)


def to_transformers(dims: ModelDimensions, state: dict[str, torch.Tensor]):
    """A transformers ``WhisperForConditionalGeneration`` holding the openai-whisper weights ``state``."""
    from transformers import WhisperForConditionalGeneration

    model = WhisperForConditionalGeneration(transformers_config(dims))
    renamed = {transformers_name(name): tensor for name, tensor in state.items()}
    missing, unexpected = model.load_state_dict(renamed, strict=False)
    missing = [name for name in missing if name != _TIED]
    if missing or unexpected:
        raise ValueError(
            f"weights do not fit transformers' Whisper: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    model.tie_weights()
    return model.eval()
