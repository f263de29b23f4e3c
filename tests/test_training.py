"""Soft prompts, LoRA and full fine-tuning trained by ESPnet's own trainer on a tiny Whisper."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import whisper
from conftest import make_tiny_whisper

from espnet_cs.decoding import Transcriber
from espnet_cs.model import BACKBONE_PREFIXES
from espnet_cs.splitting import AUDIO_DIGESTS
from espnet_cs.task import CSASRTask
from espnet_cs.trainer import CheckpointError, CSTrainer, restore_epoch_file

RECIPE_CONF = Path(__file__).resolve().parents[1] / "conf" / "tuning"  # every recipe's conf/tuning links here
PE_METHODS = ["spt_enc", "spt_dec", "spt_both", "dpt", "respt", "lpt", "spt4asr", "lora"]
PE_METHODS += ["spt4asr_zero_last", "spt4asr_init_text", "spt4asr_no_prompt_decay"]  # SPT4ASR started otherwise
TEXTS = ["这个 project 的 deadline", "我们去吃饭", "can you check it", "你 can 帮我 check 一下吗"]


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    """A dump/raw-like dir of 4 noise utterances with CS transcripts (and stage 2's audio digests)."""
    root = tmp_path_factory.mktemp("dump")
    rng = np.random.default_rng(0)
    lines: dict[str, list[str]] = {"wav.scp": [], "text": [], "speech_shape": [], AUDIO_DIGESTS: []}
    for i, text in enumerate(TEXTS):
        utt, n = f"utt{i}", 8000 + 1600 * i
        sf.write(root / f"{utt}.wav", (0.1 * rng.standard_normal(n)).astype(np.float32), 16000, subtype="PCM_16")
        samples, _ = sf.read(root / f"{utt}.wav", dtype="int16")
        lines["wav.scp"].append(f"{utt} {root / utt}.wav")
        lines["text"].append(f"{utt} {text}")
        lines["speech_shape"].append(f"{utt} {n}")
        lines[AUDIO_DIGESTS].append(f"{utt} {hashlib.sha256(samples.tobytes()).hexdigest()}")
    for name, content in lines.items():
        (root / name).write_text("\n".join(content) + "\n", encoding="utf-8")
    return root


def train_args(method: str, model: Path, data: Path, out: Path, *extra: str) -> list[str]:
    args = [
        "--config",
        str(RECIPE_CONF / f"{method}.yaml"),
        "--whisper_model",
        str(model),
        "--ngpu",
        "0",
        "--output_dir",
        str(out),
        "--batch_size",
        "2",
        "--num_iters_per_epoch",
        "2",
        "--max_epoch",
        "2",
        "--num_workers",
        "0",
        "--use_tensorboard",
        "false",
        "--use_matplotlib",
        "false",
    ]
    for phase in ("train", "valid"):
        args += [
            f"--{phase}_data_path_and_name_and_type",
            f"{data}/wav.scp,speech,sound",
            f"--{phase}_data_path_and_name_and_type",
            f"{data}/text,text,text",
            f"--{phase}_shape_file",
            f"{data}/speech_shape",
        ]
    return args + list(extra)


def train(monkeypatch, args: list[str]) -> tuple[dict[str, torch.Tensor], torch.nn.Module]:
    """Run ESPnet's trainer; return the parameters it starts from and the trained model itself."""
    captured = []

    class CapturingTrainer(CSTrainer):  # sees the model once built, frozen, adapted and initialized
        @classmethod
        def run(cls, model, *args, **kwargs):
            captured.append((model, {k: v.detach().clone() for k, v in model.named_parameters()}))
            return super().run(model, *args, **kwargs)

    monkeypatch.setattr(CSASRTask, "trainer", CapturingTrainer)
    CSASRTask.main(cmd=args)
    model, before = captured[0]
    return before, model


def whisper_name(key: str) -> str:
    """``encoder.encoders.blocks.0...`` -> openai-whisper's ``encoder.blocks.0...``."""
    stack, _, rest = key.split(".", 2)
    return f"{stack}.{rest}"


@pytest.mark.parametrize("method", PE_METHODS)
def test_backbone_frozen_and_every_added_tensor_trains(method, monkeypatch, tiny_whisper_path, data_dir, tmp_path):
    before, model = train(monkeypatch, train_args(method, tiny_whisper_path, data_dir, tmp_path / "exp"))
    original = torch.load(tiny_whisper_path)["model_state_dict"]
    trainable = {k for k, p in model.named_parameters() if p.requires_grad}
    for key, param in model.named_parameters():
        if key in trainable:
            assert not torch.equal(param, before[key]), f"{key} did not train"
        else:
            assert key.startswith(BACKBONE_PREFIXES), f"{key} is frozen but not part of Whisper"
            assert torch.equal(param, original[whisper_name(key)]), f"{key} changed"
    assert trainable and all("lora_" in k for k in trainable if k.startswith(BACKBONE_PREFIXES))

    saved = torch.load(tmp_path / "exp" / "2epoch.pth")
    assert set(saved) == trainable | {"backbone_sha256"}, "a checkpoint holds only the trainable tensors"
    reloaded, _ = CSASRTask.build_model_from_file(
        str(tmp_path / "exp" / "config.yaml"), str(tmp_path / "exp" / "2epoch.pth")
    )
    reloaded_params = dict(reloaded.named_parameters())
    for key, param in model.named_parameters():
        assert torch.equal(reloaded_params[key], param), f"{key} differs after reloading"
    audio, tokens = 0.1 * torch.randn(1, 16000), torch.tensor([[*model.tokenizer.sot_sequence, 1, 2, 3]])
    outputs = [
        m.eval().decoder(m.encoder(audio, torch.tensor([16000]))[0], None, tokens, None)[0] for m in (model, reloaded)
    ]
    torch.testing.assert_close(outputs[1], outputs[0])  # the reloaded model computes what was trained


def test_full_fine_tuning_trains_and_saves_the_backbone(monkeypatch, tiny_whisper_path, data_dir, tmp_path):
    before, model = train(
        monkeypatch, train_args("fft", tiny_whisper_path, data_dir, tmp_path / "exp", "--optim_conf", "lr=0.001")
    )
    key = "decoder.decoders.blocks.0.mlp.0.weight"
    assert not torch.equal(dict(model.named_parameters())[key], before[key])
    assert set(dict(model.named_parameters())) <= set(torch.load(tmp_path / "exp" / "2epoch.pth"))


def test_fft_with_prompts_trains_prompts_and_backbone_at_their_own_rates(tiny_whisper_path):
    args = CSASRTask.get_parser().parse_args(
        ["--config", str(RECIPE_CONF / "fft_spt.yaml"), "--whisper_model", str(tiny_whisper_path)]
    )
    model = CSASRTask.build_model(args)
    (optimizer,) = CSASRTask.build_optimizers(args, model)
    names = {id(p): n for n, p in model.named_parameters()}
    groups = [(g["lr"], sorted(names[id(p)] for p in g["params"])) for g in optimizer.param_groups]
    assert [(lr, params) for lr, params in groups[:2]] == [
        (1e-3, ["encoder.soft_prompts.vectors"]),
        (1e-3, ["decoder.soft_prompts.vectors"]),
    ]
    assert groups[2][0] == 1e-6 and len(groups) == 3
    assert sum(len(params) for _, params in groups) == sum(p.requires_grad for p in model.parameters())
    args.lr_by_prefix = {"encoder.no_such_module": 1e-3}
    with pytest.raises(ValueError, match=r"no trainable parameter under \['encoder.no_such_module'\]"):
        CSASRTask.build_optimizers(args, model)


def test_prompts_of_length_zero_are_plain_whisper(tiny_whisper_path, data_dir, tmp_path):
    args = train_args(
        "spt_both",
        tiny_whisper_path,
        data_dir,
        tmp_path,
        "--encoder_conf",
        "{soft_prompts: {length: 0}}",
        "--decoder_conf",
        "{soft_prompts: {length: 0}}",
    )
    model = CSASRTask.build_model(CSASRTask.get_parser().parse_args(args)).eval()
    reference = make_tiny_whisper().eval()
    audio = 0.1 * torch.randn(2, 32000)
    tokens = torch.tensor([[*model.tokenizer.sot_sequence, *model.tokenizer.encode("你好 ok")]] * 2)
    model.encoder.pad_to_30s = True
    memory, _, _ = model.encoder(audio, torch.tensor([32000, 32000]))
    mel = torch.stack([whisper.log_mel_spectrogram(whisper.pad_or_trim(a)) for a in audio])
    torch.testing.assert_close(
        model.decoder(memory, None, tokens, None)[0], reference.decoder(tokens, reference.encoder(mel))
    )


def test_bad_configuration_fails_before_training(tiny_whisper_path, data_dir, tmp_path, capsys):
    def build(*extra):
        return CSASRTask.build_model(
            CSASRTask.get_parser().parse_args(train_args("spt_both", tiny_whisper_path, data_dir, tmp_path, *extra))
        )

    with pytest.raises(ValueError, match=r"encoder_conf of CSWhisperEncoder: unknown option\(s\) \['bottleneck'\]"):
        build("--encoder_conf", "{bottleneck: 4}")
    with pytest.raises(ValueError, match=r"decoder soft_prompts: unknown option\(s\) \[.lenght.\]"):
        build("--decoder_conf", "{soft_prompts: {lenght: 4}}")
    with pytest.raises(ValueError, match=r"encoder soft_prompts: unknown option\(s\) \['unknown'\]"):
        build("--encoder_conf", "{soft_prompts: {unknown: 1}}")
    with pytest.raises(ValueError, match="does not fit Whisper's text context of 448"):
        build("--decoder_conf", "{soft_prompts: {length: 300}}")
    with pytest.raises(ValueError, match="encoder prompts: length 1501 exceeds Whisper's 1500 audio positions"):
        build("--encoder_conf", "{soft_prompts: {length: 1501}}")
    with pytest.raises(SystemExit):  # ESPnet's parser: unknown option
        CSASRTask.get_parser().parse_args(
            train_args("spt_both", tiny_whisper_path, data_dir, tmp_path, "--prompt_length", "4")
        )
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text((RECIPE_CONF / "spt_both.yaml").read_text() + "prompt_lenght: 4\n")
    with pytest.raises(SystemExit):  # an unknown key in the YAML is rejected the same way
        CSASRTask.get_parser().parse_args(
            ["--config", str(bad_yaml), *train_args("spt_both", tiny_whisper_path, data_dir, tmp_path)[2:]]
        )
    assert f"unrecognized arguments: prompt_lenght (from {bad_yaml})" in capsys.readouterr().err


def test_checkpoint_of_another_backbone_is_rejected(monkeypatch, tiny_whisper_path, data_dir, tmp_path):
    train(monkeypatch, train_args("spt_dec", tiny_whisper_path, data_dir, tmp_path / "exp", "--max_epoch", "1"))
    other = tmp_path / "other.pt"
    model = make_tiny_whisper(seed=1)
    torch.save({"dims": torch.load(tiny_whisper_path)["dims"], "model_state_dict": model.state_dict()}, other)
    config = tmp_path / "exp" / "config.yaml"
    config.write_text(config.read_text().replace(str(tiny_whisper_path), str(other)))
    with pytest.raises(ValueError, match="checkpoint was trained on the Whisper backbone with sha256"):
        CSASRTask.build_model_from_file(str(config), str(tmp_path / "exp" / "1epoch.pth"))
    with pytest.raises(FileNotFoundError):
        CSASRTask.build_model_from_file(str(config), str(tmp_path / "exp" / "9epoch.pth"))


def test_interrupted_training_resumes_from_its_last_checkpoint(tiny_whisper_path, data_dir, tmp_path):
    out = tmp_path / "exp"
    args = [
        sys.executable,
        "-m",
        "espnet_cs.bin.train",
        *train_args("spt_enc", tiny_whisper_path, data_dir, out, "--resume", "true"),
    ]
    args[args.index("--max_epoch") + 1] = "100"
    first = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while not (out / "2epoch.pth").exists() and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.05)
    first.kill()  # as a cluster would: no chance to clean up
    first.wait()
    checkpoint = torch.load(out / "checkpoint.pth", weights_only=False)
    done = checkpoint["reporter"]["epoch"]
    assert 2 <= done < 100
    # as if killed while ESPnet was writing the epoch file after the checkpoint
    epoch_file = out / f"{done}epoch.pth"
    epoch_file.write_bytes(epoch_file.read_bytes()[:100] if epoch_file.exists() else b"")

    args[args.index("--max_epoch") + 1] = str(done + 2)
    second = subprocess.run(args, capture_output=True, text=True)
    assert second.returncode == 0, second.stderr[-2000:]
    assert f"INFO: {done + 1}epoch results" in second.stderr and "INFO: 1epoch results" not in second.stderr
    assert torch.load(out / "checkpoint.pth", weights_only=False)["reporter"]["epoch"] == done + 2
    assert "rewriting it from checkpoint.pth" in second.stderr
    restored = torch.load(epoch_file)
    assert restored.keys() == checkpoint["model"].keys()
    assert all(torch.equal(restored[k], checkpoint["model"][k]) for k in restored)
    assert (out / "valid.loss.ave.pth").exists()
    # the same epochs without the kill: identical weights (ESPnet reseeds every epoch)
    args[args.index("--output_dir") + 1] = str(tmp_path / "uninterrupted")
    subprocess.run(args, capture_output=True, check=True)
    resumed, uninterrupted = (torch.load(d / f"{done + 2}epoch.pth") for d in (out, tmp_path / "uninterrupted"))
    assert resumed.keys() == uninterrupted.keys()
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in resumed), "resuming changed the training"


