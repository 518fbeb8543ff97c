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


def _whole_pipeline(calibrated, frame: pd.DataFrame, y: np.ndarray, features: list[str],
                    orders: list[np.ndarray]) -> pd.Series:
    rows = frame[features].reset_index(drop=True)
    base = average_precision_score(y, calibrated.predict_proba(rows)[:, 1])
    drops = {}
    for column in features:
        values = rows[column].to_numpy()
        scores = []
        for order in orders:
            shuffled = rows.assign(**{column: values[order]})
            scores.append(base - average_precision_score(y, calibrated.predict_proba(shuffled)[:, 1]))
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
        return _whole_pipeline(calibrated, frame, y, features, orders)
    encoded = np.array(parts.prepare.transform(frame[features]), dtype=float)
    base = average_precision_score(y, parts.calibrated(parts.response(encoded)))
    drops = {}
    for column in features:
        positions = parts.positions.get(column, [])
        if not positions:  # every prepared column it had was dropped as near-constant: shuffling changes nothing
            drops[column] = 0.0
            continue
        own = encoded[:, positions].copy()
        scores = []
        for order in orders:
            encoded[:, positions] = own[order]
            scores.append(base - average_precision_score(y, parts.calibrated(parts.response(encoded))))
        encoded[:, positions] = own
        drops[column] = float(np.mean(scores))
    return pd.Series(drops)
