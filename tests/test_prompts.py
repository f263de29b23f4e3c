"""Soft prompts: the variants, their insertion into the Whisper encoder and decoder, and the KV cache (tiny Whisper)."""

import pytest
import torch

from espnet_cs.config_yaml import ConfigError
from espnet_cs.decoder import CSWhisperDecoder
from espnet_cs.decoding import greedy_decode
from espnet_cs.encoder import CSWhisperEncoder
from espnet_cs.methods import methods
from espnet_cs.prompts import PromptConfig, SoftPrompts
from espnet_cs.prompts.initialization import previous_text_states
from espnet_cs.prompts.language import detect_language
from espnet_cs.prompts.reparameterization import REPARAMETERIZATIONS
from espnet_cs.task import CSASRTask, build_trainable_model
from espnet_cs.tokenizer import CSTokenizer

D_MODEL, LAYERS = 64, 2


def parts(path, encoder_prompts=None, decoder_prompts=None):
    torch.manual_seed(0)
    encoder = CSWhisperEncoder(whisper_model=str(path), pad_to_30s=False, soft_prompts=encoder_prompts).eval()
    decoder = CSWhisperDecoder(51865, D_MODEL, whisper_model=str(path), soft_prompts=decoder_prompts).eval()
    return encoder, decoder


def test_prompt_shapes_and_deep_sets():
    vanilla = SoftPrompts(PromptConfig(length=5), LAYERS, D_MODEL)
    deep = SoftPrompts(PromptConfig(length=5, deep=True), LAYERS, D_MODEL)
    assert vanilla(3).shape == (1, 3, 5, D_MODEL) and deep(3).shape == (LAYERS, 3, 5, D_MODEL)
    x = torch.zeros(3, 4, D_MODEL)
    entered = [
        deep.enter(deep.enter(x, 0, deep(3)), 1, deep(3)),
        vanilla.enter(vanilla.enter(x, 0, vanilla(3)), 1, vanilla(3)),
    ]
    assert all(e.shape == (3, 5 + 4, D_MODEL) for e in entered)
    torch.testing.assert_close(entered[0][:, :5], deep(3)[1])  # deep: block 1 gets its own set
    torch.testing.assert_close(entered[1][:, :5], vanilla(3)[0])  # vanilla: only block 0 gets prompts
    assert [deep.unread_outputs(i, LAYERS, kept_in_output=True) for i in range(LAYERS)] == [5, 0]
    assert [deep.unread_outputs(i, LAYERS, kept_in_output=False) for i in range(LAYERS)] == [5, 5]
    assert [vanilla.unread_outputs(i, LAYERS, kept_in_output=True) for i in range(LAYERS)] == [0, 0]
    assert [vanilla.unread_outputs(i, LAYERS, kept_in_output=False) for i in range(LAYERS)] == [0, 5]
    none = SoftPrompts(PromptConfig(), LAYERS, D_MODEL)
    assert none(3) is None and none.enter(x, 0, none(3)) is x and not list(none.parameters())


@pytest.mark.parametrize("key", sorted(REPARAMETERIZATIONS))
def test_every_reparameterization_starts_as_identity_and_folds_exactly(key):
    """The extension point: a registered reparameterization is switched on by its config key."""
    prompts = SoftPrompts(PromptConfig.from_dict({"length": 5, "deep": True, key: 8}, "test"), LAYERS, D_MODEL)
    assert isinstance(prompts.reparameterization, REPARAMETERIZATIONS[key])
    torch.testing.assert_close(prompts(2), prompts.vectors.unsqueeze(1).expand(-1, 2, -1, -1))  # starts as identity
    for p in prompts.reparameterization.parameters():  # as after training
        torch.nn.init.normal_(p)
    expected = prompts(2)
    assert not torch.allclose(expected, prompts.vectors.unsqueeze(1).expand_as(expected))
    n_before = sum(p.numel() for p in prompts.parameters())
    prompts.fold()
    torch.testing.assert_close(prompts(2), expected)
    assert getattr(prompts.config, key) == 0 and prompts.reparameterization is None
    assert sum(p.numel() for p in prompts.parameters()) == LAYERS * 5 * D_MODEL < n_before


