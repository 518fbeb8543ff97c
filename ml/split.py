"""Out-of-time splits with an embargo: no training row's label window reaches into the period it is judged on."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class TimeSplit:
    fit: np.ndarray  # boolean masks over the frame's rows
    validation: np.ndarray
    test: np.ndarray
    validation_start: pd.Timestamp
    test_start: pd.Timestamp

    def describe(self, dates: pd.Series) -> dict[str, str]:
        out = {}
        for name in ("fit", "validation", "test"):
            part = dates[getattr(self, name)]
            out[f"{name}_start"] = str(part.min().date()) if len(part) else ""
            out[f"{name}_end"] = str(part.max().date()) if len(part) else ""
        return out


def _start_of_last(dates: np.ndarray, fraction: float, positives: np.ndarray | None = None) -> pd.Timestamp:
    """The first date of the most recent `fraction` of distinct dates or, given the labels, of positive rows."""
    unique, inverse = np.unique(dates, return_inverse=True)
    if len(unique) < 2:
        raise ValueError("need at least two distinct as-of dates to split out of time")
    if positives is None:
        index = round(len(unique) * (1 - fraction))
    else:  # the latest date from which on at least `fraction` of the positives lie
        tail = np.cumsum(np.bincount(inverse, weights=positives, minlength=len(unique))[::-1])[::-1]
        index = int(np.flatnonzero(tail >= fraction * tail[0]).max())
    return pd.Timestamp(unique[min(len(unique) - 1, max(1, index))])


def out_of_time_split(
    dates: pd.Series, horizon_days: int, test_fraction: float = 0.25, validation_fraction: float = 0.25,
    labels: np.ndarray | None = None, min_positives: int = 0,
) -> TimeSplit:
    """Test = the latest dates; validation = the latest dates whose windows end before the test starts;
    fit = dates whose windows end before validation starts. Embargoed rows in between are unused.

    Given the labels, a period left with fewer than `min_positives` positives (outcomes sparse in some months) moves
    the boundaries so that each period holds its fraction of the positives instead of its fraction of the dates."""
    split = _split(dates, horizon_days, test_fraction, validation_fraction, None)
    if labels is not None and min(int(labels[getattr(split, p)].sum()) for p in PERIODS) < min_positives:
        split = _split(dates, horizon_days, test_fraction, validation_fraction, np.asarray(labels, dtype=float))
    return split


PERIODS = ("fit", "validation", "test")


def _split(dates: pd.Series, horizon_days: int, test_fraction: float, validation_fraction: float,
           positives: np.ndarray | None) -> TimeSplit:
    as_of = pd.to_datetime(dates).to_numpy()
    horizon = np.timedelta64(horizon_days, "D")
    test_start = _start_of_last(as_of, test_fraction, positives)
    test = as_of >= np.datetime64(test_start)
    before_test = as_of + horizon <= np.datetime64(test_start)
    if not before_test.any():
        raise ValueError(f"no rows end their {horizon_days}-day label window before the test period starts ({test_start.date()})")
    validation_start = _start_of_last(as_of[before_test], validation_fraction,
                                      None if positives is None else positives[before_test])
    validation = before_test & (as_of >= np.datetime64(validation_start))
    fit = as_of + horizon <= np.datetime64(validation_start)
    if not fit.any():
        raise ValueError(f"no rows end their {horizon_days}-day label window before validation starts ({validation_start.date()})")
    return TimeSplit(fit=fit, validation=validation, test=test, validation_start=validation_start, test_start=test_start)