def test_unreadable_checkpoint_is_a_clear_error(tmp_path):
    (tmp_path / "checkpoint.pth").write_bytes(b"PK\x03\x04 cut short")
    with pytest.raises(CheckpointError, match="checkpoint.pth cannot be read.*killed while saving"):
        restore_epoch_file(tmp_path)
    from espnet_cs.bin import average

    with pytest.raises(SystemExit, match="average.py: .*checkpoint.pth cannot be read"):
        average.main(["--exp_dir", str(tmp_path)])


def test_two_phase_attention_guided_training(monkeypatch, tiny_whisper_path, data_dir, tmp_path):
    from espnet_cs.bin import select_heads

    select_heads.main(
        [
            "--data_dir",
            str(data_dir),
            "--out_dir",
            str(tmp_path / "heads"),
            "--whisper_model",
            str(tiny_whisper_path),
            "--min_fraction",
            "0",
        ]
    )
    assert (tmp_path / "heads" / "heads.png").stat().st_size > 0
    _, phase1 = train(monkeypatch, train_args("adapter_phase1", tiny_whisper_path, data_dir, tmp_path / "s1"))
    assert phase1.decoder.adapters is None and phase1.encoder.adapters is not None
    guidance = f"{{guidance: {{lid_heads: {tmp_path / 'heads' / 'lid_heads.json'}, weight: 1.0, target: 0.5}}}}"
    before, phase2 = train(
        monkeypatch,
        train_args(
            "adapter_ag_phase2",
            tiny_whisper_path,
            data_dir,
            tmp_path / "s2",
            "--init_param",
            str(tmp_path / "s1" / "valid.loss.ave.pth"),
            "--model_conf",
            guidance,
        ),
    )
    averaged = torch.load(tmp_path / "s1" / "valid.loss.ave.pth")
    assert {k for k in averaged if k.startswith("encoder.adapters")}
    for key, value in averaged.items():
        if key.startswith("encoder.adapters"):
            assert torch.equal(before[key], value), f"{key} does not start from phase 1's averaged model"
    assert not torch.equal(
        dict(phase2.named_parameters())["decoder.adapters.0.attn.up.weight"],
        before["decoder.adapters.0.attn.up.weight"],
    )
    log = tmp_path / "s2" / "checkpoint.pth"
    reporter = torch.load(log, weights_only=False)["reporter"]["stats"]
    assert reporter[1]["train"]["loss_guidance"] > 0
    # decoding does not read the LID heads, which a later stage 4 may rewrite (here: remove)
    (tmp_path / "heads" / "lid_heads.json").unlink()
    transcriber = Transcriber.from_trained(str(tmp_path / "s2" / "config.yaml"), str(tmp_path / "s2" / "1epoch.pth"))
    assert transcriber.decoder.adapters is not None and len(transcriber([np.zeros(8000, np.float32)])) == 1


