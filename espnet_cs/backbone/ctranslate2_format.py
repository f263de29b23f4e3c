"""Read a CTranslate2 Whisper ``model.bin`` and convert it to an openai-whisper checkpoint.

Hand-written because ctranslate2's Python package only writes this format
(``ctranslate2.specs.ModelSpec.save``); its runtime classes (``ctranslate2.models.Whisper``,
``Translator``, ...) load a model.bin in C++ but expose none of its variables to Python.

Layout of model.bin (little-endian), as written by ``ModelSpec._serialize`` (ctranslate2 4.x):
uint32 binary version (6); string spec name; uint32 spec revision; uint32 variable count;
per variable: string name, uint8 rank, rank x uint32 dims, uint8 dtype id, uint32 byte count,
raw bytes; uint32 alias count; per alias: string alias, string target.
A string is a uint16 length (counting a trailing NUL) followed by the bytes and the NUL.
"""

from __future__ import annotations

import re
import struct
from dataclasses import asdict

import numpy as np
import torch
from whisper.model import ModelDimensions

BINARY_VERSION = 6
# dtype id -> (name, numpy dtype); bfloat16 is read as uint16 bit patterns and widened below.
_DTYPES = {
    0: ("float32", np.dtype("<f4")),
    1: ("int8", np.dtype("i1")),
    2: ("int16", np.dtype("<i2")),
    3: ("int32", np.dtype("<i4")),
    4: ("float16", np.dtype("<f2")),
    5: ("bfloat16", np.dtype("<u2")),
}
_FLOAT_DTYPES = ("float32", "float16", "bfloat16")


class CTranslate2FormatError(ValueError):
    """A model.bin that cannot be read or is not a float Whisper model; the message names the file."""


class _Reader:
    """Sequential reader over the bytes of a model.bin that names the file in every error."""

    def __init__(self, data: bytes | memoryview, source: str):
        self.data, self.source, self.offset = memoryview(data), source, 0

    def take(self, n: int, what: str) -> memoryview:
        if self.offset + n > len(self.data):
            raise CTranslate2FormatError(
                f"{self.source}: truncated: {what} needs {n} bytes at offset {self.offset}, file has {len(self.data)}"
            )
        self.offset += n
        return self.data[self.offset - n : self.offset]

    def unpack(self, fmt: str, what: str) -> int:
        return struct.unpack("<" + fmt, self.take(struct.calcsize(fmt), what))[0]

    def string(self, what: str) -> str:
        raw = bytes(self.take(self.unpack("H", f"length of {what}"), what))
        if not raw.endswith(b"\0"):
            raise CTranslate2FormatError(
                f"{self.source}: corrupt: {what} ending at offset {self.offset} lacks a trailing NUL"
            )
        return raw[:-1].decode("utf-8", errors="replace")


def read_model_bin(data: bytes | memoryview, source: str) -> tuple[str, dict[str, tuple[str, np.ndarray]]]:
    """Parse model.bin bytes into (spec name, {variable name: (dtype name, array)}), aliases resolved.

    Arrays view ``data`` (no copy) except bfloat16 ones, which are widened to float32.
    """
    r = _Reader(data, source)
    version = r.unpack("I", "binary version")
    if version != BINARY_VERSION:
        raise CTranslate2FormatError(
            f"{source}: not a CTranslate2 model.bin of binary version {BINARY_VERSION} (header: {version})"
        )
    spec_name = r.string("spec name")
    r.unpack("I", "spec revision")
    variables: dict[str, tuple[str, np.ndarray]] = {}
    for index in range(r.unpack("I", "variable count")):
        name = r.string(f"name of variable #{index}")
        rank = r.unpack("B", f"rank of variable '{name}'")
        shape = tuple(r.unpack("I", f"shape of variable '{name}'") for _ in range(rank))
        dtype_id = r.unpack("B", f"dtype of variable '{name}'")
        if dtype_id not in _DTYPES:
            raise CTranslate2FormatError(f"{source}: corrupt: variable '{name}' has unknown dtype {dtype_id}")
        dtype_name, dtype = _DTYPES[dtype_id]
        n_bytes = r.unpack("I", f"byte count of variable '{name}'")
        if n_bytes != int(np.prod(shape)) * dtype.itemsize:
            raise CTranslate2FormatError(
                f"{source}: corrupt: variable '{name}' of shape {list(shape)} and dtype {dtype_name} "
                f"declares {n_bytes} bytes"
            )
        array = np.frombuffer(r.take(n_bytes, f"variable '{name}'"), dtype=dtype).reshape(shape)
        if dtype_name == "bfloat16":
            array = (array.astype(np.uint32) << 16).view(np.float32)
        variables[name] = (dtype_name, array)
    for index in range(r.unpack("I", "alias count")):
        alias, target = r.string(f"alias #{index}"), r.string(f"target of alias #{index}")
        if target not in variables:
            raise CTranslate2FormatError(f"{source}: corrupt: alias '{alias}' of unknown variable '{target}'")
        variables[alias] = variables[target]
    if r.offset != len(r.data):
        raise CTranslate2FormatError(f"{source}: corrupt: {len(r.data) - r.offset} bytes after the aliases")
    return spec_name, variables


