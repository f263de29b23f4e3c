"""Recipe stage 2: validate a Kaldi data dir and format it into an ESPnet ``dump/raw``-like dir.

Input ``<src>``: ``wav.scp`` (each entry a path to an audio file soundfile can decode, or a
Kaldi read pipe ``cmd ... |``; relative paths resolve against the working directory, as in
Kaldi), optional ``segments`` (``utt rec start end`` in seconds, ``end == -1`` means to the end
of the recording), ``text``, ``utt2spk``, optional ``spk2utt`` and ``utt2category``.

Every utterance is checked before anything counts as done, and *all* problems are collected
(see :class:`Kind`). Audio is read by :func:`espnet_cs.audio.read_entry` (soundfile; pipes run
with ``subprocess``).

Fixed silently (logged), not reported as problems:

* unsorted input files: the output is always sorted by id (C/codepoint order, as Kaldi needs);
* CRLF (Windows) line endings: read as LF;
* multi-channel audio: downmixed to mono by averaging the channels;
* sample rate other than 16 kHz: resampled with ``scipy.signal.resample_poly``;
* an input ``spk2utt`` is only checked against ``utt2spk``; the output one is derived from it.

Caught although soundfile would not complain: a WAV file shorter than its header says
(:mod:`espnet_cs.audio`), a transcript with no word left after the scoring normalization
(:func:`espnet_cs.text.normalize_text`: only punctuation, ``<unk>`` or other markers), and an id
holding an invisible character such as a UTF-8 byte-order mark.

Output ``<dst>``: ``data/<utt>.wav`` (16 kHz mono int16 PCM, one per utterance, segments cut
and pipes resolved), ``wav.scp`` (paths as ``<dst>/data/<utt>.wav`` with ``<dst>`` as given, so
a relative ``<dst>`` gives paths relative to the recipe dir, the ESPnet convention), ``text``,
``utt2spk``, ``spk2utt``, ``utt2category`` (if present), ``utt2num_samples``, ``speech_shape``,
``utt2sha256`` (the sha256 of each utterance's samples: what later stages compare to know whether
the audio they were made from changed) and the ``.done`` marker. Everything is written into ``<dst>.tmp`` and moved to ``<dst>`` only on
success; on failure ``<dst>`` holds only ``problems.txt``. A run is skipped when ``<dst>/.done``
was made from the same sources: the same ``<src>``, the same content of its files, and the same
bytes of every audio file ``wav.scp`` names (for a pipe, of the files named in its command; each
file's sha256 is read again only when its size, times or inode changed, see
:mod:`espnet_cs.audio_files`); the log says what changed otherwise. A run that does not skip first removes a
leftover ``<dst>.tmp`` and a previous output, which no longer matches the sources (a non-empty
``<dst>`` that is not a stage-2 output is refused).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shlex
import shutil
import unicodedata
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from enum import Enum
from functools import partial
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm import tqdm

from espnet_cs.audio import SAMPLE_RATE, AudioError, AudioProblem, read_entry, to_mono_16k
from espnet_cs.audio_files import Record, changed_files, read_records
from espnet_cs.kaldi_dir import LineProblem, read_kaldi_map, spk2utt, write_kaldi_map
from espnet_cs.splitting import AUDIO_DIGESTS, file_sha256
from espnet_cs.text import CATEGORIES, normalize_text, units
from espnet_cs.workers import map_in_processes

log = logging.getLogger(__name__)

MAX_SECONDS = 30.0  # Whisper's input window
REQUIRED_FILES = ("wav.scp", "text", "utt2spk")
OPTIONAL_FILES = ("segments", "spk2utt", "utt2category")
DONE_MARKER = ".done"


class Kind(Enum):
    """Kinds of problem; the value is the heading used in the report."""

    MISSING_FILE = "required data file missing"
    MALFORMED_LINE = "malformed line"
    DUPLICATE_ID = "duplicate id"
    INVISIBLE_ID = "id holds an invisible character"
    MISSING_ENTRY = "utterance has no entry in this file"
    ORPHAN_ENTRY = "entry for an utterance not in wav.scp/segments"
    EMPTY_TEXT = "empty transcript"
    BAD_CATEGORY = f"category not in {{{', '.join(sorted(CATEGORIES))}}}"
    SPK2UTT_MISMATCH = "spk2utt disagrees with utt2spk"
    UNKNOWN_RECORDING = "segment of a recording not in wav.scp"
    BAD_SEGMENT = "bad segment times"
    MISSING_AUDIO = "audio file missing"
    EMPTY_AUDIO = "empty audio"
    CORRUPT_AUDIO = "audio cannot be decoded"
    TRUNCATED_AUDIO = "audio shorter than its header says (truncated file)"
    PIPE_FAILED = "pipe command failed"
    TOO_LONG = f"longer than {MAX_SECONDS:g} s"


AUDIO_KINDS = {
    AudioProblem.MISSING: Kind.MISSING_AUDIO,
    AudioProblem.EMPTY: Kind.EMPTY_AUDIO,
    AudioProblem.CORRUPT: Kind.CORRUPT_AUDIO,
    AudioProblem.TRUNCATED: Kind.TRUNCATED_AUDIO,
    AudioProblem.PIPE_FAILED: Kind.PIPE_FAILED,
}
"""The problem kind of each reason :func:`espnet_cs.audio.read_entry` gives for unusable audio."""


@dataclass(frozen=True)
class Problem:
    """One problem: ``utt`` is the utterance id (the recording id for a problem with a whole
    recording that ``segments`` splits, ``-`` for a whole file); ``file`` the data file or audio
    entry concerned."""

    kind: Kind
    utt: str
    file: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.utt}\t{self.file}\t{self.detail}".rstrip()


def sort_problems(problems: list[Problem]) -> list[Problem]:
    """Order problems by utterance id, then file, detail and kind."""
    return sorted(problems, key=lambda p: (p.utt, p.file, p.detail, p.kind.name))


class DataFormatError(Exception):
    """Raised when a data dir has problems; ``problems`` lists all of them."""

    def __init__(self, problems: list[Problem]):
        super().__init__(format_report(problems))
        self.problems = problems


@dataclass(frozen=True)
class Segment:
    """An utterance cut from a recording; ``end=None`` means to the end of the recording."""

    utt: str
    start: float = 0.0
    end: float | None = None


@dataclass(frozen=True)
class RecordingJob:
    """A recording to decode once and the utterances to take from it."""

    rec: str
    entry: str
    segments: tuple[Segment, ...]


@dataclass
class RecordingResult:
    """What processing a recording found: output lengths of good utterances and problems."""

    num_samples: dict[str, int] = field(default_factory=dict)
    digests: dict[str, str] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    rate: int = SAMPLE_RATE
    channels: int = 1


def format_report(problems: list[Problem]) -> str:
    """Render problems grouped by kind, each line ``utt<TAB>file<TAB>detail``."""
    lines = [f"{len(problems)} problem(s) found"]
    for kind in Kind:
        group = sort_problems([p for p in problems if p.kind is kind])
        if group:
            lines += [f"== {kind.value} ({len(group)}) =="] + [str(p) for p in group]
    return "\n".join(lines) + "\n"


def _read_table(path: Path, problems: list[Problem]) -> dict[str, str]:
    """Read a Kaldi table, reporting blank, non-UTF-8 (e.g. GBK) lines and duplicate keys."""

    def report(problem: LineProblem, number: int, key: str) -> None:
        if problem is LineProblem.DUPLICATE_KEY:
            problems.append(Problem(Kind.DUPLICATE_ID, key, str(path), f"line {number}"))
        else:
            problems.append(Problem(Kind.MALFORMED_LINE, key or "-", str(path), f"line {number} is {problem.value}"))

    table = read_kaldi_map(path, report)
    if b"\r\n" in path.read_bytes():
        log.info("%s has CRLF (Windows) line endings; read as LF", path)
    for key in table:
        invisible = [c for c in key if not c.isprintable()]
        if invisible:
            names = ", ".join(f"U+{ord(c):04X} {unicodedata.name(c, 'unnamed')}" for c in dict.fromkeys(invisible))
            bom = " (a UTF-8 byte-order mark: save the file as UTF-8 without BOM)" if "\ufeff" in invisible else ""
            problems.append(Problem(Kind.INVISIBLE_ID, visible(key), str(path), f"{key!r} holds {names}{bom}"))
    keys = [visible(key) for key in table]
    if keys != sorted(keys):
        log.info("%s is not sorted; the output is sorted", path)
    return table


def visible(key: str) -> str:
    """``key`` without its invisible characters (how a user reads it on screen)."""
    return "".join(c for c in key if c.isprintable())


def _load_tables(src: Path, problems: list[Problem]) -> dict[str, dict[str, str]]:
    """Read the data dir's files that exist, reporting missing required ones."""
    tables = {}
    for name in REQUIRED_FILES + OPTIONAL_FILES:
        path = src / name
        if path.is_file():
            tables[name] = _read_table(path, problems)
        elif name in REQUIRED_FILES:
            problems.append(Problem(Kind.MISSING_FILE, "-", str(path)))
    return tables


