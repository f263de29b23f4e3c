"""Bootstrap confidence intervals over utterances for rates that are ratios of sums.

Every rate of :mod:`espnet_cs.scoring` is ``100 * sum(numerators) / sum(denominators)`` over the
utterances it covers (errors and reference units for MER, PIER and the switch-point error rate,
matching and aligned pairs for language accuracy; :func:`espnet_cs.scoring.rate_terms`).

- :func:`rate_interval`: resample the utterances with replacement (:data:`RESAMPLES` times, numpy's
  ``default_rng(SEED)``), compute the rate of each resample, and take the 2.5th and 97.5th
  percentiles: the 95% percentile interval.
- :func:`paired_difference`: two systems scored on the same utterances, each resample drawing the
  same utterances for both (the paired bootstrap of Koehn, EMNLP 2004); the difference of their
  rates, its 95% percentile interval, and the two-sided p-value
  ``min(1, 2 * min(#{d <= 0}, #{d >= 0}) / RESAMPLES)`` over the resampled differences ``d``: twice
  the share of resamples on the other side of zero (Koehn's one-sided share, doubled).

With the seed fixed, the same utterance count draws the same resamples, so intervals are
reproducible and every system's interval on a test set uses the same resamples.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

RESAMPLES = 1000
SEED = 0
PERCENTILES = (2.5, 97.5)  # a 95% interval


@dataclass(frozen=True)
class Interval:
    """A percentile interval, in the rate's unit (percent)."""

    low: float
    high: float


@dataclass(frozen=True)
class PairedDifference:
    """``rate(a) - rate(b)`` in points, its bootstrap interval and two-sided p-value."""

    difference: float
    interval: Interval
    p_value: float


def _resampled_rates(numerators: np.ndarray, denominators: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """``100 * sum(numerators) / sum(denominators)`` of each row of utterance ``indices``."""
    return 100.0 * numerators[indices].sum(axis=1) / denominators[indices].sum(axis=1)


def _indices(n: int, resamples: int, seed: int) -> np.ndarray:
    """``resamples`` rows of ``n`` utterance indices drawn with replacement."""
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def _interval(values: np.ndarray) -> Interval:
    low, high = np.percentile(values, PERCENTILES)
    return Interval(float(low), float(high))


def _terms(numerators: list[int], denominators: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """The terms as arrays; every denominator must be positive (an utterance the rate covers)."""
    num, den = np.asarray(numerators, dtype=float), np.asarray(denominators, dtype=float)
    if num.shape != den.shape or (den <= 0).any():
        raise ValueError("numerators and denominators must pair up, with every denominator positive")
    return num, den


def rate_interval(
    numerators: list[int], denominators: list[int], resamples: int = RESAMPLES, seed: int = SEED
) -> Interval | None:
    """95% percentile bootstrap interval of ``100 * sum(numerators) / sum(denominators)`` over the
    utterances (one term each); ``None`` without utterances."""
    num, den = _terms(numerators, denominators)
    if len(num) == 0:
        return None
    return _interval(_resampled_rates(num, den, _indices(len(num), resamples, seed)))


def paired_difference(
    a: tuple[list[int], list[int]],
    b: tuple[list[int], list[int]],
    resamples: int = RESAMPLES,
    seed: int = SEED,
) -> PairedDifference | None:
    """Paired bootstrap of ``rate(a) - rate(b)``, ``a`` and ``b`` being ``(numerators,
    denominators)`` of two systems over the same utterances in the same order; ``None`` without
    utterances."""
    num_a, den_a = _terms(*a)
    num_b, den_b = _terms(*b)
    if len(num_a) != len(num_b):
        raise ValueError(f"paired systems need the same utterances: {len(num_a)} against {len(num_b)}")
    if len(num_a) == 0:
        return None
    indices = _indices(len(num_a), resamples, seed)
    differences = _resampled_rates(num_a, den_a, indices) - _resampled_rates(num_b, den_b, indices)
    other_side = min((differences <= 0).sum(), (differences >= 0).sum())
    return PairedDifference(
        difference=float(100.0 * (num_a.sum() / den_a.sum() - num_b.sum() / den_b.sum())),
        interval=_interval(differences),
        p_value=float(min(1.0, 2.0 * other_side / resamples)),
    )
