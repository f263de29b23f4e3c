"""Encoder, decoder (KV cache, ESPnet scorer) and greedy decoding against plain openai-whisper, on a tiny Whisper."""

import pytest
import torch
import whisper
from conftest import audio_batch, padded
from whisper.decoding import DecodingOptions, DecodingTask, PyTorchInference

from espnet_cs.decoder import CSWhisperDecoder
from espnet_cs.decoding import (
    DecodingConfig,
    Hypothesis,
    RepetitionGuard,
    Transcriber,
    apply_guard,
    greedy_decode,
    guard_cut,
    keep_rows_,
)
from espnet_cs.encoder import CSWhisperEncoder
from espnet_cs.model import CSWhisperModel
from espnet_cs.tokenizer import CSTokenizer


@pytest.fixture(scope="module")
def parts(tiny_whisper_path):
    spec = str(tiny_whisper_path)
    encoder = CSWhisperEncoder(whisper_model=spec).eval()
    decoder = CSWhisperDecoder(51865, encoder.output_size(), whisper_model=spec).eval()
    reference = whisper.load_model(spec, device="cpu").eval()
    return encoder, decoder, reference


def reference_mel(audio):
    return whisper.log_mel_spectrogram(whisper.pad_or_trim(torch.from_numpy(audio)))


def test_vocab_mismatch_is_an_error(tiny_whisper_path):
    with pytest.raises(ValueError, match="vocabulary 51865"):
        CSWhisperDecoder(5000, 64, whisper_model=str(tiny_whisper_path))


def test_decoder_logits_equal_whisper_and_cache_equals_recompute(parts):
    encoder, decoder, reference = parts
    memory, _, _ = encoder(*padded(audio_batch()))
    tok = CSTokenizer()
    tokens = torch.tensor([[*tok.sot_sequence, *tok.encode("你好 hello 世界")]] * 2)
    full, _ = decoder(memory, None, tokens, None)
    torch.testing.assert_close(full, reference.decoder(tokens, memory))
    with decoder.kv_cache() as cache:
        steps = [decoder.logits(tokens[:, :5], memory, None, cache)]
        steps += [decoder.logits(tokens[:, t : t + 1], memory, None, cache) for t in range(5, tokens.size(1))]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, atol=1e-4, rtol=1e-4)
    assert not any(m._forward_hooks for m in decoder.modules())  # hooks removed


