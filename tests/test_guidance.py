"""Attention guidance: word rows, attention capture, LID heads and their file, the loss (hand-computed cases), every registered selection and loss, guided soft prompts."""

import json

import pytest
import torch
from test_dtypes import CONF, batch, lid_heads_file

from espnet_cs.config_yaml import ConfigError
from espnet_cs.decoder import CSWhisperDecoder
from espnet_cs.guidance.capture import capture_attention
from espnet_cs.guidance.heads import (
    FIRST_GUIDABLE_LAYER,
    SELECTIONS,
    LidHeads,
    lid_head_statistics,
    own_language_share,
    rank_lid_heads,
    register_selection,
    select,
)
from espnet_cs.guidance.loss import LOSSES, GuidanceConfig, guidance_loss, register_loss
from espnet_cs.guidance.rows import WordRows
from espnet_cs.model import BACKBONE_PREFIXES
from espnet_cs.task import CSASRTask, freeze
from espnet_cs.tokenizer import CSTokenizer, Language

# One utterance, 5 positions (columns: sot, zh, en, x, y), 2 heads; word tokens output at rows 3 (zh) and 4 (en).
ATTENTION = {
    0: torch.tensor(
        [
            [
                [
                    [1, 0, 0, 0, 0],
                    [0.5, 0.5, 0, 0, 0],
                    [0.3, 0.3, 0.4, 0, 0],
                    [0.1, 0.6, 0.1, 0.2, 0],
                    [0.1, 0.2, 0.3, 0.2, 0.2],
                ],
                [
                    [1, 0, 0, 0, 0],
                    [0.5, 0.5, 0, 0, 0],
                    [0.3, 0.3, 0.4, 0, 0],
                    [0.5, 0.1, 0.1, 0.3, 0],
                    [0.2, 0.1, 0.1, 0.3, 0.3],
                ],
            ]
        ]
    )
}
WORDS = WordRows.from_tags([[Language.ZH, Language.EN, Language.OTHER]], first_target_row=3, zh_column=1, en_column=2)


def test_word_rows_skip_tokens_of_neither_language():
    assert WORDS.rows.tolist() == [3, 4] and WORDS.languages.tolist() == [0, 1]
    empty = WordRows.from_tags([[Language.OTHER]], 3, 1, 2)
    assert len(empty.rows) == 0 and guidance_loss(ATTENTION, [(0, 0)], empty, 0.5, 1) == 0


def test_word_rows_of_targets_skip_soft_prompts_and_task_tokens():
    tok = CSTokenizer("zh_en")
    ids = tok.encode(" ok 你好")
    text = torch.tensor([ids + [-1], [ids[0]] + [-1] * len(ids)])
    words = WordRows.of_targets(tok, text, torch.tensor([len(ids), 1]), n_soft_prompts=3)
    # [3 prompts] sot zh en transcribe notimestamps y1 ...: y1 is output at row 3 + 5 - 1
    assert words.zh_column == 3 + 1 and words.en_column == 3 + 2
    tags = tok.language_tags(ids)
    expected = [(0, 7 + i, int(t)) for i, t in enumerate(tags) if t != Language.OTHER] + [(1, 7, int(tags[0]))]
    assert list(zip(words.batch.tolist(), words.rows.tolist(), words.languages.tolist())) == expected
    with pytest.raises(ValueError, match="two-LID task tokens"):
        WordRows.of_targets(CSTokenizer("zh"), text, torch.tensor([1, 1]), 0)


def test_guidance_loss_by_hand():
    # head 0: zh token (0.6-0.5)^2 + 0.1^2 = 0.02; en token 0.2^2 + (0.3-0.5)^2 = 0.08
    assert guidance_loss(ATTENTION, [(0, 0)], WORDS, 0.5, 1).item() == pytest.approx(0.10)
    # head 1: 0.17 and 0.17; summed over heads and tokens: 0.10 + 0.34
    assert guidance_loss(ATTENTION, [(0, 0), (0, 1)], WORDS, 0.5, 1).item() == pytest.approx(0.44)
    assert guidance_loss(ATTENTION, [(0, 0), (0, 1)], WORDS, 0.5, 2).item() == pytest.approx(0.22)


