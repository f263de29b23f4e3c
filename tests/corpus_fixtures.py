"""Miniature corpora in the real on-disk layouts, with speech synthesized by ``espnet_cs.synth``.

Each ``make_*`` writes one corpus under a given root and returns what the tests check against:

* :func:`make_seame`: SEAME (LDC2015S04) ``data/{conversation,interview}/audio/*.flac`` with
  ``transcript/phaseI`` and ``transcript/phaseII``, several segments per recording and tricky
  lines (markers, full-width and traditional characters, noise-only and too-short segments, an
  untranscribed phaseI line, a phaseI file shadowed by phaseII), and the SEAME-dev-set lists
  (``dev_man/``, ``dev_sge/`` Kaldi dirs whose times are rounded to 10 ms, ``train/wav_file.txt``).
* :func:`make_asru2019`: ``ZH+EN-200h/data/category*/G*/...``, ``ZH-500h``, ``ASRU-DEV/data``,
  ``ASRU-TEST`` with one-line ``.txt`` transcripts carrying Datatang's ``[N]``/``[S]`` tags.
* :func:`make_aishell`: ``data_aishell/wav/test/<spk>/*.wav`` and the word-segmented transcript.
* :func:`make_librispeech`: ``LibriSpeech/test-clean/<spk>/<chapter>/*.flac`` and ``*.trans.txt``.

Speech is synthesized from the expected normalized text, so zero-shot decoding has something to
recognize; gaps between segments are quiet noise.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from espnet_cs.synth.speech import SAMPLE_RATE, SPEAKERS, synthesize
from espnet_cs.text import units

GAP = 0.4  # seconds of quiet noise before, between and after segments


def noise(seconds: float, seed: int = 0) -> np.ndarray:
    """Quiet int16 noise."""
    return np.random.default_rng(seed).integers(-30, 30, round(seconds * SAMPLE_RATE)).astype(np.int16)


@dataclass(frozen=True)
class Line:
    """A transcript segment: raw ``text`` as the corpus writes it, the ``spoken`` text to synthesize
    (None: noise of ``seconds``) and the normalized text expected after preparation (None: dropped)."""

    text: str
    spoken: str | None
    expected: str | None
    seconds: float = 0.6


def record(lines: list[Line], speaker: int, path: Path) -> list[tuple[int, int]]:
    """Write a recording of the lines (speech or noise, with gaps) to ``path`` (format from the
    suffix); returns each line's (start, end) in milliseconds."""
    pieces, times, position = [noise(GAP, speaker)], [], GAP
    for i, line in enumerate(lines):
        audio = synthesize(line.spoken, SPEAKERS[speaker]) if line.spoken else noise(line.seconds, i)
        times.append((round(position * 1000), round((position + len(audio) / SAMPLE_RATE) * 1000)))
        pieces += [audio, noise(GAP, i + 1)]
        position += len(audio) / SAMPLE_RATE + GAP
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, np.concatenate(pieces), SAMPLE_RATE, subtype="PCM_16")
    return times


# ---------------------------------------------------------------------------------------- SEAME


@dataclass(frozen=True)
class SeameRecording:
    """A SEAME recording: its id, folder, split (train/devman/devsge/none), phaseII and phaseI lines."""

    rec: str
    kind: str
    split: str
    phase2: list[Line]
    phase1: list[Line]


SEAME_RECORDINGS = [
    SeameRecording(
        "01NC01FBX_0101",
        "conversation",
        "train",
        phase2=[
            Line(
                "(ppl) 我们 明天 去 [lah] meeting 好不好",
                "我们明天去 lah meeting 好不好",
                "我们明天去 lah meeting 好不好",
            ),
            Line(
                "<unk> 這個 ＰＲＯＪＥＣＴ 的 deadline 是 next week (ppb)",
                "这个 project 的 deadline 是 next week",
                "这个 project 的 deadline 是 next week",
            ),
            Line("(ppo)", None, None),  # noise only: empty after normalization
            Line("ok", None, None, seconds=0.05),  # shorter than --min_seconds
        ],
        phase1=[Line("shadowed by phaseII", None, None)],
    ),
    SeameRecording(
        "02NC03FBX_0101",
        "conversation",
        "train",
        phase2=[],
        phase1=[
            Line("I THINK 这个 很 好 ( ppc )", "i think 这个很好", "i think 这个很好"),
            Line("", None, None),  # untranscribed phaseI line: three fields
            Line("那個 老師 hen 好 #", "那个老师 hen 好", "那个老师 hen 好"),
        ],
    ),
    SeameRecording(
        "NI01MAX_0101",
        "interview",
        "train",
        phase2=[
            Line(
                "okay [lah] I'll check the report tomorrow",
                "okay lah i will check the report tomorrow",
                "okay lah i'll check the report tomorrow",
            ),
            Line("我 觉得 ok 的 (ppl", "我觉得 ok 的", "我觉得 ok 的"),
        ],
        phase1=[],
    ),
    SeameRecording(
        "UI07FAZ_0101",
        "interview",
        "devman",
        phase2=[
            Line("我们 的 老板 很 忙 [啊]", "我们的老板很忙啊", "我们的老板很忙啊"),
            Line("你 有 没有 check 那个 email", "你有没有 check 那个 email", "你有没有 check 那个 email"),
        ],
        phase1=[],
    ),
    SeameRecording(
        "08NC15MBP_0101",
        "conversation",
        "devsge",
        phase2=[
            Line("<v-noise> so he said no lah", "so he said no lah", "so he said no lah"),
            Line("we go to the canteen 吃饭 (ppb)", "we go to the canteen 吃饭", "we go to the canteen 吃饭"),
        ],
        phase1=[],
    ),
    SeameRecording("NI02FAX_0101", "interview", "none", phase2=[Line("not in any list", None, None)], phase1=[]),
]


