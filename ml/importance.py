"""Permutation importance of each raw column: the mean drop in PR-AUC when its values are shuffled across rows.

A shuffled raw column moves exactly the prepared columns it owns (ml/pipeline.py's layout), so the rows are
prepared once and each raw column's block of prepared columns is shuffled there; only the estimator and its
calibration run per column and shuffle. When the layout is not known, each shuffle runs the whole pipeline
(the same figures, slower). scikit-learn's permutation_importance shuffles the columns of the matrix it is
given, so on the prepared matrix it would rank one-hot and indicator columns, not the raw columns.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score

from ml.pipeline import UnsupportedPipeline, calibrated_parts


def row_orders(rows: int, repeats: int, seed: int) -> list[np.ndarray]:
    """The shuffles: every column is shuffled by the same `repeats` row orders."""
    rng = np.random.default_rng(seed)
    return [rng.permutation(rows) for _ in range(repeats)]


def _mean_drops(features: list[str], orders: list[np.ndarray], y: np.ndarray, base: float,
                probability_shuffled) -> pd.Series:
    """Per column, the mean of base PR-AUC minus the PR-AUC with that column shuffled by each order;
    probability_shuffled(column, order) gives the probabilities (None: the column cannot move them)."""
    drops = {}
    for column in features:
        scores = []
        for order in orders:
            p = probability_shuffled(column, order)
            scores.append(0.0 if p is None else base - average_precision_score(y, p))
        drops[column] = float(np.mean(scores))
    return pd.Series(drops)


def permutation_importances(calibrated, frame: pd.DataFrame, y: np.ndarray, features: list[str],
                            orders: list[np.ndarray], whole_pipeline: bool = False) -> pd.Series:
    """Mean PR-AUC drop per raw column over the given row orders (from row_orders), by raw column name."""
    y = np.asarray(y, dtype=int)
    try:
        parts = None if whole_pipeline else calibrated_parts(calibrated)
    except (UnsupportedPipeline, AttributeError, KeyError):
        parts = None
    if parts is None:
        rows = frame[features].reset_index(drop=True)

        def whole(column, order):
            return calibrated.predict_proba(rows.assign(**{column: rows[column].to_numpy()[order]}))[:, 1]
        return _mean_drops(features, orders, y, average_precision_score(y, calibrated.predict_proba(rows)[:, 1]),
                           whole)
    encoded = np.array(parts.prepare.transform(frame[features]), dtype=float)

    def prepared(column, order):
        positions = parts.positions.get(column, [])
        if not positions:  # every prepared column it had was dropped as near-constant: shuffling changes nothing
            return None
        own = encoded[:, positions].copy()
        encoded[:, positions] = own[order]
        try:
            return parts.calibrated(parts.response(encoded))
        finally:
            encoded[:, positions] = own
    return _mean_drops(features, orders, y, average_precision_score(y, parts.calibrated(parts.response(encoded))),
                       prepared)
