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


def top_factors(contributions: pd.DataFrame, k: int = 3, raising: bool = True) -> list[list[str]]:
    """Per row, the k factors that raise (or lower) the probability most, strongest first.

    A row whose every effect is below MIN_CONTRIBUTION still gets its single strongest factor on the
    side where that factor acts, so no score goes out without a reason."""
    raw = contributions.to_numpy()
    values = raw if raising else -raw
    names = np.asarray(contributions.columns)
    order = np.argsort(-values, axis=1, kind="stable")[:, :k]
    strongest = np.abs(raw).argmax(axis=1) if raw.shape[1] else np.zeros(len(raw), int)
    out = []
    for i, (row, picks) in enumerate(zip(values, order)):
        chosen = [str(names[j]) for j in picks if row[j] > MIN_CONTRIBUTION]
        if not chosen and raw.shape[1] and np.abs(raw[i]).max() <= MIN_CONTRIBUTION and row[strongest[i]] > 0:
            chosen = [str(names[strongest[i]])]
        out.append(chosen)
    return out
