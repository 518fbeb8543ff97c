"""Threshold policies: how the "flag this" cut-off is chosen on the validation period.

Spelled as a setting (SCOREHOUSE_THRESHOLD_POLICY): `f1` (default) maximises F1; `precision:0.4`
takes the lowest threshold reaching that precision; `recall:0.8` the highest threshold still reaching
that recall; `capacity:200` flags about 200 entities per as-of date (the top 200 a day or a week).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.metrics import best_f1_threshold, threshold_curve


def choose_threshold(policy: str, y_true: np.ndarray, proba: np.ndarray, dates: pd.Series) -> float:
    kind, _, value = policy.partition(":")
    if kind == "f1":
        return best_f1_threshold(y_true, proba)
    if kind not in ("precision", "recall", "capacity") or not value:
        raise ValueError(f"unknown threshold policy {policy!r}: use f1, precision:P, recall:R or capacity:N")
    target = float(value)
    if kind == "capacity":
        per_date = pd.Series(proba).groupby(pd.to_datetime(dates).to_numpy()).size().mean()
        share = min(1.0, target / max(per_date, 1.0))
        return float(np.quantile(proba, 1 - share))
    curve = threshold_curve(y_true, proba, points=201)
    if kind == "precision":
        reaching = curve[curve.precision >= target]
        return float(reaching.threshold.min()) if len(reaching) else float(curve.threshold.max())
    reaching = curve[curve.recall >= target]
    return float(reaching.threshold.max()) if len(reaching) else float(curve.threshold.min())
