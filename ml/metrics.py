"""Evaluation metrics for a binary score, from scikit-learn where it has them."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.calibration import calibration_curve
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


def expected_calibration_error(y_true: np.ndarray, proba: np.ndarray, bins: int = 10) -> float:
    """Mean |observed rate - mean predicted| over equal-count bins, weighted by bin size."""
    y_true, proba = np.asarray(y_true, dtype=float), np.asarray(proba, dtype=float)
    order = np.argsort(proba, kind="stable")
    error = 0.0
    for chunk in np.array_split(order, bins):
        if len(chunk):
            error += len(chunk) * abs(y_true[chunk].mean() - proba[chunk].mean())
    return float(error / max(len(proba), 1))


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
        "calibration_error": expected_calibration_error(y_true, proba),
        "threshold": float(threshold),
        "precision_at_threshold": float(precision_score(y_true, flagged, zero_division=0)),
        "recall_at_threshold": float(recall_score(y_true, flagged, zero_division=0)),
        "f1_at_threshold": float(f1_score(y_true, flagged, zero_division=0)),
        "share_flagged": float(flagged.mean()),
        "lift_top_decile": lift_at(y_true, proba, 0.10),
        "mean_predicted": float(proba.mean()),
    }


def decile_table(y_true: np.ndarray, proba: np.ndarray, value: np.ndarray | None = None) -> pd.DataFrame:
    """Per score decile (1 = highest scores): rows, positives, lift, cumulative gain and, given a value per
    row (e.g. opportunity amount), the cumulative share of the positives' value captured."""
    y = np.asarray(y_true, dtype=float)
    order = np.argsort(-np.asarray(proba), kind="stable")
    worth = np.zeros(len(y)) if value is None else np.nan_to_num(np.asarray(value, dtype=float)) * y
    rows = []
    total_pos, total_value = y.sum(), worth.sum()
    cum_pos = cum_value = 0.0
    for decile, chunk in enumerate(np.array_split(order, 10), start=1):
        cum_pos += y[chunk].sum()
        cum_value += worth[chunk].sum()
        rows.append({
            "decile": decile,
            "rows": len(chunk),
            "positive_rate": float(y[chunk].mean()) if len(chunk) else float("nan"),
            "lift": float(y[chunk].mean() / y.mean()) if len(chunk) and y.mean() > 0 else float("nan"),
            "cumulative_gain": float(cum_pos / total_pos) if total_pos else float("nan"),
            "value_captured": float(cum_value / total_value) if total_value else float("nan"),
        })
    return pd.DataFrame(rows)