def test_lid_head_indicator_and_own_language_share_by_hand():
    counts, share = lid_head_statistics(ATTENTION, WORDS, 1)
    # head 0: row 3 LID 0.7 > 0.2, row 4 LID 0.5 > 0.2; head 1: row 3 0.2 < 0.5, row 4 0.2 < 0.3
    assert counts.tolist() == [[[2, 0]]] and counts.dtype == torch.long
    assert share[0, 0].tolist() == pytest.approx([0.6, 0.2])  # mean LID-column attention of the tokens


def test_lid_head_indicator_counts_tokens_not_sentences():
    attention = {0: ATTENTION[0].clone()}
    attention[0][0, 1, 4] = torch.tensor([0.1, 0.3, 0.3, 0.2, 0.1])  # head 1: an LID head at row 4 only
    counts, _ = lid_head_statistics(attention, WORDS, 2)  # a second utterance without word tokens
    # by the sentence's mean rows ([0.3, 0.2, 0.2, 0.25, 0.05]: 0.4 > 0.3) head 1 would count the whole sentence
    assert counts.tolist() == [[[2, 1]], [[0, 0]]]
    assert own_language_share(ATTENTION, [(0, 0)], WORDS) == (2, 2)
    assert own_language_share(ATTENTION, [(0, 0), (0, 1)], WORDS) == (3, 4)


def test_rank_and_select_heads_top_all_random():
    counts = torch.tensor([[10, 0, 4], [9, 9, 4], [8, 1, 3]])
    attention = torch.tensor([[5.0, 0, 1], [2, 3, 0], [0, 0, 1]])
    ranked = rank_lid_heads(counts, attention, 10, min_fraction=0.2)
    # layer 0 never (frozen inputs); tie 9/9 broken by attention; (2, 1) below 20% of 10 tokens
    assert ranked == [(1, 1), (1, 0), (2, 0), (1, 2), (2, 2)]
    assert select(ranked, "top", 0.6, 3, 3) == [(1, 1), (1, 0), (2, 0)] and select(ranked, "all", 1.0, 3, 3) == ranked
    random = select(ranked, "random", 0.5, 3, 3, seed=3)
    assert len(random) == 3 and random == select(ranked, "random", 0.5, 3, 3, seed=3)
    assert all(layer >= 1 for layer, _ in random)
    with pytest.raises(ValueError, match="unknown head selection 'best'"):
        select(ranked, "best", 0.5, 2, 3)


RANKED = [(1, 1), (1, 0), (2, 0), (1, 2), (2, 2)]  # LID heads of a decoder of 3 layers x 3 heads, ranked