def test_guidance_needs_lid_heads_and_the_zh_en_task_tokens(tiny_whisper_path, data_dir, tmp_path):
    def build(*extra):
        return CSASRTask.build_model(
            CSASRTask.get_parser().parse_args(train_args("adapter_ag", tiny_whisper_path, data_dir, tmp_path, *extra))
        )

    with pytest.raises(FileNotFoundError, match="run stage 4"):
        build("--model_conf", f"{{guidance: {{lid_heads: {tmp_path / 'none.json'}}}}}")
    with pytest.raises(ValueError, match="needs lid_heads"):
        build("--model_conf", "{guidance: {weight: 1.0}}")
    corrupt = tmp_path / "lid_heads.json"
    corrupt.write_text('{"ranked": [[0, 1]')  # cut short
    with pytest.raises(ValueError, match=f"^{corrupt} is not an LID-head file written by stage 4"):
        build("--model_conf", f"{{guidance: {{lid_heads: {corrupt}}}}}")
    with pytest.raises(ValueError, match="unknown selection 'best'"):
        build("--model_conf", f"{{guidance: {{lid_heads: {tmp_path / 'none.json'}, selection: best}}}}")
    with pytest.raises(ValueError, match="two-LID task tokens"):
        build("--task_tokens", "zh", "--model_conf", f"{{guidance: {{lid_heads: {tmp_path / 'none.json'}}}}}")


