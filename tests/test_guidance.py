"""Adapters, attention capture, LID-head statistics and the guidance loss (hand-computed cases)."""

import json

import pytest
import torch

from espnet_cs.adapters import AdapterConfig, BottleneckAdapter
from espnet_cs.decoder import WhisperCSDecoder, in_batch_order
from espnet_cs.encoder import WhisperCSEncoder
from espnet_cs.guidance import (HeadSelection, WordRows, guidance_loss, lid_head_statistics, own_language_share,
                                select_heads)
from espnet_cs.tokenizer import CSTokenizer, Language

# One utterance, 5 positions (columns: sot, zh, en, x, y), 2 heads; word tokens output at rows 3 (zh) and 4 (en).
ATTENTION = {0: torch.tensor([[
    [[1, 0, 0, 0, 0], [0.5, 0.5, 0, 0, 0], [0.3, 0.3, 0.4, 0, 0], [0.1, 0.6, 0.1, 0.2, 0], [0.1, 0.2, 0.3, 0.2, 0.2]],
    [[1, 0, 0, 0, 0], [0.5, 0.5, 0, 0, 0], [0.3, 0.3, 0.4, 0, 0], [0.5, 0.1, 0.1, 0.3, 0], [0.2, 0.1, 0.1, 0.3, 0.3]],
]])}
WORDS = WordRows.from_tags([[Language.ZH, Language.EN, Language.OTHER]], first_target_row=3, zh_column=1, en_column=2)


def test_word_rows_skip_tokens_of_neither_language():
    assert WORDS.rows.tolist() == [3, 4] and WORDS.languages.tolist() == [0, 1]
    empty = WordRows.from_tags([[Language.OTHER]], 3, 1, 2)
    assert len(empty.rows) == 0 and guidance_loss(ATTENTION, [(0, 0)], empty, 0.5, 1) == 0


def test_guidance_loss_by_hand():
    # head 0: zh token (0.6-0.5)^2 + 0.1^2 = 0.02; en token 0.2^2 + (0.3-0.5)^2 = 0.08
    assert guidance_loss(ATTENTION, [(0, 0)], WORDS, 0.5, 1).item() == pytest.approx(0.10)
    # head 1: 0.17 and 0.17; per token the mean over heads: 0.095 + 0.125
    assert guidance_loss(ATTENTION, [(0, 0), (0, 1)], WORDS, 0.5, 1).item() == pytest.approx(0.22)
    assert guidance_loss(ATTENTION, [(0, 0), (0, 1)], WORDS, 0.5, 2).item() == pytest.approx(0.11)


def test_lid_head_indicator_and_own_language_share_by_hand():
    indicator, share = lid_head_statistics(ATTENTION, WORDS, 1)
    # head 0: mean rows [0.1, 0.4, 0.2, 0.2, 0.1]: LID 0.6 > 0.2; head 1: [0.35, 0.1, 0.1, 0.3, 0.15]: 0.2 < 0.35
    assert indicator.tolist() == [[[True, False]]]
    assert share[0, 0].tolist() == pytest.approx([0.6, 0.2])
    assert own_language_share(ATTENTION, [(0, 0)], WORDS) == (2, 2)
    assert own_language_share(ATTENTION, [(0, 0), (0, 1)], WORDS) == (3, 4)


def test_select_heads_top_all_random():
    counts = torch.tensor([[10, 0, 4], [9, 9, 1]])
    attention = torch.tensor([[5.0, 0, 1], [2, 3, 0]])
    lid, top = select_heads(counts, attention, 10, "top", 0.6, min_fraction=0.2)
    assert lid == [(0, 0), (1, 1), (1, 0), (0, 2)] and top == [(0, 0), (1, 1)]  # tie 9/9 broken by attention
    assert select_heads(counts, attention, 10, "all", 1.0, 0.2)[1] == lid
    random = select_heads(counts, attention, 10, "random", 0.5, 0.2, seed=3)[1]
    assert len(random) == 3 and random == select_heads(counts, attention, 10, "random", 0.5, 0.2, seed=3)[1]


def test_head_selection_file_is_checked(tmp_path):
    path = tmp_path / "heads.json"
    HeadSelection("ab" * 32, 2, 4, heads=[(1, 3)], mode="top", share=0.6).save(path)
    assert HeadSelection.load(path, "ab" * 32, 2, 4).heads == [(1, 3)]
    with pytest.raises(ValueError, match="selected on the backbone with sha256"):
        HeadSelection.load(path, "cd" * 32, 2, 4)
    with pytest.raises(ValueError, match="do not fit a decoder of 2 layers x 2 heads"):
        HeadSelection.load(path, "ab" * 32, 2, 2)
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "heads": [[5, 0]]}))
    with pytest.raises(ValueError, match="do not fit"):
        HeadSelection.load(path, "ab" * 32, 2, 4)
    with pytest.raises(FileNotFoundError, match="run stage 4"):
        HeadSelection.load(tmp_path / "none.json", "ab" * 32, 2, 4)


def test_adapters_start_as_identity_and_keep_whisper_names(tiny_whisper_path):
    audio, lengths = 0.1 * torch.randn(2, 16000), torch.tensor([16000, 16000])
    plain_enc = WhisperCSEncoder(whisper_model=str(tiny_whisper_path), pad_to_30s=False).eval()
    enc = WhisperCSEncoder(whisper_model=str(tiny_whisper_path), pad_to_30s=False, adapters={"bottleneck": 8}).eval()
    dec = WhisperCSDecoder(51865, 64, whisper_model=str(tiny_whisper_path),
                           adapters={"bottleneck": 8, "placement": ["attn", "cross_attn", "mlp"]}).eval()
    plain_dec = WhisperCSDecoder(51865, 64, whisper_model=str(tiny_whisper_path)).eval()
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


def test_attention_capture_matches_whisper_and_changes_nothing(tiny_whisper_path):
    from whisper.model import disable_sdpa
    dec = WhisperCSDecoder(51865, 64, whisper_model=str(tiny_whisper_path)).eval()
    tok = CSTokenizer()
    tokens = torch.tensor([[*tok.sot_sequence, *tok.encode("你好 ok")]])
    memory = torch.randn(1, 20, 64)
    plain = dec(memory, None, tokens, None)[0]
    with dec.capture_attention() as parts:
        captured = dec(memory, None, tokens, None)[0]
    attention = in_batch_order(parts, None)
    torch.testing.assert_close(captured, plain)
    assert sorted(attention) == [0, 1] and attention[1].shape == (1, 4, tokens.size(1), tokens.size(1))
    block = dec.decoders.blocks[0]
    x = dec.decoders.token_embedding(tokens) + dec.decoders.positional_embedding[: tokens.size(1)]
    with disable_sdpa():
        _, scores = block.attn(block.attn_ln(x), mask=dec.decoders.mask)
    torch.testing.assert_close(attention[0], scores.softmax(-1))
    assert not any(block.attn._forward_hooks for block in dec.decoders.blocks)