@pytest.mark.parametrize("name", sorted(SELECTIONS))
def test_every_selection_returns_distinct_guidable_heads(name):
    """The extension point: a registered selection is a ``selection:`` of the guidance options."""
    assert GuidanceConfig.from_dict({"lid_heads": "lid_heads.json", "selection": name}).selection == name
    attention = {layer: torch.rand(1, 3, 5, 5).softmax(-1).requires_grad_() for layer in range(3)}
    for fraction, seed in ((0.01, 0), (0.5, 0), (0.5, 1), (1.0, 0)):
        heads = select(RANKED, name, fraction, 3, 3, seed)
        assert heads and len(set(heads)) == len(heads)
        assert all(FIRST_GUIDABLE_LAYER <= layer < 3 and 0 <= h < 3 for layer, h in heads)
        assert heads == select(RANKED, name, fraction, 3, 3, seed), "the same options select the same heads"
        assert torch.isfinite(guidance_loss(attention, heads, WORDS, 0.5, 1))


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_loss_is_zero_at_the_cs_map_and_guides_elsewhere(name):
    """The extension point: a registered loss is a ``loss:`` of the guidance options; per word token
    and head it is 0 at the code-switching map and non-negative, finite and differentiable."""
    assert GuidanceConfig.from_dict({"lid_heads": "lid_heads.json", "loss": name}).loss == name
    languages = torch.tensor([Language.ZH, Language.EN, Language.EN, Language.ZH])
    for target in (0.3, 0.5, 1.0):
        at_map = (torch.nn.functional.one_hot(languages, 2).float() * target)[:, None].repeat(1, 3, 1)
        at_map.requires_grad_()
        per_pair = LOSSES[name](at_map, languages, target)
        assert per_pair.shape == (4, 3) and torch.equal(per_pair, torch.zeros(4, 3))
        per_pair.sum().backward()
        assert torch.isfinite(at_map.grad).all()
    off_map = (torch.rand(4, 3, 2, dtype=torch.float64) / 2).requires_grad_()
    per_pair = LOSSES[name](off_map, languages, 0.5)
    assert per_pair.dtype == torch.float64 and torch.isfinite(per_pair).all() and (per_pair >= 0).all()
    per_pair.sum().backward()
    assert torch.isfinite(off_map.grad).all() and off_map.grad.abs().sum() > 0
    assert guidance_loss(ATTENTION, [(0, 0)], WordRows.from_tags([[Language.OTHER]], 3, 1, 2), 0.5, 1, name) == 0


def test_a_registered_selection_and_loss_are_options_of_the_guidance(monkeypatch):
    with pytest.raises(ValueError, match=r"unknown loss 'absolute_error'; choose from \['squared_error'"):
        GuidanceConfig.from_dict({"lid_heads": "lid_heads.json", "loss": "absolute_error"})
    monkeypatch.setitem(SELECTIONS, "last", None)  # registered for this test only
    monkeypatch.setitem(LOSSES, "absolute_error", None)

    @register_selection("last")
    def last(ranked, fraction, n_layers, n_heads, seed):
        return list(ranked[-1:])

    @register_loss("absolute_error")
    def absolute_error(lid, languages, target):
        return (lid - torch.nn.functional.one_hot(languages, 2)[:, None].to(lid) * target).abs().sum(-1)

    config = GuidanceConfig.from_dict({"lid_heads": "lid_heads.json", "selection": "last", "loss": "absolute_error"})
    assert select(RANKED, config.selection, config.fraction, 3, 3) == [(2, 2)]
    # head 0: zh token |0.6 - 0.5| + 0.1, en token 0.2 + |0.3 - 0.5|
    assert guidance_loss(ATTENTION, [(0, 0)], WORDS, 0.5, 1, config.loss).item() == pytest.approx(0.6)


def test_the_renamed_share_names_fraction():
    with pytest.raises(ConfigError, match=r"^model_conf.guidance: key 'share' was renamed to 'fraction'$"):
        GuidanceConfig.from_dict({"lid_heads": "lid_heads.json", "share": 0.6})
    assert GuidanceConfig.from_dict({"lid_heads": "lid_heads.json", "fraction": 0.5}).fraction == 0.5


def lid_heads(ranked, sha="ab" * 32):
    return LidHeads("whisper-base", sha, 2, 4, ranked, [[0] * 4] * 2, [[0.0] * 4] * 2, 10, 10, 40, 0.1, 0.5)