def test_decoding_layouts_give_the_same_logits(parts):
    """Head-major cross-attention keys/values change no value."""
    encoder, decoder, _ = parts
    memory, _, _ = encoder(*padded(audio_batch()))
    tokens = torch.tensor([[*CSTokenizer().sot_sequence, *CSTokenizer().encode("你好 hello")]] * 2)
    plain = decoder.cross_attention_kv(memory)
    head_major = decoder.cross_attention_kv(memory, heads_contiguous=True)
    n_head = decoder.decoders.blocks[0].cross_attn.n_head
    for module, states in head_major.items():
        assert states.shape == (2, memory.size(1), n_head, memory.size(2) // n_head)
        assert states.transpose(1, 2).is_contiguous()
        assert torch.equal(states.flatten(2), plain[module])
    expected = decoder.logits(tokens, memory, None, cross_kv=plain)
    assert torch.equal(decoder.logits(tokens, memory, None, cross_kv=head_major), expected)


def test_keep_rows_moves_rows_in_place():
    states = torch.arange(5 * 3 * 2, dtype=torch.float32).view(5, 3, 2)
    expected = states[[1, 3, 4]].clone()
    kept = keep_rows_(states, [1, 3, 4])
    assert torch.equal(kept, expected) and kept.data_ptr() == states.data_ptr() and kept.is_contiguous()
    assert torch.equal(keep_rows_(states, [0, 1, 2]), states[:3])  # nothing moves


def test_batch_score_states_continue_prefixes(parts):
    encoder, decoder, _ = parts
    memory, _, _ = encoder(*padded(audio_batch()))
    tok = CSTokenizer()
    ys = torch.tensor([[*tok.sot_sequence, *tok.encode("一二三")]] * 2)
    logp, states = decoder.batch_score(ys[:, :-1], [None, None], memory)
    logp2, _ = decoder.batch_score(ys, states, memory)
    expected = torch.log_softmax(decoder(memory, None, ys, None)[0][:, -1], dim=-1)
    torch.testing.assert_close(logp2, expected, atol=1e-4, rtol=1e-4)
    one, _ = decoder.score(ys[0], None, memory[0])
    torch.testing.assert_close(one, expected[0], atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize("task_tokens", ["zh", "zh_en"])
def test_greedy_equals_openai_whisper_decode(parts, task_tokens):
    encoder, decoder, reference = parts
    audios = audio_batch((1.0, 2.5, 0.7))
    tok = CSTokenizer(task_tokens)
    memory, _, _ = encoder(*padded(audios))
    # 64 new tokens (not 224): the random model never ends, and 64 steps show the cache works.
    ours = [d.tokens for d in greedy_decode(decoder, memory, tok, DecodingConfig(max_new_tokens=64))]
    options = DecodingOptions(language="zh", without_timestamps=True, fp16=False, sample_len=64)
    task = DecodingTask(reference, options)
    # openai-whisper has no two-LID task tokens option: give its decoding task ours.
    task.initial_tokens = tok.sot_sequence
    task.sample_begin = task.logit_filters[0].sample_begin = len(tok.sot_sequence)
    task.inference = PyTorchInference(reference, len(tok.sot_sequence))
    theirs = [r.tokens for r in task.run(torch.stack([reference_mel(a) for a in audios]))]
    assert ours == theirs
    assert all(len(set(tokens)) > 3 for tokens in ours), ours  # not a degenerate output


def test_guard_cuts_loops_and_budget():
    guard = RepetitionGuard(max_ngram=3, max_repeats=2, max_tokens_per_second=2.0, min_tokens=4)
    assert guard_cut([1, 2, 3, 4], seconds=10, guard=guard) is None
    # bigram (7 8) three times in a row: keep one copy
    assert guard_cut([1, 7, 8, 7, 8, 7, 8, 9], seconds=10, guard=guard) == 3
    assert guard_cut([5, 5, 5, 6], seconds=10, guard=guard) == 1
    # budget: 4 + 2 * 1 s = 6 tokens
    assert guard_cut(list(range(20)), seconds=1, guard=guard) == 6


def test_guarded_decoding_is_a_prefix_of_unguarded(parts):
    encoder, decoder, _ = parts
    tok = CSTokenizer()
    audios = audio_batch((1.0, 2.5))
    memory, _, _ = encoder(*padded(audios))
    seconds = [len(a) / 16000 for a in audios]
    guard = RepetitionGuard(max_tokens_per_second=3.0, min_tokens=2)
    free = [d.tokens for d in greedy_decode(decoder, memory, tok)]
    guarded = [d.tokens for d in greedy_decode(decoder, memory, tok, DecodingConfig(guard=guard), seconds)]
    for f, g, s in zip(free, guarded, seconds):
        assert f[: len(g)] == g and len(g) <= guard.token_budget(s)
        assert apply_guard(Hypothesis.from_tokens(f, tok), s, guard, tok).tokens == g
    with pytest.raises(ValueError, match="durations"):
        greedy_decode(decoder, memory, tok, DecodingConfig(guard=guard))


def test_dropping_finished_utterances_keeps_every_hypothesis(parts):
    """Utterances leave the batch (and the cache) when they end; the others decode on unchanged."""
    encoder, decoder, _ = parts
    tok = CSTokenizer("zh")
    audios = [a * gain for a, gain in zip(audio_batch((1.0, 2.5, 0.7, 1.6)), (0.1, 1.0, 5.0, 20.0))]
    memory, _, _ = encoder(*padded(audios))
    seconds = [len(a) / 16000 for a in audios]
    # Only the token budget cuts (2 + 4 tokens per second): the utterances end at different steps.
    guard = RepetitionGuard(max_ngram=1, max_repeats=1000, max_tokens_per_second=4.0, min_tokens=2)
    dropped = [d.tokens for d in greedy_decode(decoder, memory, tok, DecodingConfig(guard=guard), seconds)]
    kept_batch = greedy_decode(decoder, memory, tok, DecodingConfig(guard=guard, drop_finished=False), seconds)
    kept = [d.tokens for d in kept_batch]
    alone = [
        greedy_decode(decoder, memory[i : i + 1], tok, DecodingConfig(guard=guard), seconds[i : i + 1])[0].tokens
        for i in range(4)
    ]
    assert dropped == kept == alone
    assert [len(tokens) for tokens in dropped] == [6, 12, 4, 8]
    assert dropped[1][:8] != dropped[3]  # rows that outlive the dropped ones differ: a mix-up would show


def test_transcriber_returns_text_and_language_tags(tiny_whisper_path):
    transcriber = Transcriber.from_model(
        CSWhisperModel.from_backbone(str(tiny_whisper_path), "zh_en"), DecodingConfig(max_new_tokens=5)
    )
    hyps = transcriber(audio_batch())
    assert len(hyps) == 2
    for hyp in hyps:
        assert len(hyp.tokens) <= 5 and len(hyp.languages) == len(hyp.tokens)
        assert hyp.text == transcriber.tokenizer.decode(hyp.tokens)


def test_true_length_hypotheses_do_not_depend_on_batch_mates(tiny_whisper_path):
    """Batched and one-by-one decoding agree (the encoder's padding policy: tests/test_encoder.py)."""
    transcriber = Transcriber.from_model(
        CSWhisperModel.from_backbone(str(tiny_whisper_path), "zh_en", pad_to_30s=False),
        DecodingConfig(max_new_tokens=8),
    )
    audios = audio_batch((0.7, 2.3, 2.9, 1.0))
    together = transcriber(audios)
    alone = [transcriber([audio])[0] for audio in audios]
    assert [h.tokens for h in together] == [h.tokens for h in alone]
    assert [transcriber.encoder.padded_samples(len(a)) for a in audios] == [16000, 48000, 48000, 16000]


def test_decoding_before_training_names_the_missing_model_file(tmp_path):
    from espnet_cs.bin import decode

    model_file = tmp_path / "exp" / "spt4asr" / "valid.loss.ave.pth"
    argv = ["--data_dir", str(tmp_path), "--out_dir", str(tmp_path / "out")]
    argv += ["--asr_train_config", str(model_file.parent / "config.yaml"), "--asr_model_file", str(model_file)]
    with pytest.raises(
        SystemExit, match=f"^decode.py: model file {model_file} does not exist \\(did training finish\\?\\)"
    ):
        decode.main(argv)
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "options, served", [([], True), (["--serve_from_heap", "false"], False), (["--device", "cuda"], False)]
)
def test_decode_serves_tensors_from_the_heap_on_cpu_only(monkeypatch, tmp_path, options, served):
    from espnet_cs.bin import decode

    calls = []

    def stop(*args):
        raise RuntimeError("stop after the settings")

    monkeypatch.setattr(decode, "serve_from_heap", lambda: calls.append("heap"))
    monkeypatch.setattr(decode, "load_transcriber", stop)
    with pytest.raises(RuntimeError, match="stop after the settings"):
        decode.main(["--data_dir", str(tmp_path), "--out_dir", str(tmp_path / "out"), *options])
    assert calls == (["heap"] if served else [])
