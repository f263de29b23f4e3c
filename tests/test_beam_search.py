"""Beam search and loop control against openai-whisper's, on a tiny random Whisper.

Equality is set up by giving openai-whisper's ``DecodingTask`` our task tokens (it has no two-LID
option): its initial tokens, the first sampled position of its blank filter, and its key/value
cache inference object (which its beam search decoder holds too) are replaced. openai-whisper
decodes one audio at a time (its batched beam search cannot share one audio row among beams);
ours decodes the batch at once.
"""

import json
from dataclasses import asdict

import numpy as np
import pytest
import soundfile as sf
import torch
import whisper
from conftest import audio_batch, make_tiny_whisper, padded
from test_dtypes import METHODS, build, lid_heads  # noqa: F401 (fixture)
from whisper.decoding import DecodingOptions, DecodingTask, PyTorchInference

from espnet_cs.beam_search import beam_search_decode
from espnet_cs.bin import decode
from espnet_cs.decoder import CSWhisperDecoder
from espnet_cs.decoding import Transcriber, greedy_decode
from espnet_cs.encoder import CSWhisperEncoder
from espnet_cs.loop_control import Fallback, RepetitionGuard, guard_cut, repeated_ngram_tokens
from espnet_cs.model import CSWhisperModel
from espnet_cs.search import Decoded, DecodingConfig, best_candidate
from espnet_cs.tokenizer import CSTokenizer

SAMPLE_LEN = 24  # new tokens: some beams end before, some run to the limit


