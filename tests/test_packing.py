"""Packing (stage 12) and the Python API on tiny models trained by ESPnet's trainer."""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml
from conftest import TINY_DIMS, make_tiny_whisper
from espnet2.main_funcs.pack_funcs import unpack
from espnet_model_zoo.downloader import ModelDownloader
from test_training import data_dir, train_args  # noqa: F401 (data_dir is a fixture)

from espnet_cs.api import Speech2Text, load_speech
from espnet_cs.bin import pack as pack_cli
from espnet_cs.bin import select_heads
from espnet_cs.decoding import DecodingConfig, Hypothesis, Transcriber
from espnet_cs.model import BACKBONE_PREFIXES
from espnet_cs.packing import BackboneError, pack_model
from espnet_cs.task import CSASRTask
from espnet_cs.tokenizer import CSTokenizer

METHODS = ["spt4asr", "lora", "adapter_ag"]  # deep+residual+language prompts; LoRA; adapters with guidance
METHODS += ["spt4asr_zero_last"]  # a residual MLP with a setting of its own (residual_start)
FORCED = [*CSTokenizer("zh_en").sot_sequence, 1, 2, 3]  # the zh_en task tokens + text tokens
DECODING = DecodingConfig(max_new_tokens=16)  # enough to compare, fast on a shared CPU


@dataclass
class Run:
    """A trained, packed run whose training dir and head selection were moved away after packing."""

    zip: Path
    exp_dir: Path  # where the training dir was moved to
    audios: list[Path]
    tokens: list[list[int]]  # decoded by the trained model before packing
    logits: torch.Tensor  # (1, len(FORCED), vocab) teacher-forced on the first audio


def forced_logits(transcriber: Transcriber, audio: Path) -> torch.Tensor:
    speech, _ = sf.read(audio, dtype="float32")
    memory, _, _ = transcriber.encoder(torch.from_numpy(speech)[None], torch.tensor([len(speech)]))
    return transcriber.decoder(memory, None, torch.tensor([FORCED]), None)[0].detach()