# Which parameters of the residual MLP the first backward reaches (nonzero gradient), by how it starts.
FIRST_GRADIENTS = {
    "zero_gain": {"norm.weight", "norm.bias"},
    "zero_last": {"mlp.2.weight", "mlp.2.bias", "norm.bias"},
}


@pytest.mark.parametrize("start", sorted(FIRST_GRADIENTS))
def test_residual_start_is_the_identity_and_decides_where_the_first_gradient_goes(start):
    conf = {"length": 5, "deep": True, "residual_bottleneck": 8, "residual_start": start}
    prompts = SoftPrompts(PromptConfig.from_dict(conf, "test"), LAYERS, D_MODEL)
    out = prompts(2)
    torch.testing.assert_close(out, prompts.vectors.unsqueeze(1).expand(-1, 2, -1, -1), rtol=0, atol=0)
    (out * torch.randn_like(out)).sum().backward()
    reached = {n for n, p in prompts.reparameterization.named_parameters() if p.grad.abs().sum() > 0}
    assert reached == FIRST_GRADIENTS[start] and prompts.vectors.grad.abs().sum() > 0
    prompts.fold()
    assert prompts.config.residual_start == "zero_gain" and prompts.config.residual_bottleneck == 0


def test_language_encoder_shifts_by_language_and_starts_neutral():
    embeddings = torch.randn(2, D_MODEL)
    prompts = SoftPrompts(
        PromptConfig(length=3, language=True, language_bottleneck=4), LAYERS, D_MODEL, language_embeddings=embeddings
    )
    zh, en = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    torch.testing.assert_close(prompts(1, zh), prompts(1, en))  # zero-initialized output layer
    torch.nn.init.normal_(prompts.language.mlp[2].weight)
    assert not torch.allclose(prompts(1, zh), prompts(1, en))
    with pytest.raises(ValueError, match="language distribution"):
        prompts(1)


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"length": -1}, ">= 0"),
        ({"deep": True}, "need length > 0"),
        ({"size": 3}, "unknown option"),
        ({"length": 2, "residual_bottleneck": -1}, ">= 0"),
        ({"length": 2, "residual_start": "zero_last"}, r"\['residual_start'\] only apply with residual_bottleneck > 0"),
        ({"length": 2, "residual_bottleneck": 4, "residual_start": "zero"}, "residual_start must be one of"),
        ({"init_text": "你好 hello"}, "init_text prompts need length > 0"),
    ],
)
def test_bad_prompt_config(bad, message):
    with pytest.raises(ValueError, match=message):
        PromptConfig.from_dict(bad, "test")


def test_encoder_prompts_prepend_positions(tiny_whisper_path):
    encoder, _ = parts(tiny_whisper_path, {"length": 7, "deep": True})
    states, lens, _ = encoder(0.1 * torch.randn(2, 16000), torch.tensor([16000, 12000]))
    assert states.shape == (2, 7 + 50, D_MODEL) and lens.tolist() == [57, 57]
    with pytest.raises(ValueError, match="decoder-only"):
        parts(tiny_whisper_path, {"length": 2, "language": True})


@pytest.mark.parametrize(
    "conf",
    [
        {"length": 6},
        {"length": 6, "deep": True, "residual_bottleneck": 8},
        {"length": 6, "deep": True, "language": True, "language_bottleneck": 4},
    ],
)
def test_decoder_prompts_work_with_the_kv_cache(tiny_whisper_path, conf):
    encoder, decoder = parts(tiny_whisper_path, None, conf)
    for p in decoder.soft_prompts.parameters():
        torch.nn.init.normal_(p, std=0.5)
    memory, _, _ = encoder(0.1 * torch.randn(2, 16000), torch.tensor([16000, 16000]))
    tok = CSTokenizer()
    tokens = torch.tensor([[*tok.sot_sequence, *tok.encode("你好 hello")]] * 2)
    full, _ = decoder(memory, None, tokens, None)
    assert full.shape == (2, tokens.size(1), 51865)
    prompts = decoder.prompt_states(memory)
    with decoder.kv_cache() as cache:
        steps = [decoder.logits(tokens[:, :5], memory, prompts, cache)]
        steps += [decoder.logits(tokens[:, t : t + 1], memory, None, cache) for t in range(5, tokens.size(1))]
        assert decoder.cached_tokens(cache) == tokens.size(1)
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-4, rtol=1e-4)
    logp, states = decoder.batch_score(tokens[:, :-1], [None, None], memory)
    logp, _ = decoder.batch_score(tokens, states, memory)
    torch.testing.assert_close(logp, full[:, -1].log_softmax(-1), atol=1e-4, rtol=1e-4)
    assert len(greedy_decode(decoder, memory, tok)) == 2


