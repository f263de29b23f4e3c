"""Bottleneck adapters on Whisper's sublayers (tiny Whisper): identity at step 0, names kept, hooks live, copies independent."""

import copy

import pytest
import torch

from espnet_cs.adapters import AdapterConfig, BottleneckAdapter
from espnet_cs.decoder import CSWhisperDecoder
from espnet_cs.encoder import CSWhisperEncoder
from espnet_cs.tokenizer import CSTokenizer


def test_adapters_start_as_identity_and_keep_whisper_names(tiny_whisper_path):
    audio, lengths = 0.1 * torch.randn(2, 16000), torch.tensor([16000, 16000])
    plain_enc = CSWhisperEncoder(whisper_model=str(tiny_whisper_path), pad_to_30s=False).eval()
    enc = CSWhisperEncoder(whisper_model=str(tiny_whisper_path), pad_to_30s=False, adapters={"bottleneck": 8}).eval()
    dec = CSWhisperDecoder(
        51865,
        64,
        whisper_model=str(tiny_whisper_path),
        adapters={"bottleneck": 8, "placement": ["attn", "cross_attn", "mlp"]},
    ).eval()
    plain_dec = CSWhisperDecoder(51865, 64, whisper_model=str(tiny_whisper_path)).eval()
    tok = CSTokenizer()
    tokens = torch.tensor([[*tok.sot_sequence, *tok.encode("你好 hi")]] * 2)
    memory = enc(audio, lengths)[0]
    torch.testing.assert_close(memory, plain_enc(audio, lengths)[0])
    torch.testing.assert_close(dec(memory, None, tokens, None)[0], plain_dec(memory, None, tokens, None)[0])
    assert {k for k in dec.state_dict() if "adapters" not in k} == set(plain_dec.state_dict())
    assert len(enc.adapters) == 2 and set(enc.adapters[0]) == {"attn", "mlp"}
    torch.nn.init.normal_(enc.adapters[1]["mlp"].up.weight)
    assert not torch.allclose(enc(audio, lengths)[0], memory)  # the hooks are live


def test_adapter_parameters_and_bad_options():
    adapter = BottleneckAdapter(768, 192)
    assert sum(p.numel() for p in adapter.parameters()) == 2 * 768 * 192 + 192 + 768 + 2 * 768
    with pytest.raises(ValueError, match="cannot place adapters on \\['cross_attn'\\]"):
        AdapterConfig.from_dict({"bottleneck": 4, "placement": ["cross_attn"]}, "encoder adapters", ("attn", "mlp"))
    with pytest.raises(ValueError, match="unknown option"):
        AdapterConfig.from_dict({"size": 4}, "encoder adapters", ("attn", "mlp"))


def test_a_deep_copy_calls_its_own_adapters(tiny_whisper_path):
    enc = CSWhisperEncoder(whisper_model=str(tiny_whisper_path), pad_to_30s=False, adapters={"bottleneck": 8}).eval()
    audio, lengths = 0.1 * torch.randn(1, 16000), torch.tensor([16000])
    before = enc(audio, lengths)[0]
    twin = copy.deepcopy(enc)
    torch.nn.init.normal_(twin.adapters[0]["attn"].up.weight)
    assert not torch.allclose(twin(audio, lengths)[0], before)  # the copy's hooks call the copy's adapters
    torch.testing.assert_close(enc(audio, lengths)[0], before)  # and the original's are untouched
