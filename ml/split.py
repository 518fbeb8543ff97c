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


def _start_of_last(dates: np.ndarray, fraction: float) -> pd.Timestamp:
    """The first date of the most recent `fraction` of distinct dates."""
    unique = np.unique(dates)
    if len(unique) < 2:
        raise ValueError("need at least two distinct as-of dates to split out of time")
    index = min(len(unique) - 1, max(1, int(round(len(unique) * (1 - fraction)))))
    return pd.Timestamp(unique[index])


def out_of_time_split(
    dates: pd.Series, horizon_days: int, test_fraction: float = 0.25, validation_fraction: float = 0.25
) -> TimeSplit:
    """Test = the latest dates; validation = the latest dates whose windows end before the test starts;
    fit = dates whose windows end before validation starts. Embargoed rows in between are unused."""
    as_of = pd.to_datetime(dates).to_numpy()
    horizon = np.timedelta64(horizon_days, "D")
    test_start = _start_of_last(as_of, test_fraction)
    test = as_of >= np.datetime64(test_start)
    before_test = as_of + horizon <= np.datetime64(test_start)
    if not before_test.any():
        raise ValueError(f"no rows end their {horizon_days}-day label window before the test period starts ({test_start.date()})")
    validation_start = _start_of_last(as_of[before_test], validation_fraction)
    validation = before_test & (as_of >= np.datetime64(validation_start))
    fit = as_of + horizon <= np.datetime64(validation_start)
    if not fit.any():
        raise ValueError(f"no rows end their {horizon_days}-day label window before validation starts ({validation_start.date()})")
    return TimeSplit(fit=fit, validation=validation, test=test, validation_start=validation_start, test_start=test_start)
