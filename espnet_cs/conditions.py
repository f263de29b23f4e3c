"""Acoustic condition classes of utterances, read from a synthetic corpus's ``utt2condition``.

``utt2condition`` (:mod:`espnet_cs.synth.acoustics`) has one ``key=value`` line per utterance,
e.g. ``ts001-cs-000032 speed=1.1 rt60=0.25 noise=white snr=6.5 level=-28.0``; ``rt60`` is ``dry``
without a room, ``noise`` one of ``none``, ``white``, ``pink``, ``brown``, ``babble/<talkers>``.
Its class (:data:`CLASSES`) says only whether the utterance was in a room and whether noise was added.
"""

from __future__ import annotations

from pathlib import Path

CLASSES = ("clean", "reverberant", "noisy", "reverberant+noisy")
NOISES = ("none", "white", "pink", "brown")  # and babble/<talkers>


def condition_class(description: str) -> str:
    """The class of a condition line without its utterance id (``speed=1.1 rt60=dry noise=none ...``).

    Raises:
        ValueError: a field is not ``key=value``, a key repeats, ``rt60`` or ``noise`` is missing or
            neither of the forms in the module docstring.
    """
    fields: dict[str, str] = {}
    for field in description.split():
        key, sep, value = field.partition("=")
        if not sep or not key or not value:
            raise ValueError(f"field {field!r} is not key=value")
        if key in fields:
            raise ValueError(f"key {key!r} appears twice")
        fields[key] = value
    missing = [key for key in ("rt60", "noise") if key not in fields]
    if missing:
        raise ValueError(f"no {' and no '.join(missing)}")
    rt60, noise = fields["rt60"], fields["noise"]
    if rt60 != "dry" and not _is_positive_number(rt60):
        raise ValueError(f"rt60={rt60} is neither 'dry' nor seconds")
    talkers = noise.removeprefix("babble/")
    if noise not in NOISES and not (noise.startswith("babble/") and talkers.isdigit() and int(talkers) > 0):
        raise ValueError(f"noise={noise} is none of {', '.join(NOISES)}, babble/<talkers>")
    reverberant, noisy = rt60 != "dry", noise != "none"
    return CLASSES[2 * noisy + reverberant]


def read_condition_classes(path: str | Path) -> dict[str, str]:
    """``{utt_id: class}`` of an ``utt2condition`` file (blank lines skipped).

    Raises:
        ValueError: naming the file, line and utterance of a malformed line or a repeated utterance id.
    """
    classes: dict[str, str] = {}
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            utt_id, _, description = line.strip().partition(" ")
            if not utt_id:
                continue
            if utt_id in classes:
                raise ValueError(f"{path}:{number}: utterance {utt_id} appears twice")
            try:
                classes[utt_id] = condition_class(description)
            except ValueError as error:
                raise ValueError(f"{path}:{number}: utterance {utt_id}: {error}") from None
    return classes


def _is_positive_number(text: str) -> bool:
    try:
        return float(text) > 0
    except ValueError:
        return False