@dataclass
class SeameFixture:
    """Paths of a miniature SEAME and its lists, and the expected text per utterance id per set."""

    seame_dir: Path
    dev_lists: Path
    expected: dict[str, dict[str, str]]  # devman/devsge/train+valid -> utt -> normalized text


def seame_utt_id(rec: str, start_ms: int, end_ms: int) -> str:
    """The dev lists' id style: ``<spk>-<rec>-<start/10 ms>-<end/10 ms>`` in lowercase."""
    rec = rec.lower()
    speaker = rec[2:7] if rec[0].isdigit() else rec[:5]
    return f"{speaker}-{rec}-{round(start_ms / 10):05d}-{round(end_ms / 10):05d}"


def write_dev_list(list_dir: Path, rec: str, kind: str, utterances: list[tuple[str, int, int, str]]) -> None:
    """A Kaldi dir as in the SEAME-dev-set repository (times rounded to 10 ms, one shifted by 10 ms,
    text with spaced Mandarin characters and a <v-noise> tag, wav.scp pointing at the authors' paths)."""
    list_dir.mkdir(parents=True, exist_ok=True)
    rec = rec.lower()
    segments, text, utt2spk = [], [], []
    for i, (utt, start_ms, end_ms, words) in enumerate(utterances):
        shift = 10 if i == 0 else 0
        segments.append(f"{utt} {rec} {(start_ms + shift) / 1000:.2f} {end_ms / 1000:.2f}")
        text.append(f"{utt} <v-noise> {' '.join(units(words))}")
        utt2spk.append(f"{utt} {utt.split('-')[0]}")
    speaker = utterances[0][0].split("-")[0]
    (list_dir / "segments").write_text("\n".join(segments) + "\n", encoding="utf-8")
    (list_dir / "text").write_text("\n".join(text) + "\n", encoding="utf-8")
    (list_dir / "utt2spk").write_text("\n".join(utt2spk) + "\n", encoding="utf-8")
    (list_dir / "spk2utt").write_text(f"{speaker} {' '.join(u[0] for u in utterances)}\n", encoding="utf-8")
    (list_dir / "wav.scp").write_text(f"{rec} ./seame/phasei/original/{kind}/{rec}/{rec}.wav\n", encoding="utf-8")


def make_seame(root: Path) -> SeameFixture:
    """Write ``root/LDC2015S04`` and ``root/SEAME-dev-set``."""
    seame_dir, dev_lists = root / "LDC2015S04", root / "SEAME-dev-set"
    for kind in ("conversation", "interview"):
        for phase in ("phaseI", "phaseII"):
            (seame_dir / "data" / kind / "transcript" / phase).mkdir(parents=True, exist_ok=True)
    expected: dict[str, dict[str, str]] = {"devman": {}, "devsge": {}, "train+valid": {}}
    train_list = []
    for speaker, r in enumerate(SEAME_RECORDINGS):
        kind_dir = seame_dir / "data" / r.kind
        lines = r.phase2 or r.phase1
        times = record(lines, speaker, kind_dir / "audio" / f"{r.rec}.flac")
        for phase, phase_lines in (("phaseII", r.phase2), ("phaseI", r.phase1)):
            if phase_lines:
                rows = [
                    f"{r.rec}\t{start}\t{end}"
                    + (f"\tCS\t{line.text}" if phase == "phaseII" else f"\t{line.text}" if line.text else "\t")
                    for line, (start, end) in zip(phase_lines, times)
                ]
                (kind_dir / "transcript" / phase / f"{r.rec}.txt").write_text("\n".join(rows) + "\n", encoding="utf-8")
        kept = [(seame_utt_id(r.rec, *t), *t, line.expected) for line, t in zip(lines, times) if line.expected]
        if r.split in ("devman", "devsge"):
            write_dev_list(dev_lists / {"devman": "dev_man", "devsge": "dev_sge"}[r.split], r.rec, r.kind, kept)
        if r.split != "none":
            expected["train+valid" if r.split == "train" else r.split].update({u: text for u, _, _, text in kept})
        if r.split == "train":
            train_list.append(f"./seame/phasei/original/{r.kind}/{r.rec.lower()}/{r.rec.lower()}.wav")
    (dev_lists / "train").mkdir(parents=True)
    train_list.insert(1, "")  # the published list has a blank line
    (dev_lists / "train" / "wav_file.txt").write_text("\n".join(train_list) + "\n", encoding="utf-8")
    return SeameFixture(seame_dir, dev_lists, expected)


