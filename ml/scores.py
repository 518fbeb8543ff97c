"""From a calibrated probability to what a person reads: a 1-99 score and a tier."""

from __future__ import annotations

import numpy as np

# Tier cut-offs are probability quantiles of the validation period: the first tier is the top 10%, the second the
# next 20%, the third the next 30%, the last the rest.
TIER_TOP_SHARES = (0.10, 0.30, 0.60)


def to_score(probability: np.ndarray) -> np.ndarray:
    """Map [0, 1] onto the integers 1..99, monotonically (a probability of 0.5 is a score of 50)."""
    p = np.clip(np.asarray(probability, dtype=float), 0.0, 1.0)
    return np.clip(np.rint(1 + 98 * p), 1, 99).astype(int)


def tier_cutoffs(validation_proba: np.ndarray, labels: tuple[str, ...]) -> dict[str, float]:
    """The lowest probability that earns each tier but the last."""
    return {label: float(np.quantile(validation_proba, 1 - share)) for label, share in zip(labels, TIER_TOP_SHARES)}


def to_tier(probability: np.ndarray, cutoffs: dict[str, float], labels=("A", "B", "C", "D")) -> np.ndarray:
    """The best tier whose cut-off the probability reaches; the last tier otherwise."""
    p = np.asarray(probability, dtype=float)
    top = labels[:-1]
    return np.select([p >= cutoffs[label] for label in top], list(top), labels[-1])
