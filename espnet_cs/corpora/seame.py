r"""SEAME (LDC2015S04), Mandarin-English conversational code-switching, as Kaldi data dirs.

Corpus layout (``seame_dir`` holds ``data/``)::

    data/{conversation,interview}/audio/<REC>.flac          e.g. 01NC01FBX_0101.flac, NI01MAX_0101.flac
    data/{conversation,interview}/transcript/phaseI/*.txt   <REC>\t<start ms>\t<end ms>\t<text>
    data/{conversation,interview}/transcript/phaseII/*.txt  <REC>\t<start ms>\t<end ms>\t<language>\t<text>

Each transcript line is one segment of recording ``<REC>`` (the id in the line, not the file
name, names the recording). phaseI lines with only the three first fields are untranscribed
segments and skipped (counted); any other line of the wrong shape is an error naming its
``file:line``. phaseII is the revised transcription: a recording's phaseII lines are used, its
phaseI lines only when it has no phaseII lines. The speaker is in the recording id:
``01NC01FBX_0101`` -> ``nc01f`` (conversation ids start with a two-digit session number),
``NI01MAX_0101`` -> ``ni01m``.

Splits follow Zeng et al. (Interspeech 2019), as published in the SEAME-dev-set repository
(https://github.com/zengzp0912/SEAME-dev-set), given as ``dev_lists`` (a checkout of it):

* ``dev_man/segments``, ``dev_sge/segments`` (``<utt> <rec> <start s> <end s>``, e.g.
  ``nc12m-06nc12may_0101-00162-00459 06nc12may_0101 1.62 4.60``): the utterances of devman
  (6,531) and devsge (5,321). Each is matched to the corpus segment of its recording whose start
  and end are both within 30 ms (the list's times are rounded to 10 ms) and keeps the list's id.
* ``train/wav_file.txt`` (one path per line, ``.../<rec>/<rec>.wav``): the training recordings;
  all their segments form the training data, of which a seeded ``valid_share`` is held out as
  ``valid``. Recordings in neither list are not used.

Utterance ids are ``<speaker>-<rec>-<start>-<end>`` in lowercase, times in 10 ms (at least five
digits), as in the dev lists. Text: bracketed discourse particles are spoken (``[lah]`` ->
``lah``, ``[啊]`` -> ``啊``, as in the dev lists' references), non-speech annotations are not
(``(ppl)``, ``(ppb)``, ``<unk>``, ``<v-noise>``, and the noise words ``ppl ppb ppc ppo`` left by
unbalanced brackets); then :func:`espnet_cs.corpora.text_norm.normalize_transcript`. Every set
drops utterances whose text is empty after normalization or that are longer than 30 s; the
training sets also drop those shorter than ``min_seconds``. Counts of everything dropped are
logged.
"""

from __future__ import annotations

import logging
import re
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from espnet_cs.corpora import CorpusError
from espnet_cs.corpora.kaldi_data import Utterance, keep_usable, split_off, write_data_dir
from espnet_cs.corpora.text_norm import category, remove_markers, to_words
from espnet_cs.kaldi_dir import read_kaldi_map
from espnet_cs.text import canonical

log = logging.getLogger(__name__)

KINDS = ("conversation", "interview")
PHASE_FIELDS = {"phaseII": 5, "phaseI": 4}  # tab-separated fields of a transcribed line
DEV_SETS = {"devman": "dev_man", "devsge": "dev_sge"}  # data dir -> dir in the dev lists
PUBLISHED_COUNTS = {"devman": 6531, "devsge": 5321}
DEV_LISTS_URL = "https://github.com/zengzp0912/SEAME-dev-set"
MATCH_TOLERANCE = 0.03  # seconds between a dev-list time and the corpus time
_SPEAKER = re.compile(r"(?:\d\d)?([a-z]{2}\d\d[mf])", re.IGNORECASE)
_PARTICLE = re.compile(r"[\[【]([^\[\]【】]*)[\]】]")
_NOISE_WORD = re.compile(r"\bpp[bclo]\b")


