"""Every Whisper size: its widths, heads, mel bins and vocabulary, with one encoder and two decoder layers.

Random models of each size's shape (``n_state``, ``n_head``, ``n_mels``, ``n_vocab`` of
:func:`espnet_cs.backbone.whisper_dims`) but 1 encoder and 2 decoder layers (layer 1 is the first
guidable one), so that large sizes fit a CPU test: a training step with every extension at once
(deep + residual + language prompts, adapters, LoRA, attention guidance), full fine-tuning up to
``small``, greedy decoding of 1 s, LID-head statistics, and the tokenizer of the vocabulary.
Reduced to these layers, large-v3-turbo is large-v3 (they differ only in decoder layers); its
full decoder shape (4 layers) enters the head statistics on synthetic attention.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import asdict, replace
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
import whisper
from whisper.model import ModelDimensions

from espnet_cs.attention_analysis import collect_head_statistics
from espnet_cs.backbone import WHISPER_SIZES as SIZES
from espnet_cs.backbone import whisper_dims
from espnet_cs.bin import param_count
from espnet_cs.decoding import DecodingConfig, Transcriber
from espnet_cs.guidance.heads import FIRST_GUIDABLE_LAYER, LidHeads, lid_head_statistics, rank_lid_heads, select
from espnet_cs.guidance.rows import WordRows
from espnet_cs.model import CSWhisperModel
from espnet_cs.task import CSASRTask, build_trainable_model
from espnet_cs.tokenizer import CSTokenizer

CONF = Path(__file__).resolve().parents[1] / "conf" / "tuning"
REDUCED = {"n_audio_layer": 1, "n_text_layer": 2}
REDUCED_SIZES = tuple(s for s in SIZES if s != "large-v3-turbo")  # reduced, turbo is large-v3
FFT_SIZES = ("tiny", "base", "small")  # a full backward through medium and large costs minutes on 2 cores
TEXTS = ["这个 project 的 deadline", "can you 帮我 check 一下"]
EVERY_EXTENSION = {  # on top of spt4asr.yaml (prompts): adapters, LoRA (lora.yaml's) and guidance
    "--encoder_conf": "{adapters: {bottleneck: 192, placement: [attn, mlp]}}",
    "--decoder_conf": "{adapters: {bottleneck: 192, placement: [attn, mlp]}}",
    "--use_adapter": "true",
    "--adapter": "lora",
    "--adapter_conf": "{rank: 16, alpha: 32, dropout_rate: 0.0, target_modules: [query, key, value, out], bias_type: none}",
}


def reduced_whisper(dims: ModelDimensions, seed: int = 0) -> whisper.model.Whisper:
    """A random Whisper of ``dims``, special-token embeddings zeroed (greedy decoding never ends early)."""
    torch.manual_seed(seed)
    model = whisper.model.Whisper(dims)
    with torch.no_grad():
        model.decoder.positional_embedding.normal_()  # openai-whisper leaves it uninitialized (torch.empty)
        model.decoder.token_embedding.weight[CSTokenizer.for_vocab(dims.n_vocab).eot :] = 0
    return model


@pytest.fixture(scope="module", params=REDUCED_SIZES)
def size(request, tmp_path_factory) -> Iterator[tuple[str, Path, ModelDimensions]]:
    """(size name, checkpoint path, its reduced dims); the checkpoint (up to 0.6 GB) is removed after its tests."""
    dims = replace(whisper_dims(request.param), **REDUCED)
    path = tmp_path_factory.mktemp(request.param) / "whisper.pt"
    torch.save({"dims": asdict(dims), "model_state_dict": reduced_whisper(dims).state_dict()}, path)
    yield request.param, path, dims
    path.unlink()


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    (root / "wav.scp").write_text("".join(f"u{i} {root}/u{i}.wav\n" for i in range(len(TEXTS))))
    (root / "text").write_text("".join(f"u{i} {t}\n" for i, t in enumerate(TEXTS)), encoding="utf-8")
    for i in range(len(TEXTS)):
        sf.write(root / f"u{i}.wav", (0.1 * rng.standard_normal(16000)).astype(np.float32), 16000)
    return root


def lid_heads_file(path: Path, dims: ModelDimensions) -> Path:
    """``lid_heads.json`` next to the checkpoint ``path``, ranking every head of decoder layer 1."""
    layers, heads = dims.n_text_layer, dims.n_text_head
    out = path.with_name("lid_heads.json")
    LidHeads(
        str(path),
        hashlib.sha256(path.read_bytes()).hexdigest(),
        layers,
        heads,
        [(1, h) for h in range(heads)],
        [[int(layer == 1)] * heads for layer in range(layers)],
        [[0.5] * heads for _ in range(layers)],
        1,
        1,
        1,
        0.0,
        0.5,
    ).save(out)
    return out


def build(method: str, path: Path, *extra: str) -> CSWhisperModel:
    """The model training builds from ``method``'s YAML and ``extra`` options (LoRA added, backbone frozen)."""
    args = CSASRTask.get_parser().parse_args(
        ["--config", str(CONF / f"{method}.yaml"), "--whisper_model", str(path), *extra]
    )
    return build_trainable_model(args)


def training_step(model: CSWhisperModel) -> tuple[torch.Tensor, dict[str, torch.Tensor], tuple[int, ...]]:
    """Loss and stats of one forward + backward over 1 s and 0.7 s of noise; the shape of the encoder's mel input."""
    ids = [model.tokenizer.encode_target(t) for t in TEXTS]
    text = torch.full((len(ids), max(map(len, ids))), -1)
    for i, t in enumerate(ids):
        text[i, : len(t)] = torch.tensor(t)
    mel_shapes = []
    hook = model.encoder.encoders.conv1.register_forward_hook(lambda _m, args, _o: mel_shapes.append(args[0].shape))
    loss, stats, _ = model.train()(
        0.1 * torch.randn(2, 16000), torch.tensor([16000, 11200]), text, torch.tensor(list(map(len, ids)))
    )
    hook.remove()
    loss.backward()
    return loss, stats, tuple(mel_shapes[0])


