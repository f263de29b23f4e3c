"""The results archive: what the report reads of each scored system, small enough to commit beside RESULTS.md.

``exp/`` holds checkpoints and is not committed, so a new clone has none of the per-utterance counts
behind the intervals and paired comparisons of the runs made before it. :func:`archive` copies into
a tracked directory (cs_bench: ``results/``), for each ``exp/<system>/decode_<set>``, its
``scores.json`` and ``decode_info.json``, and writes the system's training summary
(:func:`training_summary`: what the report reads of ``config.yaml`` and ``checkpoint.pth``) to
``<system>/training.json``, with ESPnet's loss and accuracy plots of each training run it names
(``<run>/images/``); it copies stage 4's ``lid_heads/lid_heads.json`` and ``heads.png`` and
stage 10's ``attention/<set>/attention.{json,png}``. A decode dir in ``exp`` replaces its copy; what
only the archive holds stays, so the report built from the archive covers the runs of every clone.
Attention is kept per system too: a new ``attention.json`` keeps the archived systems it did not
measure where both measured the same heads (``selection``, ``fraction``, ``heads``), else replaces them.
Given the corpus's data dirs (``data_root``), it copies a set's ``utt2condition`` (the acoustic condition
of each utterance of a synthetic corpus) to ``data/<set>/utt2condition`` with the digest of the audio it
describes in ``data/<set>/audio_sha256`` (:func:`conditions_to_archive`).

Rows of one set are compared utterance by utterance, so they must be decoded from the same audio:
:func:`archive` refuses, before it writes anything, a decode whose ``audio_sha256`` differs from
that of a row the archive keeps for that set, and names both.
"""

from __future__ import annotations

import argparse
import json
import math
from datetime import timedelta
from pathlib import Path

from espnet_cs.conditions import read_condition_classes
from espnet_cs.config_yaml import load_yaml
from espnet_cs.kaldi_dir import write_atomic
from espnet_cs.renamed import refuse_renamed_training_options
from espnet_cs.splitting import AUDIO_DIGESTS, audio_sha256
from espnet_cs.task import count_trainable
from espnet_cs.trainer import load_checkpoint

DECODE_FILES = ("scores.json", "decode_info.json")
TRAINING_FILE = "training.json"
STAGE_FILES = ("lid_heads/lid_heads.json", "lid_heads/heads.png", "attention/*/attention.png")
CURVE_IMAGES = ("loss.png", "acc.png")  # ESPnet's plots of a training run, exp/<run>/images/
ATTENTION_FILES = "attention/*/attention.json"
SAME_MEASUREMENT = ("selection", "fraction", "heads")  # attention.json keys: systems measured alike
CONDITIONS, CONDITIONS_AUDIO = "utt2condition", "audio_sha256"  # in <archive>/data/<set>/


def training_summary(exp: Path) -> dict:
    """``{"trainable", "epochs", "seconds", "learning_rate", "curves"}`` of the run in ``exp`` (empty if it
    trained nothing).

    ``trainable`` is None for a backbone given as a file (its dimensions are not known by name);
    ``epochs`` and ``seconds`` (:func:`epoch_seconds`) are None without ``checkpoint.pth``;
    ``curves``: one :func:`loss_curve` per training run, first phase first (none without a checkpoint).
    A second phase (``init_param``) adds its first phase's: epochs ``"3+4"``, seconds summed, its curve.
    """
    config = exp / "config.yaml"
    if not config.exists():
        return {}
    conf = load_yaml(config)
    refuse_renamed_training_options(conf, str(config))
    args = argparse.Namespace(**conf)  # as ESPnet reads a run's config
    try:
        trainable, _ = count_trainable(args, args.whisper_model)
    except ValueError:
        trainable = None
    checkpoint = exp / "checkpoint.pth"
    reporter = load_checkpoint(checkpoint)["reporter"] if checkpoint.exists() else None
    info = {
        "trainable": trainable,
        "epochs": reporter["epoch"] if reporter else None,
        "seconds": epoch_seconds(reporter) if reporter else None,
        "learning_rate": (getattr(args, "optim_conf", None) or {}).get("lr"),
        "curves": [loss_curve(exp.name, reporter)] if reporter else [],
    }
    for init in args.init_param or []:
        first = training_summary(Path(init.split(":")[0]).parent)
        if first:
            info["epochs"] = f"{first['epochs'] or '?'}+{info['epochs'] or '?'}"
            if first["seconds"] is not None and info["seconds"] is not None:
                info["seconds"] += first["seconds"]
            info["curves"] = first["curves"] + info["curves"]
    return info