def _parse_segment(
    utt: str, rest: str, path: Path, recordings: dict[str, str], problems: list[Problem]
) -> tuple[str, Segment] | None:
    """Parse ``rec start end`` of a segments line; report and return None if unusable."""
    fields = rest.split()
    try:
        rec, start, end = fields[0], float(fields[1]), float(fields[2])
        if len(fields) != 3:
            raise ValueError
    except (IndexError, ValueError):
        problems.append(Problem(Kind.MALFORMED_LINE, utt, str(path), f"expected 'rec start end', got {rest!r}"))
        return None
    if rec not in recordings:
        problems.append(Problem(Kind.UNKNOWN_RECORDING, utt, str(path), f"recording {rec!r}"))
        return None
    if start < 0 or (end != -1 and start >= end):
        problems.append(Problem(Kind.BAD_SEGMENT, utt, str(path), f"start {start:g} end {end:g}"))
        return None
    return rec, Segment(utt, start, None if end == -1 else end)


def _plan_jobs(src: Path, tables: dict[str, dict[str, str]], problems: list[Problem]) -> list[RecordingJob]:
    """Group utterances by recording, reporting wav.scp lines without an entry."""
    recordings = tables.get("wav.scp", {})
    for rec in sorted(rec for rec, entry in recordings.items() if not entry):
        problems.append(Problem(Kind.MALFORMED_LINE, rec, str(src / "wav.scp"), "no path or command"))
    recordings = {rec: entry for rec, entry in recordings.items() if entry}
    if "segments" not in tables:
        return [RecordingJob(rec, entry, (Segment(rec),)) for rec, entry in sorted(recordings.items())]
    by_rec = defaultdict(list)
    for utt, rest in sorted(tables["segments"].items()):
        parsed = _parse_segment(utt, rest, src / "segments", recordings, problems)
        if parsed:
            by_rec[parsed[0]].append(parsed[1])
    return [RecordingJob(rec, recordings[rec], tuple(segs)) for rec, segs in sorted(by_rec.items())]


