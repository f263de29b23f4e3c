"""Opt-in int8 decoding (espnet_cs.quantization) on a tiny Whisper."""

import torch
from conftest import audio_batch, padded

from espnet_cs.decoding import DecodingConfig, Transcriber
from espnet_cs.model import CSWhisperModel
from espnet_cs.quantization import DynamicInt8Linear, quantize_linear_int8
from espnet_cs.tokenizer import CSTokenizer


def test_every_linear_layer_is_int8_and_logits_stay_close(tiny_whisper_path):
    model = CSWhisperModel.from_backbone(str(tiny_whisper_path), "zh").eval()
    tokens = torch.tensor([[*CSTokenizer("zh").sot_sequence, 1, 2, 3]] * 2)
    with torch.no_grad():
        memory, _, _ = model.encoder(*padded(audio_batch()))
        reference = model.decoder(memory, None, tokens, None)[0]
        n_linear = sum(isinstance(m, torch.nn.Linear) for m in model.modules())
        quantize_linear_int8(model)
        assert not any(isinstance(m, torch.nn.Linear) for m in model.modules())
        assert sum(isinstance(m, DynamicInt8Linear) for m in model.modules()) == n_linear > 0
        int8_memory, _, _ = model.encoder(*padded(audio_batch()))
        logits = model.decoder(int8_memory, None, tokens, None)[0]
    assert not torch.equal(logits, reference)
    error = (logits - reference).norm() / reference.norm()
    assert error < 0.05, error


def test_int8_greedy_decoding_with_the_cache_equals_recomputing(tiny_whisper_path):
    """The key/value cache hooks work on quantized projections: cached steps equal full recomputation."""
    model = quantize_linear_int8(CSWhisperModel.from_backbone(str(tiny_whisper_path), "zh").eval())
    transcriber = Transcriber.from_model(model, DecodingConfig(max_new_tokens=6))
    hyps = transcriber(audio_batch())
    with torch.no_grad():
        memory, _, _ = model.encoder(*padded(audio_batch()))
        for row, hyp in enumerate(hyps):
            tokens = torch.tensor([[*model.tokenizer.sot_sequence, *hyp.tokens]])
            logits = model.decoder(memory[row : row + 1], None, tokens, None)[0][0]
            start = len(model.tokenizer.sot_sequence) - 1
            steps = logits[start : start + len(hyp.tokens)]
            steps[:, model.tokenizer.suppress_tokens] = -torch.inf
            if len(hyp.tokens):
                steps[0, model.tokenizer.blank_tokens] = -torch.inf
            assert steps.argmax(-1).tolist() == hyp.tokens


def test_decode_cli_int8_is_a_setting_of_its_own(tiny_whisper_path, tmp_path, caplog):
    import json

    import pytest
    import soundfile as sf

    from espnet_cs.bin import decode

    data = tmp_path / "data"
    data.mkdir()
    for i, audio in enumerate(audio_batch()):
        sf.write(tmp_path / f"u{i}.wav", audio, 16000, subtype="PCM_16")
    (data / "wav.scp").write_text("".join(f"u{i} {tmp_path / f'u{i}.wav'}\n" for i in range(2)))
    (data / "utt2sha256").write_text("u0 00\nu1 11\n")
    argv = ["--data_dir", str(data), "--whisper_model", str(tiny_whisper_path), "--task_tokens", "zh"]
    decode.main([*argv, "--out_dir", str(tmp_path / "int8"), "--int8", "true"])
    decode.main([*argv, "--out_dir", str(tmp_path / "float")])
    int8_info = json.loads((tmp_path / "int8" / "decode_info.json").read_text())
    assert int8_info["int8"] is True and int8_info["utterances"] == 2
    assert "int8" not in json.loads((tmp_path / "float" / "decode_info.json").read_text())
    with caplog.at_level("INFO"):
        decode.main([*argv, "--out_dir", str(tmp_path / "int8")])  # float into the int8 dir: redone
    assert "changed since" in caplog.text and "int8" in caplog.text
    with pytest.raises(SystemExit, match="--int8 runs on the CPU only, not on cuda"):
        decode.main([*argv, "--out_dir", str(tmp_path / "x"), "--int8", "true", "--device", "cuda"])


def test_lora_layers_are_quantized_with_their_update(tiny_whisper_path):
    """A trained LoRA model's int8 form applies W + B A (not the bare backbone weight)."""
    from espnet2.layers.create_adapter import create_adapter

    from espnet_cs.task import keep_lora_unmerged

    model = CSWhisperModel.from_backbone(str(tiny_whisper_path), "zh")
    create_adapter(model, "lora", {"rank": 4, "alpha": 8, "target_modules": ["query", "value"]})
    keep_lora_unmerged(model)
    torch.manual_seed(0)
    for name, parameter in model.named_parameters():
        if "lora_B" in name:
            torch.nn.init.normal_(parameter, std=0.5)  # a trained update: B is no longer zero
    model.eval()
    tokens = torch.tensor([[*CSTokenizer("zh").sot_sequence, 1, 2, 3]] * 2)
    with torch.no_grad():
        memory, _, _ = model.encoder(*padded(audio_batch()))
        reference = model.decoder(memory, None, tokens, None)[0]
        bare = CSWhisperModel.from_backbone(str(tiny_whisper_path), "zh").eval()
        bare_logits = bare.decoder(bare.encoder(*padded(audio_batch()))[0], None, tokens, None)[0]
        quantize_linear_int8(model)
        logits = model.decoder(model.encoder(*padded(audio_batch()))[0], None, tokens, None)[0]
    error = (logits - reference).norm() / reference.norm()
    assert error < 0.05, error
    assert (bare_logits - reference).norm() / reference.norm() > 4 * error  # the update is in there