@pytest.mark.parametrize("method", ["spt4asr", "lora", "adapter"])
def test_activation_checkpointing_keeps_loss_and_gradients_and_saves_memory(method, tiny_whisper_path):
    """Blocks recomputed in the backward pass: the same loss and gradients, fewer saved activations."""
    from espnet_cs.task import build_trainable_model

    def step(checkpointing: bool) -> tuple[torch.Tensor, dict[str, torch.Tensor], int]:
        args = CSASRTask.get_parser().parse_args(
            ["--config", str(RECIPE_CONF / f"{method}.yaml"), "--whisper_model", str(tiny_whisper_path)]
        )
        args.encoder_conf = {**args.encoder_conf, "activation_checkpointing": checkpointing}
        args.decoder_conf = {**args.decoder_conf, "activation_checkpointing": checkpointing}
        torch.manual_seed(0)
        model = build_trainable_model(args)
        model.train()
        weights = {p.untyped_storage().data_ptr() for p in model.parameters()}
        saved_bytes = 0
        in_prompts = False  # computing the prompt vectors (their reparameterization: no blocks)

        def set_in_prompts(value: bool) -> None:
            nonlocal in_prompts
            in_prompts = value

        for prompts in (model.encoder.soft_prompts, model.decoder.soft_prompts):
            prompts.register_forward_pre_hook(lambda *_: set_in_prompts(True))
            prompts.register_forward_hook(lambda *_: set_in_prompts(False))

        def pack(tensor: torch.Tensor) -> torch.Tensor:
            """Count the activations autograd keeps, but weights (no cost), logits and the prompt
            vectors' own computation (no blocks)."""
            nonlocal saved_bytes
            if (
                not in_prompts
                and tensor.untyped_storage().data_ptr() not in weights
                and tensor.size(-1) != model.tokenizer.vocab_size
            ):
                saved_bytes += tensor.numel() * tensor.element_size()
            return tensor

        rng = np.random.default_rng(1)
        speech = torch.from_numpy((0.1 * rng.standard_normal((2, 24000))).astype(np.float32))
        text = torch.tensor([model.tokenizer.encode(t)[:4] for t in TEXTS[:2]])
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
            loss, _, _ = model(speech, torch.tensor([24000, 17000]), text, torch.tensor([4, 4]))
        loss.backward()
        grads = {n: p.grad for n, p in model.named_parameters() if p.requires_grad}
        return loss.detach(), grads, saved_bytes

    loss, grads, saved = step(False)
    checkpointed_loss, checkpointed_grads, checkpointed_saved = step(True)
    torch.testing.assert_close(checkpointed_loss, loss, rtol=0, atol=0)
    assert grads.keys() == checkpointed_grads.keys() and grads
    for name in grads:
        torch.testing.assert_close(checkpointed_grads[name], grads[name], rtol=1e-5, atol=1e-7, msg=name)
    assert checkpointed_saved < saved / 2, (checkpointed_saved, saved)


def test_activation_checkpointing_of_a_guided_decoder_is_an_error(tiny_whisper_path, tmp_path):
    args = CSASRTask.get_parser().parse_args(
        ["--config", str(RECIPE_CONF / "adapter_ag.yaml"), "--whisper_model", str(tiny_whisper_path)]
    )
    args.decoder_conf = {**args.decoder_conf, "activation_checkpointing": True}
    with pytest.raises(ValueError, match="activation_checkpointing does not combine with attention guidance"):
        CSASRTask.build_model(args)