def _check_entries(src: Path, utts: set[str], tables: dict[str, dict[str, str]], problems: list[Problem]) -> None:
    """Cross-check text, utt2spk, utt2category and spk2utt against the utterance ids.

    Ids are compared as they read on screen (:func:`visible`): an id with an invisible character,
    reported once by :func:`_read_table` in whichever file holds it, is not reported again as
    missing or orphaned in the others.
    """
    utts = {visible(utt) for utt in utts}
    for name in ("text", "utt2spk", "utt2category"):
        table, path = tables.get(name), str(src / name)
        if table is None:
            continue
        seen = {visible(key) for key in table}
        problems += [Problem(Kind.MISSING_ENTRY, utt, path) for utt in sorted(utts - seen)]
        problems += [Problem(Kind.ORPHAN_ENTRY, utt, path) for utt in sorted(seen - utts)]
    for utt, words in tables.get("text", {}).items():
        if not words:
            problems.append(Problem(Kind.EMPTY_TEXT, utt, str(src / "text")))
        elif "\ufffd" not in words and not units(normalize_text(words)):  # not UTF-8: reported already
            detail = f"{words!r} has no word left after the scoring normalization"
            problems.append(Problem(Kind.EMPTY_TEXT, utt, str(src / "text"), detail))
    problems += [
        Problem(Kind.MALFORMED_LINE, utt, str(src / "utt2spk"), f"speaker {spk!r}")
        for utt, spk in tables.get("utt2spk", {}).items()
        if not spk or " " in spk
    ]
    problems += [
        Problem(Kind.BAD_CATEGORY, utt, str(src / "utt2category"), repr(category))
        for utt, category in tables.get("utt2category", {}).items()
        if category not in CATEGORIES
    ]
    if "spk2utt" in tables and "utt2spk" in tables:
        problems += _spk2utt_mismatches(src / "spk2utt", tables["utt2spk"], tables["spk2utt"])


