"""Tests of espnet_cs.bootstrap: intervals over utterances and the paired bootstrap."""

from __future__ import annotations

import pytest

from espnet_cs.bootstrap import Interval, paired_difference, rate_interval

# five utterances: errors and reference units; the rate is 7 / 20 = 35 %
ERRORS, TOKENS = [1, 2, 1, 0, 3], [5, 4, 3, 6, 2]


def width(interval: Interval) -> float:
    return interval.high - interval.low


def test_interval_covers_the_rate_and_stays_within_the_utterance_rates():
    interval = rate_interval(ERRORS, TOKENS)
    assert interval.low < 35.0 < interval.high
    # a ratio of sums lies between the smallest (0/6) and largest (3/2) utterance ratio
    assert 0.0 <= interval.low and interval.high <= 150.0


def test_equal_utterance_rates_give_a_point_interval():
    assert rate_interval([1, 2, 3], [10, 20, 30]) == Interval(10.0, 10.0)
    assert rate_interval([2], [8]) == Interval(25.0, 25.0)


def test_interval_shrinks_with_more_utterances():
    once = rate_interval(ERRORS, TOKENS)
    four_times = rate_interval(ERRORS * 4, TOKENS * 4)
    assert four_times.low < 35.0 < four_times.high
    assert width(four_times) < 0.7 * width(once)  # about half: the standard error goes with 1/sqrt(n)


def test_deterministic_for_the_seed():
    errors, tokens = ERRORS * 4, TOKENS * 4
    assert rate_interval(errors, tokens) == rate_interval(errors, tokens)
    assert rate_interval(errors, tokens, seed=1) == rate_interval(errors, tokens, seed=1)
    assert rate_interval(errors, tokens, seed=1) != rate_interval(errors, tokens)


def test_no_utterances_no_interval():
    assert rate_interval([], []) is None
    assert paired_difference(([], []), ([], [])) is None


def test_identical_systems_differ_by_zero():
    result = paired_difference((ERRORS, TOKENS), (ERRORS, TOKENS))
    assert (result.difference, result.interval, result.p_value) == (0.0, Interval(0.0, 0.0), 1.0)


def test_clear_difference_excludes_zero():
    # system a makes 4-6 errors in every 10-token utterance, b 0-1: 100 * (50 - 5) / 100 = 45 points
    a = ([4, 5, 6, 5, 4, 6, 5, 5, 4, 6], [10] * 10)
    b = ([0, 1, 0, 1, 0, 1, 0, 1, 0, 1], [10] * 10)
    result = paired_difference(a, b)
    assert result.difference == pytest.approx(45.0)
    assert 0.0 < result.interval.low < 45.0 < result.interval.high
    assert result.p_value == 0.0  # no resample on the other side of zero
    reverse = paired_difference(b, a)
    assert reverse.difference == pytest.approx(-45.0) and reverse.interval.high < 0.0
    assert reverse.p_value == 0.0


def test_one_token_apart_is_not_significant():
    # b makes one more error on one of 20 utterances: a resample without it has difference 0, which
    # counts as the other side; about (19/20)**20 = 36 % of resamples lack it, so p is about 0.72
    tokens = [10] * 20
    result = paired_difference(([1] * 20, tokens), ([2] + [1] * 19, tokens))
    assert result.difference == pytest.approx(-0.5)
    assert result.interval.high == 0.0
    assert 0.6 < result.p_value < 0.85


def test_bad_terms_raise():
    with pytest.raises(ValueError, match="same utterances"):
        paired_difference(([1], [2]), ([1, 1], [2, 2]))
    with pytest.raises(ValueError, match="denominator positive"):
        rate_interval([1, 0], [2, 0])
