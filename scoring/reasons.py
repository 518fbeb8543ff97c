"""Why a score is what it is: each factor's effect, measured by occlusion against a typical row.

For every row and every factor (a group of related columns), the factor's columns are replaced by the
training data's typical values (medians, most common categories) and the row is scored again. The
difference is the factor's contribution: positive when the row's actual values raise the probability.
It is model-agnostic, exact for the model in use, and costs one extra prediction per factor.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MIN_CONTRIBUTION = 0.001  # smaller effects are noise, not reasons


def probability_with_typical(bundle, frame: pd.DataFrame, columns: tuple[str, ...]) -> np.ndarray:
    """The probability with the given columns set to the training data's typical values."""
    typical = frame[list(bundle.spec.features)].copy()
    for column in columns:
        value = (bundle.baseline or {}).get(column)
        typical[column] = np.nan if value is None else value
    return bundle.predict_proba(typical)


def factor_contributions(bundle, frame: pd.DataFrame) -> pd.DataFrame:
    """One column per factor: probability with the row's values minus probability with typical values."""
    base = bundle.predict_proba(frame[list(bundle.spec.features)])
    contributions = {
        factor: base - probability_with_typical(bundle, frame, columns) for factor, columns in bundle.spec.reason_groups
    }
    return pd.DataFrame(contributions, index=frame.index)


def top_factor_indices(values: np.ndarray, k: int = 3, raising: bool = True) -> np.ndarray:
    """Per row, the column indices of the k factors that raise (or lower) the probability most, strongest
    first; -1 where fewer than k factors act on that side.

    A row whose every effect is below MIN_CONTRIBUTION still gets its single strongest factor on the
    side where that factor acts, so no score goes out without a reason."""
    n, width = values.shape
    if width == 0:
        return np.full((n, k), -1)
    signed = values if raising else -values
    order = np.argsort(-signed, axis=1, kind="stable")[:, :k]
    picks = np.where(np.take_along_axis(signed, order, axis=1) > MIN_CONTRIBUTION, order, -1)
    if picks.shape[1] < k:
        picks = np.hstack([picks, np.full((n, k - picks.shape[1]), -1)])
    strongest = np.abs(values).argmax(axis=1)
    fallback = ((picks == -1).all(axis=1) & (np.abs(values).max(axis=1) <= MIN_CONTRIBUTION)
                & (signed[np.arange(n), strongest] > 0))
    picks[fallback, 0] = strongest[fallback]
    return picks

