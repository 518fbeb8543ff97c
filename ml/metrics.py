"""Evaluation metrics for a binary score, from scikit-learn where it has them."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    f1_score,
    log_loss,
    precision_recall_curve,
    precision_score,
    recall_score,
    roc_auc_score,
)


def lift_at(y_true: np.ndarray, proba: np.ndarray, top_share: float) -> float:
    """Positive rate in the top `top_share` of scores divided by the overall positive rate."""
    y_true = np.asarray(y_true)
    base = y_true.mean()
    if base == 0:
        return float("nan")
    k = max(1, int(np.ceil(len(proba) * top_share)))
    top = np.argsort(-np.asarray(proba), kind="stable")[:k]
    return float(y_true[top].mean() / base)


def best_f1_threshold(y_true: np.ndarray, proba: np.ndarray) -> float:
    """The probability threshold that maximises F1 on the given rows."""
    precision, recall, thresholds = precision_recall_curve(y_true, proba)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
    best = int(np.argmax(f1[:-1])) if len(thresholds) else 0
    return float(thresholds[best]) if len(thresholds) else 0.5


def evaluate(y_true: np.ndarray, proba: np.ndarray, threshold: float) -> dict[str, float]:
    y_true = np.asarray(y_true).astype(int)
    proba = np.clip(np.asarray(proba, dtype=float), 1e-6, 1 - 1e-6)
    flagged = proba >= threshold
    both_classes = 0 < y_true.sum() < len(y_true)
    return {
        "rows": float(len(y_true)),
        "positive_rate": float(y_true.mean()),
        "roc_auc": float(roc_auc_score(y_true, proba)) if both_classes else float("nan"),
        "pr_auc": float(average_precision_score(y_true, proba)) if both_classes else float("nan"),
        "brier": float(brier_score_loss(y_true, proba)),
        "log_loss": float(log_loss(y_true, proba, labels=[0, 1])),
        "threshold": float(threshold),
        "precision_at_threshold": float(precision_score(y_true, flagged, zero_division=0)),
        "recall_at_threshold": float(recall_score(y_true, flagged, zero_division=0)),
        "f1_at_threshold": float(f1_score(y_true, flagged, zero_division=0)),
        "share_flagged": float(flagged.mean()),
        "lift_top_decile": lift_at(y_true, proba, 0.10),
        "mean_predicted": float(proba.mean()),
    }