def _spk2utt_mismatches(path: Path, utt2spk: dict[str, str], given: dict[str, str]) -> list[Problem]:
    """A problem for each utterance that ``spk2utt`` (``given``) lists under other speakers than
    ``utt2spk`` gives it, naming both."""
    speaker = {visible(utt): spk for utt, spk in utt2spk.items()}
    listed: dict[str, list[str]] = defaultdict(list)
    for spk, utts in given.items():
        for utt in utts.split():
            listed[visible(utt)].append(visible(spk))
    problems = []
    for utt in sorted(speaker.keys() | listed.keys()):
        if listed.get(utt) != [speaker.get(utt)]:
            said = f"speaker {speaker[utt]!r}" if utt in speaker else "no entry"
            where = f"under {', '.join(map(repr, listed[utt]))}" if utt in listed else "not listed"
            problems.append(Problem(Kind.SPK2UTT_MISMATCH, utt, str(path), f"utt2spk: {said}; spk2utt: {where}"))
    return problems


def _check_tables(src: Path) -> tuple[dict[str, dict[str, str]], list[RecordingJob], list[Problem]]:
    """All checks that need no audio: returns the tables, the decoding jobs and the problems."""
    problems: list[Problem] = []
    tables = _load_tables(src, problems)
    jobs = _plan_jobs(src, tables, problems)
    utts = set(tables.get("segments", tables.get("wav.scp", {})))
    _check_entries(src, utts, tables, problems)
    return tables, jobs, problems


def _to_int16(wave: np.ndarray) -> np.ndarray:
    """Scale float audio in [-1, 1) to int16, clipping overshoot from resampling."""
    return np.clip(np.round(wave * 32768), -32768, 32767).astype(np.int16)


def _cut(job: RecordingJob, seg: Segment, wave: np.ndarray, num_frames: int, rate: int) -> np.ndarray | Problem:
    """Cut a segment from the 16 kHz waveform, or return the problem with it."""
    last = seg.start if seg.end is None else seg.end
    if round(last * rate) > num_frames:
        return Problem(
            Kind.BAD_SEGMENT, seg.utt, job.entry, f"{last:g} s is past the recording's end {num_frames / rate:g} s"
        )
    stop = len(wave) if seg.end is None else round(seg.end * SAMPLE_RATE)
    piece = wave[round(seg.start * SAMPLE_RATE) : stop]
    if len(piece) == 0:
        return Problem(Kind.EMPTY_AUDIO, seg.utt, job.entry, "0 samples")
    if len(piece) > MAX_SECONDS * SAMPLE_RATE:
        return Problem(Kind.TOO_LONG, seg.utt, job.entry, f"{len(piece) / SAMPLE_RATE:.2f} s")
    return piece


def _process_recording(job: RecordingJob, out_dir: Path | None) -> RecordingResult:
    """Decode a recording once, check its utterances and, if ``out_dir``, write the good ones."""
    try:
        data, rate = read_entry(job.entry)
    except AudioError as e:
        return RecordingResult(problems=[Problem(AUDIO_KINDS[e.problem], job.rec, job.entry, e.detail)])
    result = RecordingResult(rate=rate, channels=data.shape[1])
    wave = to_mono_16k(data, rate)
    for seg in job.segments:
        piece = _cut(job, seg, wave, len(data), rate)
        if isinstance(piece, Problem):
            result.problems.append(piece)
            continue
        if out_dir is not None:
            samples = _to_int16(piece)
            sf.write(out_dir / f"{seg.utt}.wav", samples, SAMPLE_RATE, subtype="PCM_16")
            result.digests[seg.utt] = hashlib.sha256(samples.tobytes()).hexdigest()
        result.num_samples[seg.utt] = len(piece)
    return result