# CTranslate2 scope -> openai-whisper module; leaf names map gamma/beta -> weight/bias.
_MODULES = {
    "encoder/conv1": "encoder.conv1",
    "encoder/conv2": "encoder.conv2",
    "encoder/layer_norm": "encoder.ln_post",
    "decoder/embeddings": "decoder.token_embedding",
    "decoder/layer_norm": "decoder.ln",
}
_BLOCK_MODULES = {
    "self_attention/layer_norm": "attn_ln",
    "self_attention/linear_1": "attn.out",
    "attention/layer_norm": "cross_attn_ln",
    "attention/linear_0": "cross_attn.query",
    "attention/linear_2": "cross_attn.out",
    "ffn/layer_norm": "mlp_ln",
    "ffn/linear_0": "mlp.0",
    "ffn/linear_1": "mlp.2",
}
# Fused projections, split along dim 0. Whisper's key has no bias; CTranslate2 stores zeros
# there (and any key bias would cancel in the softmax), so the key bias slice is dropped.
_FUSED = {
    "self_attention/linear_0": ("attn", ("query", "key", "value")),
    "attention/linear_1": ("cross_attn", ("key", "value")),
}
_LEAVES = {"weight": "weight", "bias": "bias", "gamma": "weight", "beta": "bias"}
_TENSORS = {
    "encoder/position_encodings/encodings": "encoder.positional_embedding",
    "decoder/position_encodings/encodings": "decoder.positional_embedding",
}
_LAYER = re.compile(r"(encoder|decoder)/layer_(\d+)/(.+)/(\w+)")
_IGNORED = {"decoder/projection/weight"}  # an alias of decoder/embeddings/weight (tied in Whisper)


def _state_dict(variables: dict[str, tuple[str, np.ndarray]], source: str) -> dict[str, torch.Tensor]:
    """Map CTranslate2 variables onto openai-whisper state-dict names, as float32 tensors."""
    state: dict[str, torch.Tensor] = {}
    for name, (dtype_name, array) in variables.items():
        if array.ndim == 0 or name in _IGNORED:  # scalars: num_heads, activation, pre_norm, ...
            continue
        if dtype_name not in _FLOAT_DTYPES or name.endswith("_scale"):
            raise CTranslate2FormatError(
                f"{source}: quantized model ('{name}' is {dtype_name}); only float32/float16/bfloat16 "
                "models are supported: convert with --quantization float16"
            )
        tensor = torch.from_numpy(array.astype(np.float32))
        scope, leaf = name.rsplit("/", 1)
        if name in _TENSORS:
            state[_TENSORS[name]] = tensor
        elif scope in _MODULES and leaf in _LEAVES:
            state[f"{_MODULES[scope]}.{_LEAVES[leaf]}"] = tensor
        elif (m := _LAYER.fullmatch(name)) and m[4] in _LEAVES:
            prefix = f"{m[1]}.blocks.{m[2]}"
            if m[3] in _BLOCK_MODULES:
                state[f"{prefix}.{_BLOCK_MODULES[m[3]]}.{_LEAVES[m[4]]}"] = tensor
            elif m[3] in _FUSED:
                module, parts = _FUSED[m[3]]
                for part, chunk in zip(parts, tensor.chunk(len(parts))):
                    if not (part == "key" and m[4] == "bias"):
                        state[f"{prefix}.{module}.{part}.{m[4]}"] = chunk.clone()
            else:
                raise CTranslate2FormatError(f"{source}: unexpected variable '{name}' for a Whisper model")
        else:
            raise CTranslate2FormatError(f"{source}: unexpected variable '{name}' for a Whisper model")
    return state


def _dims(variables: dict[str, tuple[str, np.ndarray]], source: str) -> ModelDimensions:
    """Infer ModelDimensions from tensor shapes; heads from num_heads, else 64-wide heads."""

    def get(name: str) -> np.ndarray:
        if name not in variables:
            raise CTranslate2FormatError(f"{source}: missing variable '{name}' of a Whisper model")
        return variables[name][1]

    def n_layer(side: str) -> int:
        return len({m[2] for name in variables if (m := _LAYER.fullmatch(name)) and m[1] == side})

    def n_head(side: str, n_state: int) -> int:
        return int(variables[f"{side}/num_heads"][1]) if f"{side}/num_heads" in variables else n_state // 64

    conv1, embeddings = get("encoder/conv1/weight"), get("decoder/embeddings/weight")
    return ModelDimensions(
        n_mels=conv1.shape[1],
        n_audio_ctx=get("encoder/position_encodings/encodings").shape[0],
        n_audio_state=conv1.shape[0],
        n_audio_head=n_head("encoder", conv1.shape[0]),
        n_audio_layer=n_layer("encoder"),
        n_vocab=embeddings.shape[0],
        n_text_ctx=get("decoder/position_encodings/encodings").shape[0],
        n_text_state=embeddings.shape[1],
        n_text_head=n_head("decoder", embeddings.shape[1]),
        n_text_layer=n_layer("decoder"),
    )


def whisper_checkpoint(data: bytes | memoryview, source: str, config: dict | None = None) -> dict:
    """Convert model.bin bytes (+ its parsed config.json) to an openai-whisper checkpoint.

    Returns ``{"dims": dict, "model_state_dict": {name: float32 tensor}, "alignment_heads":
    [[layer, head], ...] or None}``; ``whisper.load_model`` reads the first two keys.
    """
    spec_name, variables = read_model_bin(data, source)
    if spec_name != "WhisperSpec":
        raise CTranslate2FormatError(f"{source}: holds a {spec_name}, not a WhisperSpec model")
    return {
        "dims": asdict(_dims(variables, source)),
        "model_state_dict": _state_dict(variables, source),
        "alignment_heads": (config or {}).get("alignment_heads"),
    }