def loss_curve(run: str, reporter: dict) -> dict:
    """``{"run", "train_loss", "valid_loss"}``: the loss ESPnet's ``Reporter`` state records for each
    finished epoch of the run in ``exp/<run>`` (None for an epoch without it)."""
    stats = [reporter["stats"][epoch] for epoch in sorted(reporter["stats"])]

    def losses(phase: str) -> list[float | None]:
        values = [epoch.get(phase, {}).get("loss") for epoch in stats]
        return [None if value is None or math.isnan(value) else round(float(value), 4) for value in values]

    return {"run": run, "train_loss": losses("train"), "valid_loss": losses("valid")}


def epoch_seconds(reporter: dict) -> int | None:
    """Training plus validation seconds of the finished epochs in ESPnet's ``Reporter`` state (None if none).

    The checkpoint holds every finished epoch once, whichever attempt of a resumed run ran it.
    """
    times = [
        stats[phase]["time"]
        for stats in reporter["stats"].values()
        for phase in ("train", "valid")
        if "time" in stats.get(phase, {})
    ]
    return round(sum(times, timedelta()).total_seconds()) if times else None


def trained_dir(decode_dir: Path, info: dict) -> Path:
    """The experiment whose training a decode dir reports: that of the model file of a decode variant
    (``exp/<system>_<variant>`` holds no training), else that of the dir guarded hypotheses are cut from."""
    if info.get("decode_variant") and info.get("model_file"):
        return Path(info["model_file"]).parent
    return Path(info["derived_from"]).parent if "derived_from" in info else decode_dir.parent


def system_training(system_dir: Path, decode_dir: Path, info: dict) -> dict:
    """A system's training summary: its archived ``training.json``, else read from its experiment."""
    archived = system_dir / TRAINING_FILE
    if archived.exists():
        return json.loads(archived.read_text())
    return training_summary(trained_dir(decode_dir, info))


def _audio(decode_dir: Path) -> str | None:
    info_file = decode_dir / "decode_info.json"
    return json.loads(info_file.read_text()).get("audio_sha256") if info_file.exists() else None


def check_same_audio(archive_dir: Path, decode_dirs: list[Path]) -> None:
    """Raise ValueError if two of ``decode_dirs``, or one and a row the archive keeps for its set, differ in audio."""
    incoming: dict[str, tuple[Path, str]] = {}
    for decode_dir in decode_dirs:
        audio = _audio(decode_dir)
        if audio is None:
            continue
        first = incoming.setdefault(decode_dir.name, (decode_dir, audio))
        if first[1] != audio:
            raise ValueError(f"{decode_dir} and {first[0]} were decoded from different audio: rescore one of them")
    replaced = {(d.parent.name, d.name) for d in decode_dirs}
    for kept in sorted(archive_dir.glob("*/decode_*")):
        if (kept.parent.name, kept.name) in replaced or kept.name not in incoming:
            continue
        audio, (decode_dir, new_audio) = _audio(kept), incoming[kept.name]
        if audio is not None and audio != new_audio:
            raise ValueError(
                f"{decode_dir} was decoded from other audio than the archived {kept} (audio_sha256 {new_audio[:12]} "
                f"against {audio[:12]}): the data changed; regenerate it as the archive's rows were made, "
                f"or remove the archived rows of {kept.name} (git rm -r {archive_dir}/*/{kept.name})"
            )


def conditions_dir(archive_dir: Path, test_set: str) -> Path:
    """Where the archive keeps the ``utt2condition`` of ``test_set`` and the digest of its audio."""
    return archive_dir / "data" / test_set


def archived_conditions(archive_dir: Path, test_set: str) -> tuple[Path, str] | None:
    """The archived ``utt2condition`` of ``test_set`` and the ``audio_sha256`` of the audio it describes, if any."""
    directory = conditions_dir(archive_dir, test_set)
    if not (directory / CONDITIONS).exists() or not (directory / CONDITIONS_AUDIO).exists():
        return None
    return directory / CONDITIONS, (directory / CONDITIONS_AUDIO).read_text().strip()


