"""Zero-shot decoding with the real Whisper-base on synthesized code-switching speech."""

import numpy as np
import pytest
import torch
import whisper
from whisper.decoding import DecodingOptions, DecodingTask, PyTorchInference

from espnet_cs.backbone import load_whisper
from espnet_cs.decoding import DecodingConfig, RepetitionGuard, Transcriber, apply_guard
from espnet_cs.model import CSWhisperModel
from espnet_cs.synth.speech import SPEAKERS, synthesize
from espnet_cs.tokenizer import CSTokenizer

pytestmark = pytest.mark.integration

SENTENCES = [
    "这个 project 的 deadline 是下个星期",
    "我们今天晚上去吃饭",
    "can you check the schedule",
    "你 can 帮我 check 一下吗",
]


@pytest.fixture(scope="module")
def audios() -> list[np.ndarray]:
    return [synthesize(text, SPEAKERS[i]).astype(np.float32) / 32768 for i, text in enumerate(SENTENCES)]


def openai_whisper_decode(
    model: whisper.model.Whisper, audios: list[np.ndarray], tokenizer: CSTokenizer, **options
) -> list[list[int]]:
    """openai-whisper's own decoding with ``tokenizer``'s task tokens (it has no two-LID option): its
    task's initial tokens, blank filter position and key/value cache inference (which its beam
    search decoder holds too) are replaced. With a beam, one audio at a time: its batched beam
    search cannot share one audio row among beams."""

    def run(mels: torch.Tensor) -> list[list[int]]:
        task = DecodingTask(model, DecodingOptions(language="zh", without_timestamps=True, fp16=False, **options))
        task.initial_tokens = tokenizer.sot_sequence
        task.sample_begin = task.logit_filters[0].sample_begin = len(tokenizer.sot_sequence)
        task.inference = task.decoder.inference = PyTorchInference(model, len(tokenizer.sot_sequence))
        return [r.tokens for r in task.run(mels)]

    mels = torch.stack([whisper.log_mel_spectrogram(whisper.pad_or_trim(torch.from_numpy(a))) for a in audios])
    if options.get("beam_size"):
        return [run(mel[None])[0] for mel in mels]
    return run(mels)


@pytest.mark.parametrize("task_tokens", ["zh", "zh_en"])
def test_equals_openai_whisper_greedy(audios, task_tokens):
    transcriber = Transcriber.from_model(CSWhisperModel.from_backbone("whisper-base", task_tokens))
    ours = transcriber(audios)
    model, _ = load_whisper("whisper-base")
    assert [h.tokens for h in ours] == openai_whisper_decode(model.eval(), audios, transcriber.tokenizer)
    if task_tokens == "zh":  # Whisper's own task tokens transcribe the English sentence
        assert "schedule" in ours[2].text.lower()


@pytest.mark.parametrize(
    "task_tokens, beam_size, patience, length_penalty",
    [("zh", 5, None, None), ("zh_en", 5, 2.0, 0.5), ("zh_en", 3, None, None)],
)
def test_beam_search_equals_openai_whisper(audios, task_tokens, beam_size, patience, length_penalty):
    """``whisper.decode(beam_size=..., patience=..., length_penalty=...)`` with the same task tokens."""
    config = DecodingConfig(beam_size=beam_size, patience=patience, length_penalty=length_penalty)
    transcriber = Transcriber.from_model(CSWhisperModel.from_backbone("whisper-base", task_tokens), config)
    ours = transcriber(audios)
    model, _ = load_whisper("whisper-base")
    options = dict(beam_size=beam_size, patience=patience, length_penalty=length_penalty)
    assert [h.tokens for h in ours] == openai_whisper_decode(model.eval(), audios, transcriber.tokenizer, **options)


def test_guard_shortens_only_looping_hypotheses(audios):
    transcriber = Transcriber.from_model(CSWhisperModel.from_backbone("whisper-base", "zh_en"))
    guard = RepetitionGuard()
    free = transcriber(audios)
    transcriber.config = DecodingConfig(guard=guard)
    guarded = transcriber(audios)
    for a, f, g in zip(audios, free, guarded):
        assert f.tokens[: len(g.tokens)] == g.tokens
        assert apply_guard(f, len(a) / 16000, guard, transcriber.tokenizer).tokens == g.tokens
