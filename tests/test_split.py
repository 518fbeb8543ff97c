"""Out-of-time splits keep an embargo: no training label window overlaps the period it is judged on."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.split import out_of_time_split


@settings(max_examples=60, deadline=None)
@given(
    weeks=st.integers(min_value=30, max_value=120),
    horizon=st.sampled_from([7, 30, 60, 90]),
    test_fraction=st.floats(min_value=0.1, max_value=0.3),
    validation_fraction=st.floats(min_value=0.1, max_value=0.3),
    seed=st.integers(0, 10_000),
)
def test_embargo_holds_for_any_calendar(weeks, horizon, test_fraction, validation_fraction, seed):
    rng = np.random.default_rng(seed)
    calendar = pd.date_range("2025-01-06", periods=weeks, freq="7D")
    dates = pd.Series(rng.choice(calendar, size=2_000))
    try:
        split = out_of_time_split(dates, horizon, test_fraction, validation_fraction)
    except ValueError:
        return  # too little history for this horizon: refusing is the correct answer
    as_of = dates.to_numpy()
    h = np.timedelta64(horizon, "D")
    assert split.test.any() and split.validation.any() and split.fit.any()
    assert not (split.fit & split.validation).any() and not (split.validation & split.test).any()
    assert not (split.fit & split.test).any()
    # every label window of a training row ends by the start of the period it is judged on
    assert (as_of[split.fit] + h <= np.datetime64(split.validation_start)).all()
    assert (as_of[split.validation] + h <= np.datetime64(split.test_start)).all()
    assert (as_of[split.test] >= np.datetime64(split.test_start)).all()


def test_refuses_when_history_is_shorter_than_the_horizon():
    dates = pd.Series(pd.date_range("2025-01-06", periods=6, freq="7D"))
    with pytest.raises(ValueError, match="label window"):
        out_of_time_split(dates, horizon_days=90)