def test_lid_heads_file_is_checked(tmp_path):
    path = tmp_path / "lid_heads.json"
    lid_heads([(1, 3), (0, 1)]).save(path)
    loaded = LidHeads.load(path, "ab" * 32, 2, 4)
    assert loaded.ranked == [(1, 3), (0, 1)] and loaded.select("top", 0.5) == [(1, 3)]
    with pytest.raises(ValueError, match="found on the backbone with sha256"):
        LidHeads.load(path, "cd" * 32, 2, 4)
    with pytest.raises(ValueError, match="do not fit a decoder of 2 layers x 2 heads"):
        LidHeads.load(path, "ab" * 32, 2, 2)
    data = json.loads(path.read_text())
    path.write_text(json.dumps({**data, "ranked": [[5, 0]]}))
    with pytest.raises(ValueError, match="do not fit"):
        LidHeads.load(path, "ab" * 32, 2, 4)
    with pytest.raises(FileNotFoundError, match="run stage 4"):
        LidHeads.load(tmp_path / "none.json", "ab" * 32, 2, 4)
    path.write_text('{"ranked": [[0, 1]')  # cut short
    with pytest.raises(ValueError, match=f"{path} is not an LID-head file"):
        LidHeads.load(path, "ab" * 32, 2, 4)
    lid_heads([]).save(path)
    with pytest.raises(ValueError, match="no LID heads to select from"):
        LidHeads.load(path, "ab" * 32, 2, 4).select("top", 0.6)


def _edited(data: dict, **changes) -> dict:
    """``data`` with ``changes`` (a value of None removes the key)."""
    return {k: v for k, v in {**data, **changes}.items() if v is not None}


@pytest.mark.parametrize(
    "content, reason",
    [
        (b"\xff\xfe not text", "not JSON"),
        (b"", "not JSON"),
        (b'{"backbone": "whisper-base", "ranked": [[0, 1]', "not JSON"),  # cut short
        (b"[[1, 3], [0, 1]]", "JSON list, not an object with the keys"),
        (b"null", "JSON NoneType, not an object"),
        (lambda d: _edited(d, counts=None), r"keys missing \['counts'\], unknown keys \[\]"),
        (lambda d: _edited(d, heads=[[0, 1]]), r"keys missing \[\], unknown keys \['heads'\]"),
        (lambda d: _edited(d, ranked=[[0, "1"]]), r"wrong type or shape of \['ranked'\]"),
        (lambda d: _edited(d, ranked=[[0, 1, 2]]), r"wrong type or shape of \['ranked'\]"),
        (lambda d: _edited(d, ranked="(1, 3)"), r"wrong type or shape of \['ranked'\]"),
        (lambda d: _edited(d, n_layers="2"), r"wrong type or shape of \['n_layers', 'counts', 'mean_lid_attention'\]"),
        (lambda d: _edited(d, counts=[[0] * 4]), r"wrong type or shape of \['counts'\]"),  # 1 of 2 layers
        (
            lambda d: _edited(d, mean_lid_attention=[[0.0] * 3] * 2),
            r"wrong type or shape of \['mean_lid_attention'\]",
        ),  # 3 of 4 heads
        (lambda d: _edited(d, backbone_sha256=None, sha256="ab" * 32), r"keys missing \['backbone_sha256'\]"),
    ],
)
def test_bad_lid_heads_file_names_the_file_and_what_was_expected(tmp_path, content, reason):
    path = tmp_path / "lid_heads.json"
    lid_heads([(1, 3), (0, 1)]).save(path)
    if callable(content):
        content = json.dumps(content(json.loads(path.read_text()))).encode()
    path.write_bytes(content)
    with pytest.raises(ValueError, match=rf"^{path} is not an LID-head file written by stage 4 .*: {reason}") as error:
        LidHeads.load(path, "ab" * 32, 2, 4)
    assert "select_heads" in str(error.value) and "re-run stage 4" in str(error.value)


def test_lid_heads_of_another_backbone_are_a_named_error(tmp_path):
    path = tmp_path / "lid_heads.json"
    wide = LidHeads(
        "whisper-small", "cd" * 32, 12, 12, [(11, 11)], [[1] * 12] * 12, [[0.5] * 12] * 12, 4, 4, 9, 0.1, 0.5
    )
    wide.save(path)
    with pytest.raises(ValueError, match=rf"^{path}: LID heads were found on the backbone with sha256 {'cd' * 32}"):
        LidHeads.load(path, "ab" * 32, 2, 4)
    # the same backbone identity but a larger decoder (a hand-edited or mislabelled file): still named
    with pytest.raises(
        ValueError,
        match=rf"^{path}: LID heads found on a decoder of 12 layers x 12 heads \(outside it: \[\(11, 11\)\]\) "
        "do not fit a decoder of 2 layers x 4 heads: re-run stage 4",
    ):
        LidHeads.load(path, "cd" * 32, 2, 4)


