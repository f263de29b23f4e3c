"""Decode dirs: hypotheses (``token``, ``token_lang``, ``text``) and ``decode_info.json``; merging the dirs of split jobs.

``text`` is removed first and written last, so a dir with ``text`` is complete. ``decode_info.json``
holds the decode's settings (data, model, task tokens, padding, guard, batch size, ...) and its cost
(utterances, audio and decoding seconds). The settings identify what the hypotheses were made
from: the audio (stage 2's digests, :func:`espnet_cs.splitting.audio_sha256`), the model file's and
backbone's sha256 and the decoding options. A complete dir with the settings a decode would use
need not be decoded again (:func:`decode_staleness` says why otherwise): a rerun redoes what changed,
and a rerun of split jobs only the failed ones. A decode variant (``decode_variant``, asr.sh
``--decode_variant``) names a set of decoding options: its dir never takes a decode made with other
options (:func:`variant_conflict`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from espnet_cs.audio import SAMPLE_RATE
from espnet_cs.kaldi_dir import read_kaldi_map, write_atomic, write_kaldi_map
from espnet_cs.splitting import audio_sha256

HYPOTHESIS_FILES = ("token", "token_lang", "text")  # text last: it marks a complete dir
COST_KEYS = (
    "utterances",
    "audio_samples",
    "audio_seconds",
    "decode_seconds",
    "real_time_factor",
    "jobs",
    "hypotheses_cut",
)
SETTINGS_PER_DECODE_SPLIT = ("data_dir", "audio_sha256", "derived_from")  # differ between the splits of one decode
# settings that say what was decoded (data, model, task tokens, padding) or how it was batched; the rest are the
# decoding options (search, loop control, int8) that a decode variant names
INPUT_KEYS = (
    "data_dir",
    "audio_sha256",
    "model_file",
    "model_file_sha256",
    "backbone",
    "backbone_sha256",
    "task_tokens",
    "task_token_ids",
    "pad_to_30s",
    "batch_size",
    "derived_from",
    "decode_variant",
)
VARIANT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


def settings_of(info: Mapping[str, Any]) -> dict[str, Any]:
    """The settings part of a ``decode_info.json`` (everything but the cost)."""
    return {key: value for key, value in info.items() if key not in COST_KEYS}


def read_info(out_dir: Path) -> dict[str, Any]:
    return json.loads((out_dir / "decode_info.json").read_text())


def decode_staleness(out_dir: Path, settings: Mapping[str, Any]) -> str | None:
    """Why ``out_dir`` does not hold a complete decode made with ``settings``; None if it does."""
    if not (out_dir / "text").exists() or not (out_dir / "decode_info.json").exists():
        return f"{out_dir} holds no complete decode"
    before = settings_of(read_info(out_dir))
    changed = sorted(key for key in before.keys() | settings.keys() if before.get(key) != settings.get(key))
    return f"changed since {out_dir} was decoded: {', '.join(changed)}" if changed else None


def check_variant_name(name: str) -> None:
    """Raise ValueError unless ``name`` can name a decode variant: one word (letters, digits, ``_ . + -``)
    that does not end in ``_guard`` (the suffix of the guarded hypotheses' systems)."""
    if not VARIANT_NAME.fullmatch(name):
        raise ValueError(f"decode variant {name!r}: not one word of letters, digits, _ . + - (e.g. beam5)")
    if name == "guard" or name.endswith("_guard"):
        raise ValueError(f"decode variant {name!r}: <system>_guard names the guarded hypotheses; choose another name")


def decoding_options(settings: Mapping[str, Any]) -> dict[str, Any]:
    """The decoding options among a decode's settings: all but :data:`INPUT_KEYS`."""
    return {key: value for key, value in settings.items() if key not in INPUT_KEYS}


def variant_conflict(out_dir: Path, settings: Mapping[str, Any]) -> str | None:
    """Why ``out_dir`` may not take a decode with ``settings``: it holds a complete decode of the same
    decode variant made with other decoding options (None if not, or if ``settings`` name no variant)."""
    variant = settings.get("decode_variant")
    if not variant or not (out_dir / "text").exists() or not (out_dir / "decode_info.json").exists():
        return None
    before = read_info(out_dir)
    if before.get("decode_variant") != variant:
        return None
    old, new = decoding_options(settings_of(before)), decoding_options(settings)
    changed = [
        f"{key} {old.get(key)} -> {new.get(key)}"
        for key in sorted(old.keys() | new.keys())
        if old.get(key) != new.get(key)
    ]
    if not changed:
        return None
    return (
        f"{out_dir} holds decode variant {variant} made with other decoding options ({'; '.join(changed)}): "
        f"name these options another decode variant, or remove {out_dir} to decode {variant} again"
    )


def write_decode_dir(out_dir: Path, info: Mapping[str, Any], hypotheses: Mapping[str, Mapping[str, str]]) -> None:
    """Write ``decode_info.json`` and the ``HYPOTHESIS_FILES`` (``{file: {utt: value}}``), ``text`` last."""
    (out_dir / "text").unlink(missing_ok=True)
    write_atomic(out_dir / "decode_info.json", json.dumps(info, indent=2) + "\n")
    for name in HYPOTHESIS_FILES:
        write_kaldi_map(out_dir / name, hypotheses[name])


def merge_decode_dirs(
    split_dirs: Sequence[Path], data_dir: Path, out_dir: Path, derived_from: str | None = None
) -> dict[str, Any]:
    """Merge the decode dirs of the splits of ``data_dir`` into ``out_dir``; returns its ``decode_info``.

    The hypothesis files hold the splits' lines sorted by key, as one job writes them. Cost
    figures are summed (``decode_seconds`` is then the decoding time of all jobs together).

    Raises:
        ValueError: a split is incomplete, the splits differ in their settings, they do not
            cover the utterances of ``data_dir`` exactly once, or ``out_dir`` holds their decode
            variant made with other decoding options (:func:`variant_conflict`).
    """
    infos: list[dict[str, Any]] = []
    hypotheses: dict[str, dict[str, str]] = {name: {} for name in HYPOTHESIS_FILES}
    for split_dir in split_dirs:
        if not (split_dir / "text").exists():
            raise ValueError(f"{split_dir} is not a complete decode (no text): rerun that split")
        infos.append(read_info(split_dir))
        for name in HYPOTHESIS_FILES:
            values = read_kaldi_map(split_dir / name, verbatim=True)  # a hypothesis may start with a space
            twice = sorted(set(values) & set(hypotheses[name]))
            if twice:
                raise ValueError(f"{split_dir}/{name}: utterances decoded by another split too, e.g. {twice[:3]}")
            hypotheses[name].update(values)
    common = {k: v for k, v in settings_of(infos[0]).items() if k not in SETTINGS_PER_DECODE_SPLIT}
    for split_dir, info in zip(split_dirs, infos):
        differing = sorted(
            k
            for k in (set(common) | set(settings_of(info))) - set(SETTINGS_PER_DECODE_SPLIT)
            if info.get(k) != common.get(k)
        )
        if differing:
            raise ValueError(f"{split_dir} was decoded with other settings than {split_dirs[0]}: {differing}")
    wanted = set(read_kaldi_map(data_dir / "wav.scp"))
    for name, table in hypotheses.items():
        if set(table) != wanted:
            missing, extra = sorted(wanted - set(table)), sorted(set(table) - wanted)
            raise ValueError(
                f"the splits' {name} files do not match {data_dir}: missing {missing[:3]}, extra {extra[:3]}"
            )
    if "derived_from" in infos[0] and derived_from is None:
        raise ValueError("these hypotheses are derived from another decode dir: say which (derived_from)")

    merged = {**infos[0], "data_dir": str(data_dir), "audio_sha256": audio_sha256(data_dir)}
    if derived_from is not None:
        merged["derived_from"] = derived_from
    conflict = variant_conflict(out_dir, settings_of(merged))
    if conflict:
        raise ValueError(conflict)
    for key in ("utterances", "audio_samples", "hypotheses_cut"):
        if key in merged:
            merged[key] = sum(info[key] for info in infos)
    decode_seconds = sum(info["decode_seconds"] for info in infos)
    audio_seconds = merged["audio_samples"] / SAMPLE_RATE
    merged.update(
        decode_seconds=round(decode_seconds, 2),
        audio_seconds=round(audio_seconds, 2),
        real_time_factor=round(decode_seconds / audio_seconds, 4),
        jobs=len(infos),
    )
    write_decode_dir(out_dir, merged, hypotheses)
    return merged
