"""Tests of espnet_cs.conditions: the acoustic condition class of each line of an utt2condition."""

from __future__ import annotations

import pytest

from espnet_cs.conditions import condition_class, read_condition_classes


@pytest.mark.parametrize(
    ("description", "expected"),
    [
        ("speed=1.0 rt60=dry noise=none level=-20.0", "clean"),
        ("speed=0.9 rt60=0.43 noise=none level=-31.2", "reverberant"),
        ("speed=1.1 rt60=dry noise=white snr=6.5 level=-28.0", "noisy"),
        ("speed=1.1 rt60=dry noise=babble/4 snr=12.3 level=-24.1", "noisy"),
        ("speed=1.1 rt60=0.25 noise=brown snr=6.5 level=-28.0", "reverberant+noisy"),
        ("rt60=0.7 noise=babble/6", "reverberant+noisy"),
    ],
)
def test_condition_class(description, expected):
    assert condition_class(description) == expected


def test_read_condition_classes(tmp_path):
    path = tmp_path / "utt2condition"
    path.write_text(
        "ts001-cs-000032 speed=1.1 rt60=0.25 noise=white snr=6.5 level=-28.0\n\n"
        "ts002-zh-000001 speed=1.0 rt60=dry noise=none level=-20.0\n"
    )
    assert read_condition_classes(path) == {"ts001-cs-000032": "reverberant+noisy", "ts002-zh-000001": "clean"}


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("u2 speed=1.0 noise=none", "utterance u2: no rt60"),
        ("u2 speed=1.0", "utterance u2: no rt60 and no noise"),
        ("u2 rt60=dry noise=fog", "utterance u2: noise=fog is none of none, white, pink, brown, babble/<talkers>"),
        ("u2 rt60=dry noise=babble/x", "noise=babble/x is none of"),
        ("u2 rt60=wet noise=none", "utterance u2: rt60=wet is neither 'dry' nor seconds"),
        ("u2 rt60=-0.3 noise=none", "rt60=-0.3 is neither 'dry' nor seconds"),
        ("u2 rt60=dry noise=none snr", "utterance u2: field 'snr' is not key=value"),
        ("u2 rt60=dry rt60=0.3 noise=none", "utterance u2: key 'rt60' appears twice"),
        ("u2", "utterance u2: no rt60 and no noise"),
        ("u1 rt60=dry noise=none", "utterance u1 appears twice"),
    ],
)
def test_malformed_line_names_file_line_and_utterance(tmp_path, line, problem):
    path = tmp_path / "utt2condition"
    path.write_text(f"u1 rt60=dry noise=none\n{line}\n")
    with pytest.raises(ValueError) as error:
        read_condition_classes(path)
    assert str(error.value).startswith(f"{path}:2: ")
    assert problem in str(error.value)