def _run_jobs(jobs: list[RecordingJob], out_dir: Path | None, nj: int, what: str) -> list[RecordingResult]:
    """Process recordings over ``nj`` processes; results come back in job order.

    Raises:
        WorkerDied: a worker process was killed (naming ``what``, the work).
    """
    progress = partial(tqdm, total=len(jobs), desc="stage 2", unit="rec")
    return map_in_processes(partial(_process_recording, out_dir=out_dir), jobs, nj, what, progress)


def validate_data_dir(src: str | Path, nj: int = 1) -> list[Problem]:
    """Check a Kaldi data dir (decoding all audio) without writing; returns sorted problems."""
    src = Path(src)
    _, jobs, problems = _check_tables(src)
    results = _run_jobs(jobs, None, nj, f"checking {src}")
    return sort_problems(problems + [p for r in results for p in r.problems])


def _audio_files(entry: str) -> list[Path]:
    """The files a ``wav.scp`` entry reads: its path, or the existing files a pipe's command names."""
    if not entry.endswith("|"):
        return [Path(entry)]
    try:
        words = shlex.split(entry[:-1])
    except ValueError:  # unbalanced quotes: the pipe itself will fail and be reported
        words = entry[:-1].split()
    return [Path(word) for word in words if Path(word).is_file()]


def audio_records(src: Path, cache: dict[str, Record]) -> dict[str, Record]:
    """The identity and sha256 of every audio file ``src/wav.scp`` names (for a pipe, of the
    files named in its command), read again only where a file's identity is not the cached one."""
    if not (src / "wav.scp").is_file():
        return {}
    entries = read_kaldi_map(src / "wav.scp", lambda *_: None).values()
    return read_records(dict.fromkeys(path for entry in entries for path in _audio_files(entry)), cache)


def source_signature(src: Path, records: dict[str, Record]) -> dict[str, str]:
    """What a formatted dir is made from: the sha256 of each data file of ``src``, and one sha256
    of the bytes of every audio file (``records``, from :func:`audio_records`)."""
    files = {name: file_sha256(src / name) for name in REQUIRED_FILES + OPTIONAL_FILES if (src / name).is_file()}
    audio = hashlib.sha256("".join(f"{path}\t{r.sha256}\n" for path, r in records.items()).encode())
    return {**files, "audio files": audio.hexdigest()}


def _read_marker(dst: Path) -> dict | None:
    """The done marker of ``dst``, None if there is none."""
    marker = dst / DONE_MARKER
    return json.loads(marker.read_text()) if marker.is_file() else None


def _cached_records(done: dict | None) -> dict[str, Record]:
    """The audio records of a done marker (none in a marker without them)."""
    return {path: Record.from_json(fields) for path, fields in (done or {}).get("audio", {}).items()}


def staleness(src: Path, dst: Path, done: dict | None, records: dict[str, Record]) -> str | None:
    """Why ``dst`` (done marker ``done``) is not the complete output of ``src`` as it is now, whose
    audio files are ``records``; None if it is."""
    if done is None:
        return f"{dst} holds no complete output"
    if done.get("src") != str(src.resolve()):
        return f"{dst} was made from {done.get('src')}"
    before, now = done.get("sources", {}), source_signature(src, records)
    changed = sorted(name for name in before.keys() | now.keys() if before.get(name) != now.get(name))
    if not changed:
        return None
    files = changed_files(_cached_records(done), records) if "audio" in done else []
    if files:
        more = f" and {len(files) - 3} more" if len(files) > 3 else ""
        changed[changed.index("audio files")] = f"audio files ({'; '.join(files[:3])}{more})"
    return f"changed in {src} since {dst} was made: {', '.join(changed)}"