@pytest.fixture(scope="module")
def backbone(tmp_path_factory) -> Path:
    """This module's own copy of the tiny backbone: tests remove and replace it."""
    path = tmp_path_factory.mktemp("backbone") / "whisper.pt"
    model = make_tiny_whisper()
    torch.save({"dims": asdict(TINY_DIMS), "model_state_dict": model.state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def runs(backbone, data_dir, tmp_path_factory) -> dict[str, Run]:  # noqa: F811
    root = tmp_path_factory.mktemp("runs")
    heads = root / "heads"
    select_heads.main(
        ["--data_dir", str(data_dir), "--out_dir", str(heads), "--whisper_model", str(backbone), "--min_fraction", "0"]
    )
    audios = sorted(data_dir.glob("*.wav"))[::3]  # the shortest and the longest
    result = {}
    for method in METHODS:
        exp = root / method
        extra = (
            ["--model_conf", f"{{guidance: {{lid_heads: {heads / 'lid_heads.json'}}}}}"]
            if method == "adapter_ag"
            else []
        )
        CSASRTask.main(cmd=train_args(method, backbone, data_dir, exp, *extra))
        trained = Transcriber.from_trained(str(exp / "config.yaml"), str(exp / "valid.loss.ave.pth"), DECODING)
        tokens = [trained([sf.read(a, dtype="float32")[0]])[0].tokens for a in audios]  # one at a time, as the API
        out = pack_model(exp, "valid.loss.ave.pth", root / "zips" / f"{method}.zip")
        result[method] = Run(
            out, exp.rename(root / f"{method}.moved"), audios, tokens, forced_logits(trained, audios[0])
        )
    heads.rename(root / "heads.moved")  # the zips must not need it
    return result


def read_zip(path: Path) -> tuple[list[str], dict, dict[str, torch.Tensor], dict]:
    """Member names, config, model state and backbone identity of a packed zip."""
    with zipfile.ZipFile(path) as z:
        names = z.namelist()
        meta = yaml.safe_load(z.read("meta.yaml"))
        config = yaml.safe_load(z.read(meta["yaml_files"]["asr_train_config"]))
        state = torch.load(io.BytesIO(z.read(meta["files"]["asr_model_file"])))
        identity = json.loads(z.read(meta["files"]["backbone_identity_file"]))
    return names, config, state, identity


def test_decoding_is_nontrivial(runs):
    assert all(run.tokens and any(run.tokens) for run in runs.values()), "decoding nothing would prove nothing"


@pytest.mark.parametrize("method", METHODS)
def test_unpacked_model_decodes_as_the_trained_one(method, runs, tmp_path):
    run = runs[method]
    unpack(run.zip, tmp_path / "unpacked")  # ESPnet's unpacking into a new directory
    for source in (tmp_path / "unpacked", run.zip):
        speech2text = Speech2Text.from_pretrained(source, decoding=DECODING)
        assert [speech2text(a).tokens for a in run.audios] == run.tokens
        torch.testing.assert_close(forced_logits(speech2text.transcriber, run.audios[0]), run.logits, rtol=0, atol=0)


@pytest.mark.parametrize("method", METHODS)
def test_zip_holds_the_trainable_tensors_and_no_backbone(method, runs, backbone):
    names, config, state, identity = read_zip(runs[method].zip)
    directory = f"exp/{method}"
    expected = {
        "meta.yaml",
        f"{directory}/config.yaml",
        f"{directory}/valid.loss.ave.pth",
        f"{directory}/backbone.json",
    }
    assert set(names) == expected | ({f"{directory}/lid_heads.json"} if method == "adapter_ag" else set())
    backbone_keys = [k for k in state if k.startswith(BACKBONE_PREFIXES)]
    assert all("lora_" in k for k in backbone_keys), "only LoRA's own matrices live inside Whisper's modules"
    assert bool(backbone_keys) == (method == "lora")
    assert identity == {
        "spec": str(backbone),
        "sha256": hashlib.sha256(backbone.read_bytes()).hexdigest(),
        "dims": asdict(TINY_DIMS),
    }
    assert bytes(state["backbone_sha256"].to(torch.uint8).tolist()).hex() == identity["sha256"]
    if method == "adapter_ag":
        assert config["model_conf"]["guidance"]["lid_heads"] == f"{directory}/lid_heads.json"


@pytest.mark.parametrize("method", ["spt4asr", "spt4asr_zero_last"])
def test_residual_prompts_are_folded(method, runs):
    run = runs[method]
    _, config, state, _ = read_zip(run.zip)
    checkpoint = torch.load(run.exp_dir / "valid.loss.ave.pth")
    assert {k for k in checkpoint if ".reparameterization." in k} and not {
        k for k in state if ".reparameterization." in k
    }
    assert set(state) == {k for k in checkpoint if ".reparameterization." not in k}
    for stack in ("encoder", "decoder"):
        assert config[f"{stack}_conf"]["soft_prompts"]["residual_bottleneck"] == 0
        assert config[f"{stack}_conf"]["soft_prompts"].get("residual_start", "zero_gain") == "zero_gain"
        key = f"{stack}.soft_prompts.vectors"
        assert not torch.equal(state[key], checkpoint[key]), "the trained MLP changes the prompts"
    # test_unpacked_model_decodes_as_the_trained_one: the same tokens and logits without the MLP


def test_espnet_model_zoo_unpacks_it(runs, tmp_path):
    run = runs["adapter_ag"]
    files = ModelDownloader(tmp_path / "zoo").unpack_local_file(str(run.zip))
    config = yaml.safe_load(Path(files["asr_train_config"]).read_text())
    assert Path(config["model_conf"]["guidance"]["lid_heads"]).is_relative_to(tmp_path / "zoo")
    assert [Speech2Text.from_files(**files, decoding=DECODING)(a).tokens for a in run.audios] == run.tokens


def test_backbone_missing_or_different(runs, backbone, tmp_path):
    run = runs["spt4asr"]
    moved = backbone.rename(tmp_path / "elsewhere.pt")
    try:
        with pytest.raises(
            BackboneError, match=r"needs the Whisper backbone .* \(sha256 [0-9a-f]{64}, dims .* cannot be loaded"
        ):
            Speech2Text.from_pretrained(run.zip)
        speech2text = Speech2Text.from_pretrained(
            run.zip, whisper_model=str(moved), decoding=DECODING
        )  # a copy elsewhere
        assert speech2text(run.audios[0]).tokens == run.tokens[0]
        torch.save({"dims": asdict(TINY_DIMS), "model_state_dict": make_tiny_whisper(seed=1).state_dict()}, backbone)
        trained_on, other = (hashlib.sha256(p.read_bytes()).hexdigest() for p in (moved, backbone))
        with pytest.raises(
            BackboneError, match=rf"needs .*{trained_on}.*, but '{re.escape(str(backbone))}' has sha256 {other}$"
        ):
            Speech2Text.from_pretrained(run.zip)
    finally:
        moved.replace(backbone)


def test_packing_errors(runs, tmp_path):
    exp = runs["spt4asr"].exp_dir
    with pytest.raises(FileNotFoundError, match="9epoch.pth does not exist"):
        pack_model(exp, "9epoch.pth", tmp_path / "x.zip")
    with pytest.raises(SystemExit, match="pack.py: .*9epoch.pth does not exist"):
        pack_cli.main(["--exp_dir", str(exp), "--model_file", "9epoch.pth", "--out", str(tmp_path / "x.zip")])
    full = torch.load(exp / "valid.loss.ave.pth")
    full["encoder.encoders.conv1.weight"] = make_tiny_whisper().encoder.conv1.weight.detach()
    torch.save(full, exp / "full.pth")
    with pytest.raises(ValueError, match=r"not a trainable-only checkpoint.*\['encoder.encoders.conv1.weight'\]"):
        pack_model(exp, "full.pth", tmp_path / "x.zip")
    with pytest.raises(FileNotFoundError, match="LID heads .* do not exist"):
        pack_model(runs["adapter_ag"].exp_dir, "valid.loss.ave.pth", tmp_path / "x.zip")  # its heads were moved
    with pytest.raises(ValueError, match="not trained with attention guidance"):
        pack_model(exp, "valid.loss.ave.pth", tmp_path / "x.zip", lid_heads=tmp_path / "heads.json")
    corrupt = tmp_path / "lid_heads.json"
    corrupt.write_text('{"ranked": [[0, 1]')  # cut short
    with pytest.raises(SystemExit, match=f"^pack.py: {corrupt} is not an LID-head file written by stage 4"):
        pack_cli.main(
            [
                "--exp_dir",
                str(runs["adapter_ag"].exp_dir),
                "--lid_heads",
                str(corrupt),
                "--out",
                str(tmp_path / "x.zip"),
            ]
        )
    assert not list(tmp_path.glob("*.zip")) and not list(tmp_path.glob(".pack.*")), "nothing left behind"


def test_not_a_packed_model_names_the_path_and_stage_12(runs, tmp_path):
    def fails(path: Path, error: type[Exception], message: str) -> None:
        with pytest.raises(error, match=f"^{re.escape(str(path))}{message}"):
            Speech2Text.from_pretrained(path)

    data = runs["spt4asr"].zip.read_bytes()
    written_by = r".*written by stage 12 \(python -m espnet_cs.bin.pack\)"
    (tmp_path / "random.zip").write_bytes(np.random.default_rng(0).bytes(4096))
    fails(tmp_path / "random.zip", ValueError, f" is not a zip file \\(or is cut short\\){written_by}")
    (tmp_path / "cut.zip").write_bytes(data[: len(data) // 2])
    fails(tmp_path / "cut.zip", ValueError, f" is not a zip file \\(or is cut short\\){written_by}")
    damaged = bytearray(data)
    with zipfile.ZipFile(runs["spt4asr"].zip) as z:  # a byte of the model file's tensors flipped
        member = z.getinfo(yaml.safe_load(z.read("meta.yaml"))["files"]["asr_model_file"])
    damaged[member.header_offset + 30 + len(member.filename) + member.compress_size // 2] ^= 0xFF
    (tmp_path / "damaged.zip").write_bytes(bytes(damaged))
    fails(tmp_path / "damaged.zip", ValueError, f" is a damaged zip or not a packed model .*CRC{written_by}")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as z:
        z.writestr("notes.txt", "not a model")
    fails(tmp_path / "other.zip", ValueError, f" is a damaged zip or not a packed model .*meta.yaml{written_by}")
    (tmp_path / "model.pth").write_bytes(data)
    fails(tmp_path / "model.pth", ValueError, r": a packed model's file name ends in .zip")

    unpacked = tmp_path / "unpacked"
    unpack(runs["spt4asr"].zip, unpacked)
    identity = next(unpacked.glob("exp/*/backbone.json"))
    saved = identity.read_text()
    identity.write_text("{not json")
    fails(unpacked, ValueError, r"/exp/.*/backbone.json: not the backbone identity of a packed model")
    identity.write_text("[]")
    fails(unpacked, ValueError, r"/exp/.*/backbone.json: not the backbone identity .*keys spec, sha256, dims")
    identity.write_text(saved)
    model_file = next(unpacked.glob("exp/*/valid.loss.ave.pth"))
    model_file.unlink()
    fails(unpacked, FileNotFoundError, f": its asr_model_file {re.escape(str(model_file))} does not exist{written_by}")
    (unpacked / "meta.yaml").write_text("[not, an, index]\n")
    fails(unpacked, ValueError, f"/meta.yaml is not the index of a packed model .*{written_by}")
    (unpacked / "meta.yaml").unlink()
    fails(
        unpacked, FileNotFoundError, f"/meta.yaml does not exist: {re.escape(str(unpacked))} is not an unpacked model"
    )


def test_result_pairs_each_token_with_its_language():
    tokenizer = CSTokenizer("zh_en")
    ids = tokenizer.encode(" check 一下吃饭")
    result = Hypothesis.from_tokens(ids, tokenizer)
    assert result.text == "check 一下吃饭" and result.tokens == ids
    # 饭 is split over two byte-level tokens: each piece shows U+FFFD, both are Mandarin.
    assert result.pieces == [
        (" check", "en"),
        (" ", "other"),
        ("一下", "zh"),
        ("吃", "zh"),
        ("\ufffd", "zh"),
        ("\ufffd", "zh"),
    ]


def test_audio_inputs(runs, tmp_path):
    def sine(rate: int) -> np.ndarray:  # 1 s of 440 Hz
        return 0.5 * np.sin(2 * np.pi * 440 * np.arange(rate) / rate)

    stereo_48k = tmp_path / "stereo.flac"
    sf.write(stereo_48k, np.stack([sine(48000), 0.5 * sine(48000)], axis=1), 48000)
    inner = slice(400, -400)  # resampling rings at the edges
    np.testing.assert_allclose(load_speech(stereo_48k)[inner], 0.75 * sine(16000)[inner], atol=2e-3)
    np.testing.assert_allclose(load_speech(sine(8000), sample_rate=8000)[inner], sine(16000)[inner], atol=2e-3)
    assert load_speech(sine(16000)).dtype == np.float32

    audio, _ = sf.read(runs["spt4asr"].audios[0], dtype="float32")

    speech2text = Speech2Text.from_pretrained(runs["spt4asr"].zip, decoding=DECODING)
    assert speech2text(audio) == speech2text(runs["spt4asr"].audios[0])
    with pytest.raises(FileNotFoundError, match="no such audio file"):
        speech2text(tmp_path / "none.wav")
    (tmp_path / "bad.wav").write_bytes(b"not audio")
    with pytest.raises(ValueError, match="not an audio file soundfile can decode"):
        speech2text(tmp_path / "bad.wav")
    with pytest.raises(ValueError, match="31.0 s of audio; Whisper reads at most 30 s"):
        speech2text(np.zeros(31 * 16000, dtype=np.float32))
    with pytest.raises(ValueError, match=r"1-D float array .* shape \(2, 16000\)"):
        speech2text(np.zeros((2, 16000), dtype=np.float32))
    with pytest.raises(ValueError, match="1-D float array .*, got int16"):
        speech2text(np.zeros(16000, dtype=np.int16))
    with pytest.raises(ValueError, match="no samples"):
        speech2text(np.zeros(0, dtype=np.float32))
    with pytest.raises(FileNotFoundError, match="no such packed model"):
        Speech2Text.from_pretrained(tmp_path / "none.zip")