def test_every_extension_trains_decodes_and_collects_head_statistics(size, data_dir):
    name, path, dims = size
    options = [x for item in EVERY_EXTENSION.items() for x in item]
    guidance = f"{{guidance: {{lid_heads: {lid_heads_file(path, dims)}, weight: 1.0, target: 0.5}}}}"
    model = build("spt4asr", path, *options, "--model_conf", guidance)

    loss, stats, mel_shape = training_step(model)
    assert mel_shape == (2, dims.n_mels, 100), f"{name}: the encoder got {mel_shape[1]} mel bins"
    assert torch.isfinite(loss) and stats["loss_guidance"] > 0
    grads = {k: p.grad for k, p in model.named_parameters() if p.requires_grad}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    for part in ("encoder.soft_prompts.", "decoder.soft_prompts.language.", "adapters.", "lora_B"):
        assert any(part in k and g.abs().sum() > 0 for k, g in grads.items()), f"{name}: {part} gets no gradient"

    audio = 0.1 * np.random.default_rng(1).standard_normal(16000)
    hyps = Transcriber.from_model(model, DecodingConfig(max_new_tokens=3))([audio])
    assert len(hyps[0].tokens) == 3 and all(t < model.tokenizer.eot for t in hyps[0].tokens)

    stats = collect_head_statistics(model, data_dir, batch_size=2, settings={})
    assert stats.counts.shape == (dims.n_text_layer, dims.n_text_head) and stats.word_tokens > 0


@pytest.mark.parametrize("size", FFT_SIZES, indirect=True)
def test_full_fine_tuning_trains_every_weight(size):
    model = build("fft", size[1])
    loss, _, _ = training_step(model)
    assert torch.isfinite(loss)
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    assert all(p.requires_grad for p in model.parameters())


@pytest.mark.parametrize("name", SIZES)
def test_head_statistics_of_the_full_decoder_shape(name):
    dims = whisper_dims(name)
    tokenizer = CSTokenizer.for_vocab(dims.n_vocab)
    text = torch.tensor([tokenizer.encode_target(TEXTS[0])])
    words = WordRows.of_targets(tokenizer, text, torch.tensor([text.size(1)]), 0)
    positions = len(tokenizer.sot_sequence) + text.size(1)
    torch.manual_seed(0)
    attention = {
        layer: torch.randn(1, dims.n_text_head, positions, positions).softmax(-1) for layer in range(dims.n_text_layer)
    }
    counts, shares = lid_head_statistics(attention, words, 1)
    assert counts.shape == shares.shape == (1, dims.n_text_layer, dims.n_text_head)
    ranked = rank_lid_heads(counts[0], shares[0], len(words.rows), 0.0)
    assert ranked and all(FIRST_GUIDABLE_LAYER <= layer < dims.n_text_layer for layer, _ in ranked)
    chosen = select(ranked, "random", 0.5, dims.n_text_layer, dims.n_text_head)
    assert len(chosen) == round(0.5 * (dims.n_text_layer - FIRST_GUIDABLE_LAYER) * dims.n_text_head)


@pytest.mark.parametrize("n_vocab, num_languages", [(51865, 99), (51866, 100)])
def test_special_token_ids_follow_the_vocabulary(n_vocab, num_languages):
    ours = CSTokenizer.for_vocab(n_vocab)
    theirs = whisper.tokenizer.get_tokenizer(multilingual=True, num_languages=num_languages)
    assert ours.vocab_size == theirs.encoding.n_vocab == n_vocab
    special = theirs.special_tokens
    names = ["<|startoftranscript|>", "<|zh|>", "<|en|>", "<|transcribe|>", "<|notimestamps|>"]
    assert ours.sot_sequence == tuple(special[t] for t in names)
    assert ours.whisper.sot_prev == special["<|startofprev|>"] == theirs.sot_prev
    assert ours.eot == theirs.eot == 50257
    assert {theirs.transcribe, theirs.translate, theirs.sot_prev, theirs.no_speech} <= set(ours.suppress_tokens)
    shift = num_languages - 99  # large-v3's <|yue|> moves every later special token by one
    assert ours.sot_sequence == (50258, 50260, 50259, 50359 + shift, 50363 + shift)
    assert ours.whisper.sot_prev == 50361 + shift


def test_param_count_lists_every_size(tmp_path, capsys):
    for method in ("spt4asr", "dpt", "respt", "lpt"):  # spt4asr and the methods it combines
        (tmp_path / f"{method}.yaml").write_text((CONF / f"{method}.yaml").read_text())
    param_count.main(["--conf_dir", str(tmp_path), "--models", "all"])
    header, _, *rows = capsys.readouterr().out.splitlines()
    (row,) = [r for r in rows if r.startswith("| spt4asr |")]
    assert header.split(" | ")[1 : 1 + len(SIZES)] == [f"{s} trainable" for s in SIZES]
    expected = [f"{param_count.count(tmp_path / 'spt4asr.yaml', s)[0] / 1e6:.3f}M" for s in SIZES]
    assert row.split(" | ")[1 : 1 + len(SIZES)] == expected
    assert expected[-1] != expected[-2], "large-v3-turbo's 4 decoder layers hold fewer deep prompts than large-v3's 32"