@pytest.mark.parametrize(("conf", "mlp_rows"), [({"length": 6}, [6 + 7, 7]), ({"length": 6, "deep": True}, [7, 7])])
def test_decoder_computes_no_prompt_output_that_goes_unread(tiny_whisper_path, monkeypatch, conf, mlp_rows):
    """Only the tokens' outputs leave the decoder, and deep prompts replace the prompt positions at
    every block: the feed-forward runs on the prompt rows only where a later block reads them;
    logits and gradients equal computing every position."""
    encoder, decoder = parts(tiny_whisper_path, None, conf)
    decoder.train()
    with torch.no_grad():
        memory, _, _ = encoder(0.1 * torch.randn(2, 16000), torch.tensor([16000, 16000]))
    tok = CSTokenizer()
    tokens = torch.tensor([[*tok.sot_sequence, *tok.encode("你好 hello")]] * 2)
    assert tokens.size(1) == 7
    rows = []
    for block in decoder.decoders.blocks:
        block.mlp.register_forward_hook(lambda module, args, output: rows.append(args[0].size(1)))

    def logits_and_gradient():
        decoder.zero_grad()
        logits, _ = decoder(memory, None, tokens, None)
        logits.logsumexp(-1).sum().backward()
        return logits.detach(), decoder.soft_prompts.vectors.grad.clone()

    logits, gradient = logits_and_gradient()
    assert rows == mlp_rows
    rows.clear()
    monkeypatch.setattr(decoder.soft_prompts, "unread_outputs", lambda *args, **kwargs: 0)
    every_position, every_gradient = logits_and_gradient()
    assert rows == [6 + 7, 6 + 7]
    torch.testing.assert_close(logits, every_position, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(gradient, every_gradient, atol=1e-5, rtol=1e-4)


def test_language_detection_and_the_teacher_forced_pass_share_the_cross_attention_projections(tiny_whisper_path):
    encoder, decoder = parts(tiny_whisper_path, None, {"length": 3, "language": True, "language_bottleneck": 4})
    memory, _, _ = encoder(0.1 * torch.randn(2, 16000), torch.tensor([16000, 16000]))
    tok = CSTokenizer()
    tokens = torch.tensor([[*tok.sot_sequence, *tok.encode("你好 hello")]] * 2)
    projected = []
    for block in decoder.decoders.blocks:
        block.cross_attn.key.register_forward_hook(lambda module, args, output: projected.append(args[0].size(1)))
    shared, _ = decoder(memory, None, tokens, None)
    assert projected == [memory.size(1)] * LAYERS  # once per block, not again for language detection
    separate = decoder.logits(tokens, memory, decoder.prompt_states(memory))
    assert len(projected) == 3 * LAYERS
    torch.testing.assert_close(shared, separate)


def test_language_detection_is_a_zh_en_distribution(tiny_whisper_path):
    encoder, decoder = parts(tiny_whisper_path)
    memory, _, _ = encoder(0.1 * torch.randn(3, 16000), torch.tensor([16000] * 3))
    lid = detect_language(decoder.decoders, memory, decoder.sot, decoder.lid_tokens)
    assert lid.shape == (3, 2)
    torch.testing.assert_close(lid.sum(-1), torch.ones(3))


# A code-switched previous text (spt4asr_init_text.yaml takes two of the text generator's training utterances).
PREVIOUS_TEXT = "等我 sign 完这个设计再说 lor i have to rename my document before the briefing"


def test_decoder_prompts_start_as_the_given_previous_text(tiny_whisper_path):
    """``init_text``: <|startofprev|> and the text's last length - 1 tokens, whatever the seed; by default
    random frequent tokens, which follow the seed."""
    conf = {"length": 6, "deep": True, "init_text": PREVIOUS_TEXT, "init_std": 0.0}
    _, decoder = parts(tiny_whisper_path, None, conf)
    whisper_tokenizer = CSTokenizer().whisper
    tokens = torch.tensor([whisper_tokenizer.sot_prev, *whisper_tokenizer.encode(" " + PREVIOUS_TEXT)[-5:]])
    vectors = decoder.soft_prompts.vectors
    assert vectors.shape == (LAYERS, 6, D_MODEL)
    torch.testing.assert_close(vectors[0], decoder.decoders.token_embedding.weight[tokens], rtol=0, atol=0)
    torch.testing.assert_close(vectors, previous_text_states(decoder.decoders, tokens), rtol=0, atol=0)
    torch.manual_seed(1)
    again = CSWhisperDecoder(51865, D_MODEL, whisper_model=str(tiny_whisper_path), soft_prompts=conf)
    torch.testing.assert_close(again.soft_prompts.vectors, vectors, rtol=0, atol=0)
    frequent = {**conf, "init_text": ""}
    first, second = (parts(tiny_whisper_path, None, frequent)[1] for _ in range(2))
    torch.testing.assert_close(first.soft_prompts.vectors, second.soft_prompts.vectors, rtol=0, atol=0)
    torch.manual_seed(1)
    other_seed = CSWhisperDecoder(51865, D_MODEL, whisper_model=str(tiny_whisper_path), soft_prompts=frequent)
    assert not torch.equal(other_seed.soft_prompts.vectors, first.soft_prompts.vectors)
    with pytest.raises(ConfigError, match="init_text has 1 tokens, length 6 needs 5"):
        parts(tiny_whisper_path, None, {**conf, "init_text": "hello"})
    with pytest.raises(ConfigError, match="init_text is decoder-only"):
        parts(tiny_whisper_path, {"length": 2, "init_text": PREVIOUS_TEXT})


def weight_decay_of_trainable(name, tiny_whisper_path, *options):
    """{parameter name: weight decay} of what the optimizer of the method YAML ``name`` trains."""
    argv = ["--config", str(methods()[name].config), "--whisper_model", str(tiny_whisper_path), *options]
    args = CSASRTask.get_parser().parse_args(argv)
    model = build_trainable_model(args)
    (optimizer,) = CSASRTask.build_optimizers(args, model)
    decay = {id(p): group["weight_decay"] for group in optimizer.param_groups for p in group["params"]}
    return {n: decay[id(p)] for n, p in model.named_parameters() if p.requires_grad}


def test_prompt_vectors_alone_train_without_weight_decay(tiny_whisper_path):
    default = torch.optim.AdamW([torch.zeros(1)]).defaults["weight_decay"]
    assert set(weight_decay_of_trainable("spt4asr", tiny_whisper_path).values()) == {default}
    decay = weight_decay_of_trainable("spt4asr_no_prompt_decay", tiny_whisper_path)
    exempt = {n for n, d in decay.items() if d == 0.0}
    assert exempt == {"encoder.soft_prompts.vectors", "decoder.soft_prompts.vectors"}
    assert {decay[n] for n in decay.keys() - exempt} == {default}
    usual = weight_decay_of_trainable(  # ESPnet's defaults: biases and normalization parameters too
        "spt4asr_no_prompt_decay", tiny_whisper_path, "--exclude_weight_decay_conf", "bias_weight_decay=false"
    )
    assert {n for n, d in usual.items() if d == 0.0} == exempt | {n for n in usual if n.endswith("bias")}
    with pytest.raises(ConfigError, match=r"exclude_weight_decay_conf: unknown option\(s\) \['bias_decay'\]"):
        weight_decay_of_trainable(
            "spt4asr_no_prompt_decay", tiny_whisper_path, "--exclude_weight_decay_conf", "bias_decay=false"
        )