def threshold_curve(y_true: np.ndarray, proba: np.ndarray, points: int = 101) -> pd.DataFrame:
    """Precision, recall, F1 and share flagged (score >= threshold) at thresholds spread over the score's
    quantiles, read off scikit-learn's precision-recall curve."""
    y = np.asarray(y_true).astype(int)
    p = np.asarray(proba, dtype=float)
    thresholds = np.unique(np.quantile(p, np.linspace(0, 1, points)))
    precision, recall, cuts = precision_recall_curve(y, p)
    # the curve's point for a threshold t: the lowest distinct score at or above t flags the same rows
    at = np.searchsorted(cuts, thresholds, side="left")
    precision, recall = precision[at], (recall[at] if y.sum() else np.full(len(at), np.nan))
    share = (len(p) - np.searchsorted(np.sort(p), thresholds, side="left")) / max(len(p), 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(precision + recall > 0, 2 * precision * recall / (precision + recall), 0.0)
    return pd.DataFrame({"threshold": thresholds.astype(float), "precision": precision, "recall": recall,
                         "f1": np.nan_to_num(f1, nan=0.0), "share_flagged": share})


def text_codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """(code per row, the text of each code): values grouped by their text, missing as `(missing)`. Built from
    the distinct values, so a column of 100,000 rows costs one hash pass instead of 100,000 str() calls."""
    codes, uniques = pd.factorize(values, use_na_sentinel=False)
    text = np.array(["(missing)" if pd.isna(u) else str(u) for u in uniques], dtype=object)
    merged, labels = pd.factorize(text)  # distinct values with the same text (1 and "1") are one group
    return merged[codes] if len(codes) else codes, np.asarray(labels, dtype=object)


def segment_metrics(frame: pd.DataFrame, columns: tuple[str, ...], y: np.ndarray, proba: np.ndarray,
                    threshold: float, min_rows: int = 30) -> pd.DataFrame:
    """Metrics per value of each segment column (`column=value`; missing values as `(missing)`), for values
    with at least min_rows rows."""
    rows = []
    for column in columns:
        codes, labels = text_codes(frame[column])
        for code in sorted(range(len(labels)), key=labels.__getitem__):
            mask = codes == code
            if mask.sum() >= min_rows:
                rows.append({"segment": f"{column}={labels[code]}", **evaluate(y[mask], proba[mask], threshold)})
    return pd.DataFrame(rows, columns=["segment", "rows", "positive_rate", "mean_predicted", "roc_auc", "pr_auc",
                                       "brier"] if not rows else None)


def calibration_points(y_true: np.ndarray, proba: np.ndarray, bins: int = 10) -> pd.DataFrame:
    observed, predicted = calibration_curve(y_true, proba, n_bins=bins, strategy="quantile")
    return pd.DataFrame({"predicted": predicted, "observed": observed})


class BootstrapAUC:
    """ROC-AUC of resampled rows, each resample in linear time: the scores are sorted once, and a resample is the
    number of times each row was drawn. Equal to roc_auc_score on the drawn rows (ties count half)."""

    def __init__(self, y_true: np.ndarray, proba: np.ndarray) -> None:
        self.values, self.position = np.unique(np.asarray(proba, dtype=float), return_inverse=True)
        self.positive = np.asarray(y_true).astype(bool)

    def roc_auc(self, picked: np.ndarray) -> float | None:
        """The ROC-AUC of the rows at `picked` (repeats allowed); None when they hold a single class."""
        drawn = np.bincount(picked, minlength=len(self.positive)).astype(float)
        width = len(self.values)
        positives = np.bincount(self.position, weights=drawn * self.positive, minlength=width)
        negatives = np.bincount(self.position, weights=drawn * ~self.positive, minlength=width)
        total_positive, total_negative = positives.sum(), negatives.sum()
        if total_positive == 0 or total_negative == 0:
            return None
        negatives_below = np.cumsum(negatives) - negatives
        return float(positives @ (negatives_below + 0.5 * negatives) / (total_positive * total_negative))


MIN_SIGNAL_ROC_AUC = 0.55  # below it a ranking is too close to a coin toss to act on
SIGNAL_RESAMPLES = 200
SIGNAL_MAX_ROWS = 100_000


def ranked_roc_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """roc_auc_score's figure (ties count half) by one sort of the scores, for callers that take many on large
    rows: on 100,000 rows 3 ms against 24 ms (the leakage audit takes about 170 of them per model). Both classes
    must be present."""
    auc = BootstrapAUC(y_true, scores).roc_auc(np.arange(len(y_true)))
    if auc is None:
        raise ValueError("ROC-AUC needs both classes")
    return auc


def signal_verdict(y_true: np.ndarray, proba: np.ndarray, fold_roc_auc: float, seed: int = 0) -> tuple[bool, str]:
    """Whether a model ranks meaningfully better than the base rate (ROC-AUC 0.5), both where it was chosen and
    where it is judged: its mean selection-fold ROC-AUC and its test ROC-AUC are at least MIN_SIGNAL_ROC_AUC, and
    the lower end of the test figure's 95% bootstrap interval is above 0.5."""
    y_true, proba = np.asarray(y_true).astype(int), np.asarray(proba)
    auc = float(roc_auc_score(y_true, proba))
    rng = np.random.default_rng(seed)
    # each resample draws at most this many rows: bounded cost; on a larger test period the interval is that of
    # SIGNAL_MAX_ROWS rows, wider than the exact one, so the verdict errs towards "no signal"
    size = min(len(y_true), SIGNAL_MAX_ROWS)
    resampled = BootstrapAUC(y_true, proba)
    draws = []
    for _ in range(SIGNAL_RESAMPLES):
        auc_of_draw = resampled.roc_auc(rng.integers(0, len(y_true), size))
        if auc_of_draw is not None:
            draws.append(auc_of_draw)
    low, high = (np.percentile(draws, [2.5, 97.5]) if draws else (float("nan"), float("nan")))
    found = auc >= MIN_SIGNAL_ROC_AUC and low > 0.5 and fold_roc_auc >= MIN_SIGNAL_ROC_AUC
    base = y_true.mean()
    interval = (f"selection folds ROC-AUC {fold_roc_auc:.3f}, test ROC-AUC {auc:.3f} (95% interval {low:.3f}-"
                f"{high:.3f}), against 0.5 for the base rate {base:.3f}")
    if found:
        return True, f"signal found: {interval}"
    return False, (f"no signal found: {interval}; the scores barely rank better than chance, so do not prioritise "
                   "on them")