# ------------------------------------------------------------------------------------ ASRU 2019

ASRU_UTTERANCES = {  # path below the corpus dir -> (raw transcript, spoken text)
    "ZH+EN-200h/data/category1/G0001/session01/T0001G0001S0001": (
        "[N] 我 要 去 check 一下 email",
        "我要去 check 一下 email",
    ),
    "ZH+EN-200h/data/category1/G0001/session01/T0001G0001S0002": ("这个 Project 很 重要 [S]", "这个 project 很重要"),
    "ZH+EN-200h/data/category2/G0002/session01/T0001G0002S0001": ("明天 的 meeting 取消 了", "明天的 meeting 取消了"),
    "ZH-500h/data/category1/G0100/session01/T0002G0100S0001": ("今天 天气 很 好", "今天天气很好"),
    "ASRU-DEV/data/T0003G0200S0001": ("你 的 report 写 好 了 吗 [T]", "你的 report 写好了吗"),
    "ASRU-DEV/data/T0003G0201S0001": ("我们 下午 有 个 presentation", "我们下午有个 presentation"),
    "ASRU-TEST/T0004G0300S0001": ("[P] 这个 app 很 好 用", "这个 app 很好用"),
    "ASRU-TEST/T0004G0301S0001": ("请 帮 我 book 一 个 room", "请帮我 book 一个 room"),
}


def make_asru2019(root: Path) -> Path:
    """Write ``root/asru2019`` (every part); returns it."""
    asru_dir = root / "asru2019"
    for i, (relative, (raw, spoken)) in enumerate(ASRU_UTTERANCES.items()):
        wav = asru_dir / f"{relative}.wav"
        wav.parent.mkdir(parents=True, exist_ok=True)
        sf.write(wav, synthesize(spoken, SPEAKERS[i % len(SPEAKERS)]), SAMPLE_RATE, subtype="PCM_16")
        wav.with_suffix(".txt").write_text(raw + "\n", encoding="utf-8")
    return asru_dir


# ------------------------------------------------------------------------ AISHELL-1, LibriSpeech

AISHELL_TEST = {"BAC009S0764W0121": "甚至 出现 交易 几乎 停滞 的 情况", "BAC009S0765W0130": "我们 明天 再 讨论"}


def make_aishell(root: Path) -> Path:
    """Write ``root/aishell/data_aishell`` (two test utterances, one test wav without a transcript
    line, transcript lines of other sets); returns ``root/aishell``."""
    data = root / "aishell" / "data_aishell"
    for i, (utt, words) in enumerate({**AISHELL_TEST, "BAC009S0765W0499": None}.items()):
        wav = data / "wav" / "test" / utt[6:11] / f"{utt}.wav"
        wav.parent.mkdir(parents=True, exist_ok=True)
        audio = synthesize(words.replace(" ", ""), SPEAKERS[i]) if words else noise(0.5)
        sf.write(wav, audio, SAMPLE_RATE, subtype="PCM_16")
    other_set = "BAC009S0002W0122 而 对 楼市 成交 抑制 作用 最 大 的 限 购"
    lines = [other_set] + [f"{u} {w}" for u, w in AISHELL_TEST.items()]
    (data / "transcript").mkdir(parents=True)
    (data / "transcript" / "aishell_transcript_v0.8.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root / "aishell"


LIBRISPEECH_TEST = {
    "1089-134686-0000": "HE HOPED THERE WOULD BE STEW FOR DINNER",
    "1089-134686-0001": "STUFF IT INTO YOU HIS BELLY COUNSELLED HIM",
}


def make_librispeech(root: Path) -> Path:
    """Write ``root/librispeech/LibriSpeech/test-clean`` (one chapter, two utterances); returns ``root/librispeech``."""
    chapter = root / "librispeech" / "LibriSpeech" / "test-clean" / "1089" / "134686"
    chapter.mkdir(parents=True)
    for i, (utt, text) in enumerate(LIBRISPEECH_TEST.items()):
        sf.write(chapter / f"{utt}.flac", synthesize(text.lower(), SPEAKERS[i]), SAMPLE_RATE, subtype="PCM_16")
    (chapter / "1089-134686.trans.txt").write_text("".join(f"{u} {t}\n" for u, t in LIBRISPEECH_TEST.items()))
    return root / "librispeech"