def _write_outputs(
    tmp: Path,
    dst: Path,
    src: Path,
    tables: dict[str, dict[str, str]],
    results: list[RecordingResult],
    records: dict[str, Record],
) -> None:
    """Write the Kaldi/ESPnet files and the done marker into ``tmp`` (destined for ``dst``)."""
    num_samples = {utt: n for r in results for utt, n in r.num_samples.items()}
    utts = sorted(num_samples)
    utt2spk = {utt: tables["utt2spk"][utt] for utt in utts}
    write_kaldi_map(tmp / "wav.scp", {utt: dst / "data" / f"{utt}.wav" for utt in utts})
    write_kaldi_map(tmp / "text", {utt: tables["text"][utt] for utt in utts})
    write_kaldi_map(tmp / "utt2spk", utt2spk)
    write_kaldi_map(tmp / "spk2utt", {spk: " ".join(us) for spk, us in spk2utt(utt2spk).items()})
    if "utt2category" in tables:
        write_kaldi_map(tmp / "utt2category", {utt: tables["utt2category"][utt] for utt in utts})
    write_kaldi_map(tmp / "utt2num_samples", num_samples)
    write_kaldi_map(tmp / "speech_shape", num_samples)
    write_kaldi_map(tmp / AUDIO_DIGESTS, {utt: digest for r in results for utt, digest in r.digests.items()})
    done = {
        "src": str(src.resolve()),
        "utterances": len(utts),
        "sources": source_signature(src, records),
        "audio": {path: record.to_json() for path, record in records.items()},
    }
    (tmp / DONE_MARKER).write_text(json.dumps(done, indent=1) + "\n")


def _log_fixes(results: list[RecordingResult]) -> None:
    """Log how many recordings were resampled or downmixed."""
    rates = Counter(r.rate for r in results if r.rate != SAMPLE_RATE)
    if rates:
        detail = ", ".join(f"{rate} Hz: {n}" for rate, n in sorted(rates.items()))
        log.info("resampled %d recording(s) to %d Hz (%s)", rates.total(), SAMPLE_RATE, detail)
    downmixed = sum(r.channels > 1 for r in results)
    if downmixed:
        log.info("downmixed %d multi-channel recording(s) to mono", downmixed)


def _remove_previous_output(dst: Path) -> None:
    """Delete ``dst`` if it is a stage-2 output (complete or failed) or empty; refuse otherwise."""
    if not dst.exists():
        return
    if not any((dst / name).exists() for name in (DONE_MARKER, "problems.txt")) and any(dst.iterdir()):
        raise FileExistsError(f"{dst} exists and is not a stage-2 output; not overwriting it")
    shutil.rmtree(dst)


def format_data_dir(src: str | Path, dst: str | Path, nj: int = 1, force: bool = False) -> bool:
    """Validate ``src`` and write the formatted dir ``dst``; False if skipped as up to date.

    Raises :class:`DataFormatError` (after writing ``<dst>/problems.txt``) if any problem is found.
    """
    src, dst = Path(src), Path(dst)
    done = _read_marker(dst)
    records = audio_records(src, _cached_records(done))  # before formatting: a file written meanwhile is redone
    reason = "--force" if force else staleness(src, dst, done, records)
    if reason is None:
        log.info("%s was made from %s as it is now (data files and the bytes of every audio file); skipped", dst, src)
        return False
    log.info("formatting %s into %s: %s", src, dst, reason)
    _remove_previous_output(dst)
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)  # leftover of an interrupted run
    (tmp / "data").mkdir(parents=True)
    tables, jobs, problems = _check_tables(src)
    results = _run_jobs(jobs, None if problems else tmp / "data", nj, f"formatting {src} into {dst}")
    problems = sort_problems(problems + [p for r in results for p in r.problems])
    if problems:
        shutil.rmtree(tmp)
        dst.mkdir(parents=True)
        (dst / "problems.txt").write_text(format_report(problems), encoding="utf-8")
        raise DataFormatError(problems)
    _log_fixes(results)
    _write_outputs(tmp, dst, src, tables, results, records)
    os.replace(tmp, dst)
    log.info("formatted %d utterance(s) into %s", sum(len(r.num_samples) for r in results), dst)
    return True