@dataclass(frozen=True)
class Segment:
    """One transcript line: ``rec`` is the lowercase recording id, times in milliseconds."""

    rec: str
    start_ms: float
    end_ms: float
    text: str
    place: str  # file:line


def normalize_seame(text: str) -> str:
    """A SEAME transcript in the corpus convention (see the module docstring)."""
    text = _PARTICLE.sub(r" \1 ", canonical(text))
    return to_words(_NOISE_WORD.sub(" ", remove_markers(text)))


def speaker_of(rec: str) -> str | None:
    """``01nc01fbx_0101`` -> ``nc01f``, ``ni01max_0101`` -> ``ni01m``; None if not a SEAME id."""
    match = _SPEAKER.match(rec)
    return match.group(1).lower() if match else None


def utt_id(speaker: str, rec: str, start_ms: float, end_ms: float) -> str:
    """``nc12m-06nc12may_0101-00162-00459``: times in 10 ms, at least five digits."""
    return f"{speaker}-{rec}-{round(start_ms / 10):05d}-{round(end_ms / 10):05d}"


def missing_folders(seame_dir: Path) -> list[str]:
    """A problem for every folder of the corpus layout that is not there."""
    missing = [
        seame_dir / "data" / kind / sub
        for kind in KINDS
        for sub in ("audio", "transcript/phaseI", "transcript/phaseII")
    ]
    problems = [f"SEAME folder missing: {path}" for path in missing if not path.is_dir()]
    layout = "data/{conversation,interview}/{audio,transcript/phaseI,transcript/phaseII}"
    return problems + ([f"--seame_dir {seame_dir} must hold the unpacked LDC2015S04: {layout}"] if problems else [])


def _times(fields: list[str]) -> tuple[float, float] | None:
    """Start and end (ms) of a transcript line's fields; None if they are not numbers."""
    try:
        return float(fields[1]), float(fields[2])
    except (IndexError, ValueError):
        return None


def read_transcript(path: Path, phase: str, problems: list[str]) -> tuple[list[Segment], int]:
    """The segments of one transcript file and the number of untranscribed phaseI lines;
    a line of neither shape is reported as ``file:line``."""
    segments, untranscribed = [], 0
    with path.open(encoding="utf-8-sig") as f:
        for number, line in enumerate(f, 1):
            line = line.strip()  # trailing tabs too: "<REC>\t<start>\t<end>\t" is untranscribed
            if not line:
                continue
            fields, place = line.split("\t"), f"{path}:{number}"
            times = _times(fields)
            if times and phase == "phaseI" and len(fields) == 3:
                untranscribed += 1
            elif times and len(fields) == PHASE_FIELDS[phase]:
                segments.append(Segment(fields[0].strip().lower(), *times, fields[-1], place))
            else:
                language = "language, " if phase == "phaseII" else ""
                problems.append(
                    f"{place}: not a {phase} transcript line (expected {PHASE_FIELDS[phase]} "
                    f"tab-separated fields: id, start ms, end ms, {language}text): {line[:80]!r}"
                )
    return segments, untranscribed