def test_attention_capture_matches_whisper_and_changes_nothing(tiny_whisper_path):
    from whisper.model import disable_sdpa

    dec = CSWhisperDecoder(51865, 64, whisper_model=str(tiny_whisper_path)).eval()
    tok = CSTokenizer()
    tokens = torch.tensor([[*tok.sot_sequence, *tok.encode("你好 ok")]])
    memory = torch.randn(1, 20, 64)
    plain = dec(memory, None, tokens, None)[0]
    with capture_attention(dec) as parts:
        captured = dec(memory, None, tokens, None)[0]
    attention = parts.in_batch_order(None, tokens.size(1))
    torch.testing.assert_close(captured, plain)
    assert sorted(attention) == [0, 1] and attention[1].shape == (1, 4, tokens.size(1), tokens.size(1))
    block = dec.decoders.blocks[0]
    x = dec.decoders.token_embedding(tokens) + dec.decoders.positional_embedding[: tokens.size(1)]
    with disable_sdpa():
        _, scores = block.attn(block.attn_ln(x), mask=dec.decoders.mask)
    torch.testing.assert_close(attention[0], scores.softmax(-1))
    assert not any(block.attn._forward_hooks for block in dec.decoders.blocks)


def test_captured_attention_is_in_batch_order_without_the_language_detection_pass(tiny_whisper_path):
    """Utterances of two encoder lengths: each one's attention equals its attention alone, and the
    language prompts' one-position detection pass is not mistaken for the teacher-forced one."""
    dec = CSWhisperDecoder(
        51865,
        64,
        whisper_model=str(tiny_whisper_path),
        soft_prompts={"length": 2, "language": True, "language_bottleneck": 4},
    ).eval()
    tok = CSTokenizer()
    tokens = torch.tensor([[*tok.sot_sequence, *tok.encode("你好 ok")]] * 3)
    hlens = torch.tensor([30, 20, 30])
    memory = torch.randn(3, 30, 64) * (torch.arange(30)[None, :, None] < hlens[:, None, None])
    positions = 2 + tokens.size(1)
    with torch.no_grad(), capture_attention(dec) as parts:
        dec(memory, hlens, tokens, None)
    attention = parts.in_batch_order(hlens, positions)
    assert attention[1].shape == (3, 4, positions, positions)
    for i in range(3):
        with torch.no_grad(), capture_attention(dec) as alone:
            dec(memory[i : i + 1, : hlens[i]], None, tokens[i : i + 1], None)
        for layer, probs in alone.in_batch_order(None, positions).items():
            torch.testing.assert_close(attention[layer][i], probs[0])


def test_attention_capture_refuses_cached_decoding(tiny_whisper_path):
    from espnet_cs.decoding import greedy_decode

    dec = CSWhisperDecoder(51865, 64, whisper_model=str(tiny_whisper_path)).eval()
    with torch.no_grad(), capture_attention(dec), pytest.raises(RuntimeError, match="not cached decoding"):
        greedy_decode(dec, torch.randn(1, 30, 64), CSTokenizer())


def test_attention_report_names_a_bad_lid_heads_file(tiny_whisper_path, tmp_path):
    from espnet_cs.bin import attention_report

    (tmp_path / "utt2category").write_text("u1 cs\n")
    heads = tmp_path / "lid_heads.json"
    heads.write_text('{"ranked": [[0, 1]')  # cut short
    argv = ["--data_dir", str(tmp_path), "--lid_heads", str(heads), "--system", "backbone"]
    argv += ["--whisper_model", str(tiny_whisper_path), "--out_dir", str(tmp_path / "out")]
    with pytest.raises(SystemExit, match=rf"^attention_report.py: backbone: {heads} is not an LID-head file"):
        attention_report.main(argv)
    lid_heads([(0, 1)]).save(heads)  # found on another backbone
    with pytest.raises(SystemExit, match=rf"^attention_report.py: backbone: {heads}: LID heads were found on"):
        attention_report.main(argv)
    assert not (tmp_path / "out").exists()