@pytest.fixture(scope="module")
def ending_whisper_path(tmp_path_factory):
    """The tiny Whisper with an end-of-text embedding that wins now and then, so beams finish."""
    model = make_tiny_whisper()
    with torch.no_grad():
        model.decoder.token_embedding.weight[CSTokenizer().eot] = (
            torch.randn(64, generator=torch.Generator().manual_seed(1)) * 1.15
        )
    path = tmp_path_factory.mktemp("ending_whisper") / "tiny.pt"
    torch.save({"dims": asdict(model.dims), "model_state_dict": model.state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def parts(ending_whisper_path):
    spec = str(ending_whisper_path)
    encoder = CSWhisperEncoder(whisper_model=spec).eval()
    decoder = CSWhisperDecoder(51865, encoder.output_size(), whisper_model=spec).eval()
    return encoder, decoder, whisper.load_model(spec, device="cpu").eval()


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One torch thread: these small models decode fastest so on a shared CPU."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def varied_audios() -> list[np.ndarray]:
    """Noise at different levels: the tiny model's hypotheses differ and end at different steps."""
    return [a * gain for a, gain in zip(audio_batch((1.0, 2.5, 0.7, 1.6)), (0.1, 1.0, 5.0, 20.0))]


def openai_whisper_decode(model, audio: np.ndarray, tokenizer: CSTokenizer, **options) -> list[int]:
    """``whisper.decode`` of one audio with ``tokenizer``'s task tokens."""
    task = DecodingTask(
        model, DecodingOptions(language="zh", without_timestamps=True, fp16=False, sample_len=SAMPLE_LEN, **options)
    )
    task.initial_tokens = tokenizer.sot_sequence
    task.sample_begin = task.logit_filters[0].sample_begin = len(tokenizer.sot_sequence)
    task.inference = task.decoder.inference = PyTorchInference(model, len(tokenizer.sot_sequence))
    mel = whisper.log_mel_spectrogram(whisper.pad_or_trim(torch.from_numpy(audio)))
    return task.run(mel[None])[0].tokens


@pytest.mark.parametrize(
    "task_tokens, beam_size, patience, length_penalty",
    [("zh_en", 4, None, None), ("zh", 3, 2.0, None), ("zh_en", 5, 1.5, 0.6), ("zh_en", 2, None, 1.0)],
)
def test_beam_search_equals_openai_whisper(parts, task_tokens, beam_size, patience, length_penalty):
    encoder, decoder, reference = parts
    tok = CSTokenizer(task_tokens)
    audios = varied_audios()
    memory, _, _ = encoder(*padded(audios))
    config = DecodingConfig(
        max_new_tokens=SAMPLE_LEN, beam_size=beam_size, patience=patience, length_penalty=length_penalty
    )
    ours = [d.tokens for d in beam_search_decode(decoder, memory, tok, config)]
    options = dict(beam_size=beam_size, patience=patience, length_penalty=length_penalty)
    theirs = [openai_whisper_decode(reference, audio, tok, **options) for audio in audios]
    assert ours == theirs
    assert any(len(tokens) < SAMPLE_LEN for tokens in ours), ours  # finished candidates, not only the limit


def test_beam_of_one_is_greedy(parts):
    encoder, decoder, _ = parts
    tok = CSTokenizer()
    memory, _, _ = encoder(*padded(audio_batch((1.0, 2.5, 0.7))))
    greedy = greedy_decode(decoder, memory, tok, DecodingConfig(max_new_tokens=SAMPLE_LEN))
    beam = beam_search_decode(decoder, memory, tok, DecodingConfig(max_new_tokens=SAMPLE_LEN, beam_size=1))
    assert [d.tokens for d in beam] == [d.tokens for d in greedy]


def test_finished_utterances_leave_the_batch(parts):
    """Each utterance's beam search does not depend on its batch mates."""
    encoder, decoder, _ = parts
    tok = CSTokenizer()
    memory, _, _ = encoder(*padded(varied_audios()))
    config = DecodingConfig(max_new_tokens=SAMPLE_LEN, beam_size=3)
    together = beam_search_decode(decoder, memory, tok, config)
    alone = [beam_search_decode(decoder, memory[i : i + 1], tok, config)[0] for i in range(4)]
    assert [d.tokens for d in together] == [d.tokens for d in alone]
    for t, a in zip(together, alone):
        assert t.sum_logprob == pytest.approx(a.sum_logprob, abs=1e-4)


def test_an_utterance_leaving_after_its_batch_mates_takes_its_cache_rows(parts, monkeypatch):
    """The last utterance ends while the first one's beams keep their rows: its rows leave the cache."""
    encoder, decoder, _ = parts
    tok = CSTokenizer()
    memory, _, _ = encoder(*padded(audio_batch((1.0, 2.5))))
    ending = memory[1, 0, 0]
    real_logits = decoder.logits

    def steered(tokens, memory, prompts, cache, beams=1):
        """Tokens 1000, 1001, ... ranked apart (five beams at the first step, each beam keeping its own
        best later); the ending utterance's end of text far ahead after the first step."""
        logits = real_logits(tokens, memory, prompts, cache, beams=beams)
        gap = 1.0 if tokens.size(1) > 1 else 20.0
        logits[...] = -100.0
        logits[..., 1000:1010] = -gap * torch.arange(10.0)
        if tokens.size(1) == 1:
            logits[(memory[:, 0, 0] == ending).repeat_interleave(beams), :, tok.eot] = 20.0
        return logits

    monkeypatch.setattr(decoder, "logits", steered)
    config = DecodingConfig(max_new_tokens=6, beam_size=5, suppress_tokens=False)
    together = beam_search_decode(decoder, memory, tok, config)
    alone = [beam_search_decode(decoder, memory[i : i + 1], tok, config)[0] for i in range(2)]
    assert [d.tokens for d in together] == [d.tokens for d in alone]
    assert len(together[1].tokens) == 1 and len(together[0].tokens) == 6


def test_best_candidate_is_openai_whispers_ranking():
    short, long = Decoded([1, 2], -2.0), Decoded([1, 2, 3, 4, 5, 6], -4.5)
    assert best_candidate([short, long], None) is long  # -0.75 per token against -1.0
    assert best_candidate([short, long], 0.0) is short  # no length penalty: the higher log-probability
    assert best_candidate([Decoded([1], -1.0), Decoded([2], -1.0)], None).tokens == [1]  # ties: the first


def test_repeated_ngram_tokens():
    assert repeated_ngram_tokens([5, 6, 7, 5, 6], 3) == {7}
    assert repeated_ngram_tokens([5, 6, 7, 5, 6], 2) == {7}
    assert repeated_ngram_tokens([5, 6, 5], 2) == {6}
    assert repeated_ngram_tokens([5, 6, 7], 1) == {5, 6, 7}
    assert repeated_ngram_tokens([5], 3) == set()


@pytest.mark.parametrize("beam_size", [1, 3])
def test_no_repeat_ngram_blocking(parts, beam_size):
    encoder, decoder, _ = parts
    tok = CSTokenizer()
    memory, _, _ = encoder(*padded(audio_batch((1.0, 2.5))))
    decode = beam_search_decode if beam_size > 1 else greedy_decode
    for size in (1, 2):
        config = DecodingConfig(max_new_tokens=SAMPLE_LEN, beam_size=beam_size, no_repeat_ngram_size=size)
        for d in decode(decoder, memory, tok, config):
            ngrams = [tuple(d.tokens[i : i + size]) for i in range(len(d.tokens) - size + 1)]
            assert len(ngrams) == len(set(ngrams)) and len(d.tokens) > size


@pytest.mark.parametrize(
    "options, message",
    [
        (dict(beam_size=0), "beam size must be >= 1"),
        (dict(patience=2.0), "patience needs a beam size > 1"),
        (dict(beam_size=2, length_penalty=1.5), "length penalty must lie in"),
        (dict(no_repeat_ngram_size=-1), "no-repeat n-gram size must be >= 0"),
    ],
)
def test_bad_options_are_errors(options, message):
    with pytest.raises(ValueError, match=message):
        DecodingConfig(**options)
    with pytest.raises(ValueError, match=r"fallback temperatures must be positive .*: got \[0.2, -0.4\]"):
        Fallback(temperatures=(0.2, -0.4))


@pytest.fixture(scope="module")
def transcriber(ending_whisper_path):
    return Transcriber.from_model(CSWhisperModel.from_backbone(str(ending_whisper_path), "zh_en", pad_to_30s=False))


def transcribe(transcriber, audios, **options):
    transcriber.config = DecodingConfig(max_new_tokens=SAMPLE_LEN, **options)
    return [h.tokens for h in transcriber(audios)]


def test_fallback_redecodes_loops_the_same_on_every_run_and_batching(transcriber):
    audios = varied_audios()
    fallback = Fallback(temperatures=(0.5, 1.0), best_of=2)
    first = transcribe(transcriber, audios, beam_size=2)
    assert any(t.count(t[0]) > 3 for t in first)  # the tiny model loops: repeated tokens compress well
    together = transcribe(transcriber, audios, beam_size=2, fallback=fallback)
    assert together != first
    assert transcribe(transcriber, audios, beam_size=2, fallback=fallback) == together
    assert [transcribe(transcriber, [a], beam_size=2, fallback=fallback)[0] for a in audios] == together
    reseeded = transcribe(transcriber, audios, beam_size=2, fallback=Fallback((0.5, 1.0), best_of=2, seed=1))
    assert reseeded != together


def test_guard_cuts_the_beam_search_hypothesis(transcriber):
    audios = varied_audios()
    guard = RepetitionGuard(max_ngram=2, max_repeats=2)
    free = transcribe(transcriber, audios, beam_size=3)
    guarded = transcribe(transcriber, audios, beam_size=3, guard=guard)
    assert guarded == [t[: guard_cut(t, len(a) / 16000, guard) or len(t)] for t, a in zip(free, audios)]
    assert guarded != free


def test_a_beam_beyond_memory_is_an_error_before_decoding(transcriber):
    transcriber.config = DecodingConfig(beam_size=4)
    transcriber.check_memory(batch_size=16)
    transcriber.config = DecodingConfig(beam_size=10**6)
    with pytest.raises(ValueError, match=r"^beam size 1000000 with batch size 16 \(16000000 rows\) needs about .* GiB"):
        transcriber.check_memory(batch_size=16)


def test_decode_cli_records_the_search_and_loop_control(ending_whisper_path, tmp_path, caplog):
    """Beam search with fallback on int8 layers: the options combine, and decode_info.json tells the run apart."""
    data = tmp_path / "data"
    data.mkdir()
    for i, audio in enumerate(varied_audios()[:2]):
        sf.write(tmp_path / f"u{i}.wav", audio / 25, 16000, subtype="PCM_16")
    (data / "wav.scp").write_text("".join(f"u{i} {tmp_path / f'u{i}.wav'}\n" for i in range(2)))
    (data / "utt2sha256").write_text("u0 00\nu1 11\n")
    argv = ["--data_dir", str(data), "--whisper_model", str(ending_whisper_path), "--out_dir", str(tmp_path / "out")]
    options = ["--beam_size", "2", "--temperature_fallback", "true", "--fallback_temperatures", "0.5", "--best_of", "2"]
    decode.main([*argv, *options, "--int8", "true", "--guarded_out_dir", str(tmp_path / "guarded")])
    info = json.loads((tmp_path / "out" / "decode_info.json").read_text())
    assert info["beam_size"] == 2 and info["patience"] == 1.0 and info["utterances"] == 2
    assert info["fallback"] == {
        "temperatures": [0.5],
        "compression_ratio_threshold": 2.4,
        "logprob_threshold": -1.0,
        "best_of": 2,
        "seed": 0,
    }
    assert json.loads((tmp_path / "guarded" / "decode_info.json").read_text())["beam_size"] == 2
    with caplog.at_level("INFO"):
        decode.main([*argv, "--int8", "true"])  # greedy into the beam search's dir: redone
    assert "changed since" in caplog.text and "beam_size, fallback, patience" in caplog.text
    assert "beam_size" not in json.loads((tmp_path / "out" / "decode_info.json").read_text())


def test_decode_cli_keeps_a_decode_variant_to_its_options(ending_whisper_path, tmp_path):
    """A decode variant's dir is redone when its audio changes, never with other decoding options."""
    data = tmp_path / "data"
    data.mkdir()
    sf.write(tmp_path / "u0.wav", varied_audios()[0] / 25, 16000, subtype="PCM_16")
    (data / "wav.scp").write_text(f"u0 {tmp_path / 'u0.wav'}\n")
    (data / "utt2sha256").write_text("u0 00\n")
    argv = ["--data_dir", str(data), "--whisper_model", str(ending_whisper_path), "--out_dir", str(tmp_path / "out")]
    argv += ["--guarded_out_dir", str(tmp_path / "guarded"), "--decode_variant", "beam2"]
    decode.main([*argv, "--beam_size", "2"])
    for out in ("out", "guarded"):
        info = json.loads((tmp_path / out / "decode_info.json").read_text())
        assert info["decode_variant"] == "beam2" and info["beam_size"] == 2
    (data / "utt2sha256").write_text("u0 01\n")  # other audio: redone
    decode.main([*argv, "--beam_size", "2"])
    with pytest.raises(
        SystemExit, match=r"out holds decode variant beam2 made with other decoding options \(beam_size 2 -> 3\)"
    ):
        decode.main([*argv, "--beam_size", "3"])
    with pytest.raises(SystemExit, match="decode variant 'beam2_guard': <system>_guard names the guarded hypotheses"):
        decode.main([*argv[:-1], "beam2_guard"])


@pytest.mark.parametrize(
    "options, message",
    [
        (["--beam_size", "0"], r"beam size must be >= 1 \(1: greedy\): got 0"),
        (["--temperature_fallback", "true", "--fallback_temperatures=0.2,-0.4"], "temperatures must be positive"),
        (["--temperature_fallback", "true", "--fallback_temperatures", "0.2,hot"], "could not convert"),
        (["--beam_size", "1000000"], r"beam size 1000000 with batch size 16 .* GiB free"),
    ],
)
def test_decode_cli_bad_options_fail_before_reading_audio(ending_whisper_path, tmp_path, options, message):
    """The data dir does not exist: an error about it would mean audio was read first."""
    argv = ["--data_dir", str(tmp_path / "absent"), "--out_dir", str(tmp_path / "out")]
    with pytest.raises(SystemExit, match=f"^decode.py: .*{message}"):
        decode.main([*argv, "--whisper_model", str(ending_whisper_path), *options])
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("method", METHODS)
def test_beam_search_scores_are_the_teacher_forced_ones_for_every_method(method, tiny_whisper_path, lid_heads):  # noqa: F811
    """The reordered self-attention cache and the shared cross-attention give each beam its own
    history's log-probability (soft prompts and adapters included), whatever its batch mates."""
    model = build(method, tiny_whisper_path, lid_heads).eval()
    tok = model.tokenizer
    audios = [a * gain for a, gain in zip(audio_batch((1.0, 1.0, 1.0)), (0.3, 1.0, 3.0))]
    memory, lengths, _ = model.encoder(*padded(audios))
    memory = memory[:, : int(lengths[0])]
    config = DecodingConfig(max_new_tokens=8, beam_size=3)
    with torch.no_grad():
        decoded = beam_search_decode(model.decoder, memory, tok, config)
        assert [d.tokens for d in decoded] == [
            beam_search_decode(model.decoder, memory[i : i + 1], tok, config)[0].tokens for i in range(3)
        ]
        for row, d in enumerate(decoded):
            targets = d.tokens + ([tok.eot] if len(d.tokens) < 8 else [])
            logits = model.decoder(memory[row : row + 1], None, torch.tensor([[*tok.sot_sequence, *targets]]), None)[0]
            start = len(tok.sot_sequence) - 1
            steps = logits[0, start : start + len(targets)].float()
            steps[:, tok.suppress_tokens] = -torch.inf
            steps[0, tok.blank_tokens] = -torch.inf
            expected = steps.log_softmax(-1).gather(1, torch.tensor(targets)[:, None]).sum().item()
            assert d.sum_logprob == pytest.approx(expected, abs=1e-3)