def read_corpus(seame_dir: Path) -> tuple[dict[str, Path], dict[str, list[Segment]]]:
    """Audio files and segments per recording (lowercase id), phaseII preferred over phaseI.

    Raises:
        CorpusError: on malformed lines, duplicate segments, segments of recordings without
            audio and recording ids without a speaker.
    """
    problems: list[str] = []
    audio: dict[str, Path] = {}
    by_phase: dict[str, dict[str, list[Segment]]] = {phase: defaultdict(list) for phase in PHASE_FIELDS}
    untranscribed = 0
    for kind_dir in (seame_dir / "data" / kind for kind in KINDS):
        audio.update({p.stem.lower(): p for p in sorted((kind_dir / "audio").glob("*.flac"))})
        for phase, segments in by_phase.items():
            for path in sorted((kind_dir / "transcript" / phase).glob("*.txt")):
                found, skipped = read_transcript(path, phase, problems)
                untranscribed += skipped
                for seg in found:
                    segments[seg.rec].append(seg)
    chosen = {**by_phase["phaseI"], **by_phase["phaseII"]}
    only_phase_one = sorted(chosen.keys() - by_phase["phaseII"].keys())
    log.info(
        "SEAME: %d recordings with audio, %d transcribed (%d of them in phaseI only: %s); "
        "%d untranscribed phaseI lines skipped",
        len(audio),
        len(chosen),
        len(only_phase_one),
        " ".join(only_phase_one[:5]) + (" ..." if len(only_phase_one) > 5 else ""),
        untranscribed,
    )
    for rec, segments in sorted(chosen.items()):
        if rec not in audio:
            problems.append(
                f"{segments[0].place}: recording {rec}: no {rec}.flac (in any case) in "
                f"{seame_dir}/data/{{conversation,interview}}/audio"
            )
        if speaker_of(rec) is None:
            problems.append(
                f"{segments[0].place}: recording id {rec} does not name a speaker "
                "(expected e.g. 01NC01FBX_0101 or NI01MAX_0101)"
            )
        seen: dict[tuple[float, float], str] = {}
        for seg in segments:
            if (seg.start_ms, seg.end_ms) in seen:
                problems.append(f"{seg.place}: same segment as {seen[seg.start_ms, seg.end_ms]}")
            seen.setdefault((seg.start_ms, seg.end_ms), seg.place)
    if problems:
        raise CorpusError(problems)
    return audio, chosen


def _utterance(seg: Segment, audio: dict[str, Path], utt: str | None = None) -> Utterance:
    """The utterance of a segment, with the given id or one made from the segment."""
    speaker = speaker_of(seg.rec)
    text = normalize_seame(seg.text)
    return Utterance(
        utt or utt_id(speaker, seg.rec, seg.start_ms, seg.end_ms),
        seg.rec,
        audio[seg.rec],
        speaker,
        text,
        category(text) if text else "",
        (seg.end_ms - seg.start_ms) / 1000,
        seg.start_ms / 1000,
        seg.end_ms / 1000,
    )


def missing_lists(dev_lists: Path) -> list[str]:
    """A problem for every file of the SEAME-dev-set checkout read here that is not there."""
    needed = [dev_lists / d / "segments" for d in DEV_SETS.values()] + [dev_lists / "train" / "wav_file.txt"]
    problems = [f"SEAME dev lists: {path} missing" for path in needed if not path.is_file()]
    expected = "dev_man/segments, dev_sge/segments, train/wav_file.txt"
    return problems + (
        [f"--dev_lists {dev_lists} must be a checkout of {DEV_LISTS_URL} ({expected})"] if problems else []
    )


def _distance(seg: Segment, start: float, end: float) -> float:
    """The larger difference (seconds) between the segment's start and end and the given ones."""
    return max(abs(seg.start_ms / 1000 - start), abs(seg.end_ms / 1000 - end))


def dev_utterances(
    list_dir: Path, audio: dict[str, Path], segments: dict[str, list[Segment]], problems: list[str]
) -> list[Utterance]:
    """The utterances of a dev list, each matched to its corpus segment (see the module docstring)."""
    utterances, unknown = [], Counter()
    path = list_dir / "segments"
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            utt, rec, start, end = line.split()
            start, end = float(start), float(end)
        except ValueError:
            problems.append(f"{path}:{number}: expected '<utt> <rec> <start> <end>': {line!r}")
            continue
        if rec not in segments:
            unknown[rec] += 1
            continue
        best = min(segments[rec], key=lambda seg: _distance(seg, start, end))
        if _distance(best, start, end) > MATCH_TOLERANCE + 1e-6:
            problems.append(
                f"{path}:{number}: {utt}: no segment of {rec} within {MATCH_TOLERANCE * 1000:g} ms "
                f"of {start:g}-{end:g} s in the SEAME transcripts"
            )
        else:
            utterances.append(_utterance(best, audio, utt))
    problems += [
        f"{path}: recording {rec} ({n} utterances) is not in the corpus (no transcript)"
        for rec, n in sorted(unknown.items())
    ]
    return utterances