def conditions_to_archive(data_root: Path, decode_dirs: list[Path]) -> dict[str, tuple[bytes, str]]:
    """``{set: (utt2condition, audio_sha256)}`` for each set of ``decode_dirs`` whose ``data_root/<set>/utt2condition``
    describes the audio they were decoded from: the stage-2 dir a decode names (``data_dir``) still holds that audio.

    Raises:
        ValueError: an ``utt2condition`` is malformed or describes other utterances than those decoded.
    """
    found: dict[str, tuple[bytes, str]] = {}
    for decode_dir in decode_dirs:
        test_set = decode_dir.name.removeprefix("decode_")
        source = data_root / test_set / CONDITIONS
        info_file = decode_dir / "decode_info.json"
        if test_set in found or not source.exists() or not info_file.exists():
            continue
        info = json.loads(info_file.read_text())
        audio, stage2 = info.get("audio_sha256"), Path(info["data_dir"]) if "data_dir" in info else None
        if audio is None or stage2 is None or not (stage2 / AUDIO_DIGESTS).exists() or audio_sha256(stage2) != audio:
            continue
        described = read_condition_classes(source).keys()
        decoded = json.loads((decode_dir / "scores.json").read_text()).get("per_utterance", {}).keys()
        if described != decoded:
            raise ValueError(
                f"{source} describes {len(described)} utterances, {len(described & decoded)} of the {len(decoded)} "
                f"that {decode_dir} decoded from {stage2}: regenerate {data_root / test_set} as its audio was made"
            )
        found[test_set] = (source.read_bytes(), audio)
    return found


def archive(exp_dir: Path, archive_dir: Path, data_root: Path | None = None) -> list[Path]:
    """Copy what the report reads of ``exp_dir`` into ``archive_dir`` (module docstring), with the acoustic
    conditions of ``data_root``'s sets (:func:`conditions_to_archive`) if given; the decode dirs copied."""
    decode_dirs = sorted(scores.parent for scores in exp_dir.glob("*/decode_*/scores.json"))
    check_same_audio(archive_dir, decode_dirs)
    conditions = conditions_to_archive(data_root, decode_dirs) if data_root is not None else {}
    # Every checkpoint is read before anything is copied: an unreadable one leaves the archive as it was.
    summaries: dict[Path, dict] = {}
    trained_dirs = []
    for decode_dir in decode_dirs:
        info_file = decode_dir / "decode_info.json"
        trained_dirs.append(trained_dir(decode_dir, json.loads(info_file.read_text()) if info_file.exists() else {}))
        if trained_dirs[-1] not in summaries:
            summaries[trained_dirs[-1]] = training_summary(trained_dirs[-1])
    for decode_dir, trained in zip(decode_dirs, trained_dirs):
        system_dir = archive_dir / decode_dir.parent.name
        for name in DECODE_FILES:
            if (decode_dir / name).exists():
                write_atomic(system_dir / decode_dir.name / name, (decode_dir / name).read_bytes())
        write_atomic(system_dir / TRAINING_FILE, json.dumps(summaries[trained], indent=2) + "\n")
    for test_set, (described, audio) in conditions.items():
        write_atomic(conditions_dir(archive_dir, test_set) / CONDITIONS, described)
        write_atomic(conditions_dir(archive_dir, test_set) / CONDITIONS_AUDIO, audio + "\n")
    for run in sorted({curve["run"] for summary in summaries.values() for curve in summary.get("curves", [])}):
        for name in CURVE_IMAGES:
            if (exp_dir / run / "images" / name).exists():
                write_atomic(archive_dir / run / "images" / name, (exp_dir / run / "images" / name).read_bytes())
    for pattern in STAGE_FILES:
        for source in exp_dir.glob(pattern):
            write_atomic(archive_dir / source.relative_to(exp_dir), source.read_bytes())
    for source in exp_dir.glob(ATTENTION_FILES):
        target = archive_dir / source.relative_to(exp_dir)
        write_atomic(target, json.dumps(merged_attention(source, target), indent=1) + "\n")
    return decode_dirs


def merged_attention(source: Path, target: Path) -> dict:
    """Stage 10's ``attention.json`` of ``source``, with the systems of the archived ``target`` that
    it did not measure, if both measured the same heads (:data:`SAME_MEASUREMENT`) alike."""
    new = json.loads(source.read_text())
    if not target.exists():
        return new
    old = json.loads(target.read_text())
    if any(old.get(key) != new.get(key) for key in SAME_MEASUREMENT) or "heads" not in new:
        return new
    return {**new, "systems": {**old["systems"], **new["systems"]}}
