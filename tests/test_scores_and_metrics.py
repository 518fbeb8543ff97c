"""Score scale, tiers, the metric helpers and drift."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from ml.metrics import BootstrapAUC, best_f1_threshold, evaluate, lift_at, ranked_roc_auc
from ml.scores import to_score, to_tier
from scoring.drift import psi


@given(st.lists(st.floats(min_value=0, max_value=1), min_size=1, max_size=50))
def test_score_is_monotonic_and_within_1_to_99(probabilities):
    p = np.sort(np.asarray(probabilities))
    s = to_score(p)
    assert s.min() >= 1 and s.max() <= 99
    assert (np.diff(s) >= 0).all()


def test_score_end_points():
    assert to_score(np.array([0.0, 0.5, 1.0])).tolist() == [1, 50, 99]


def test_tiers_follow_the_cutoffs():
    cutoffs = {"A": 0.6, "B": 0.3, "C": 0.1}
    tiers = to_tier(np.array([0.9, 0.6, 0.59, 0.3, 0.2, 0.1, 0.05]), cutoffs)
    assert tiers.tolist() == ["A", "A", "B", "B", "C", "C", "D"]


def test_lift_at_top_share():
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0])
    p = np.linspace(1, 0, 10)
    assert lift_at(y, p, 0.2) == pytest.approx(5.0)
    assert lift_at(y, p[::-1], 0.2) == pytest.approx(0.0)


def test_best_f1_threshold_separates_separable_classes():
    y = np.array([0, 0, 0, 1, 1])
    p = np.array([0.1, 0.2, 0.3, 0.7, 0.9])
    threshold = best_f1_threshold(y, p)
    assert 0.3 < threshold <= 0.7
    metrics = evaluate(y, p, threshold)
    assert metrics["f1_at_threshold"] == 1.0 and metrics["roc_auc"] == 1.0
    assert metrics["share_flagged"] == pytest.approx(0.4)


def test_psi_of_categories_counts_categories_seen_on_either_side():
    reference = pd.Series(["a", "a", "b", "b"])
    current = pd.Series(["a", "b", "b", "c", None])  # missing values are left out
    shares = {"a": (0.5, 0.25), "b": (0.5, 0.5), "c": (1e-4, 0.25)}  # (reference, current); absent -> 1e-4
    expected = sum((cur - ref) * np.log(cur / ref) for ref, cur in shares.values())
    assert psi(reference, current) == pytest.approx(expected, rel=1e-12)
    assert psi(reference, reference) == 0.0


def test_bootstrap_roc_auc_equals_roc_auc_of_the_drawn_rows():
    rng = np.random.default_rng(3)
    y = rng.random(2_000) < 0.05
    proba = np.round(rng.random(2_000) * 0.3 + y * 0.2, 2)  # rounded: many tied scores across the classes
    resampled = BootstrapAUC(y, proba)
    for _ in range(20):
        picked = rng.integers(0, len(y), 1_500)
        assert resampled.roc_auc(picked) == pytest.approx(roc_auc_score(y[picked], proba[picked]), abs=1e-12)
    assert resampled.roc_auc(np.flatnonzero(~y)[:50]) is None  # one class drawn: no figure


def test_ranked_roc_auc_equals_roc_auc_score():
    """The leakage audit's per-column ROC-AUC (one sort instead of scikit-learn's checks and curve) is the same
    figure, ties included (rounded scores, and a yes/no column as in the fill check)."""
    rng = np.random.default_rng(5)
    y = (rng.random(5_000) < 0.07).astype(int)
    for scores in (np.round(rng.normal(size=5_000) + y, 1), rng.random(5_000) < 0.3 + 0.4 * y, rng.normal(size=5_000)):
        assert ranked_roc_auc(y, scores) == pytest.approx(roc_auc_score(y, scores), abs=1e-12)
    with pytest.raises(ValueError, match="both classes"):
        ranked_roc_auc(np.zeros(10, dtype=int), rng.random(10))