def train_recordings(dev_lists: Path) -> list[str]:
    """Recording ids of ``train/wav_file.txt`` (``.../<rec>/<rec>.wav`` per line), lowercase."""
    lines = (dev_lists / "train" / "wav_file.txt").read_text(encoding="utf-8").splitlines()
    return [Path(line.strip()).stem.lower() for line in lines if line.strip()]


def prepare_seame(
    seame_dir: Path, dev_lists: Path, data_dir: Path, valid_share: float = 0.05, min_seconds: float = 0.1, seed: int = 0
) -> dict[str, int]:
    """Write ``data_dir/{train,valid,devman,devsge}``; returns the utterances per set.

    Raises:
        CorpusError: listing every problem with the corpus or the lists, before anything is written.
    """
    missing = missing_folders(seame_dir) + missing_lists(dev_lists)
    if missing:
        raise CorpusError(missing)
    audio, segments = read_corpus(seame_dir)
    problems: list[str] = []
    sets = {
        name: dev_utterances(dev_lists / list_name, audio, segments, problems) for name, list_name in DEV_SETS.items()
    }
    listed = train_recordings(dev_lists)
    absent = [rec for rec in listed if rec not in segments]
    if absent:
        log.warning(
            "SEAME: %d of the %d training recordings are not in the corpus: %s",
            len(absent),
            len(listed),
            " ".join(absent[:10]) + (" ..." if len(absent) > 10 else ""),
        )
    unused = segments.keys() - set(listed) - {u.recording for dev in sets.values() for u in dev}
    log.info("SEAME: %d transcribed recordings are in no list and not used", len(unused))
    if problems:
        raise CorpusError(problems)
    train = [_utterance(seg, audio) for rec in listed if rec in segments for seg in segments[rec]]
    train = keep_usable(train, "train+valid", min_seconds)
    sets["train"], sets["valid"] = split_off(
        train, valid_share, seed, f"SEAME training recordings ({dev_lists}/train/wav_file.txt)"
    )
    sets["devman"], sets["devsge"] = (keep_usable(sets[name], name) for name in DEV_SETS)
    for name, utterances in sets.items():
        write_data_dir(data_dir / name, utterances)
    return {name: len(utterances) for name, utterances in sets.items()}


def check_dev_sets(data_dir: Path, dev_lists: Path, dump_dir: Path | None = None) -> list[str]:
    """Check ``data_dir/{devman,devsge}`` (and ``dump_dir/<set>`` if formatted) hold exactly the
    utterances of the dev lists; returns what was checked, one line per set.

    Raises:
        CorpusError: naming missing and unexpected utterances per dir.
    """
    problems, report = missing_lists(dev_lists), []
    if problems:
        raise CorpusError(problems)
    for name, list_name in DEV_SETS.items():
        expected = set(read_kaldi_map(dev_lists / list_name / "segments"))
        dirs = [data_dir / name] + ([dump_dir / name] if dump_dir and (dump_dir / name / "text").is_file() else [])
        for directory in dirs:
            if not (directory / "text").is_file():
                problems.append(f"{directory}/text missing: run stage 1 (local/data.sh)")
                continue
            found = set(read_kaldi_map(directory / "text"))
            for label, ids in (("missing", sorted(expected - found)), ("not in the list", sorted(found - expected))):
                if ids:
                    problems.append(
                        f"{directory}: {len(ids)} utterance(s) {label} ({dev_lists / list_name}): "
                        + " ".join(ids[:5])
                        + (" ..." if len(ids) > 5 else "")
                    )
        published = PUBLISHED_COUNTS[name]
        report.append(
            f"{name}: {len(expected)} utterances in {', '.join(map(str, dirs))}"
            + (
                " (the published count)"
                if len(expected) == published
                else f" (the published list has {published}: a partial or other list)"
            )
        )
    if problems:
        raise CorpusError(problems)
    return report