def test_guided_soft_prompts_read_the_lid_columns_behind_the_prompts_and_train_only_the_prompts(
    tiny_whisper_path, tmp_path
):
    """``spt4asr_ag``: SPT4ASR's prompts (deep, residual, language) with the guidance loss. The
    loss's LID columns and word rows are where the decoder put those tokens behind its prompts, its
    gradient reaches the prompts, and a training step leaves the frozen backbone as it was."""
    heads = lid_heads_file(tiny_whisper_path, tmp_path)
    argv = ["--config", str(CONF / "spt4asr_ag.yaml"), "--whisper_model", str(tiny_whisper_path)]
    args = CSASRTask.get_parser().parse_args([*argv, "--model_conf", f"{{guidance: {{lid_heads: {heads}}}}}"])
    model = CSASRTask.build_model(args)
    assert not args.use_adapter  # soft prompts only, as in spt4asr
    freeze(model, args.freeze_param)
    n, dec, tok = model.decoder.soft_prompts.length, model.decoder.decoders, model.tokenizer
    assert n == 75 and model.guidance.heads == [(1, 0), (1, 1)]  # the top 60% of the 4 ranked LID heads
    data = batch(model, torch.float32)
    text, text_lengths = data["text"], data["text_lengths"]

    inputs, _ = model.teacher_forcing(text, text_lengths)
    seen = []
    hook = dec.blocks[0].attn_ln.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    with torch.no_grad():
        model.decoder(torch.randn(2, 30, 64), None, inputs, None)  # one pass over every utterance
    hook.remove()
    (x,) = [states for states in seen if states.size(1) == n + inputs.size(1)]  # not the language detection
    torch.testing.assert_close(x[:, n:], dec.token_embedding(inputs) + dec.positional_embedding[n : x.size(1)])
    words = WordRows.of_targets(tok, text, text_lengths, n)  # what the loss reads
    assert (inputs[:, words.zh_column - n] == tok.language_token_ids["zh"]).all()
    assert (inputs[:, words.en_column - n] == tok.language_token_ids["en"]).all()
    targets = [t[:length].tolist() for t, length in zip(text, text_lengths)]
    word_tokens = [
        i for ids in targets for i, tag in zip(ids, tok.language_tags(ids)) if tag in (Language.ZH, Language.EN)
    ]
    assert inputs[words.batch, words.rows + 1 - n].tolist() == word_tokens  # each word row outputs the next column

    memory, memory_lengths, _ = model.encoder(data["speech"], data["speech_lengths"])
    with model.guidance.capture(model.decoder) as captured:
        model.decoder(memory, memory_lengths, inputs, None)
    guidance = model.guidance.loss(captured, memory_lengths, text, text_lengths, n)
    guidance.backward()
    prompts = model.decoder.soft_prompts.vectors
    assert torch.isfinite(guidance) and guidance > 0
    assert torch.isfinite(prompts.grad).all() and prompts.grad.abs().sum() > 0

    model.zero_grad()
    backbone = {k: p.detach().clone() for k, p in model.named_parameters() if k.startswith(BACKBONE_PREFIXES)}
    before = prompts.detach().clone()
    loss, stats, _ = model(**data)
    assert torch.isfinite(stats["loss_guidance"]) and stats["loss_guidance"] > 0
    loss.backward()
    torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3).step()
    assert not torch.equal(prompts, before)
    params = dict(model.named_parameters())
    assert all(torch.equal(params[k], value) for k, value in backbone.items()), "the frozen backbone changed"
