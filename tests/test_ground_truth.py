"""The closed-form ground truth matches the simulator's process, checked by brute-force Monte Carlo."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from simulator.ground_truth import conversion_probability


@pytest.mark.parametrize("p_convert,age", [(0.3, 0.0), (0.3, 40.0), (0.1, 120.0), (0.6, 10.0)])
def test_conditional_probability_matches_monte_carlo(p_convert, age):
    rng = np.random.default_rng(0)
    n, horizon = 400_000, 90.0
    converts = rng.random(n) < p_convert
    disqualifies = ~converts & (rng.random(n) < 0.6)
    outcome = np.where(converts, rng.exponential(40.0, n), rng.exponential(100.0, n))
    outcome = np.where(converts | disqualifies, outcome, np.inf)
    still_open = outcome > age
    empirical = (converts & (outcome > age) & (outcome <= age + horizon))[still_open].mean()
    truth = pd.DataFrame(
        {"p_convert": [p_convert], "conversion_mean_days": [40.0], "p_disqualify": [0.6], "disqualify_mean_days": [100.0]}
    )
    assert conversion_probability(truth, np.array([age]), horizon)[0] == pytest.approx(empirical, abs=0.005)
