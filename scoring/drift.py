"""Drift between scoring runs: the population stability index (PSI) of the score and of each feature."""

from __future__ import annotations

import numpy as np
import pandas as pd

PSI_ALERT = 0.2  # the usual rule of thumb: < 0.1 stable, 0.1-0.2 moderate, > 0.2 a real shift
_EPS = 1e-4


def psi(reference: pd.Series, current: pd.Series, bins: int = 10) -> float:
    """PSI of `current` against `reference`: numeric columns on the reference's deciles, others by category."""
    ref, cur = reference.dropna(), current.dropna()
    if len(ref) == 0 or len(cur) == 0:
        return float("nan")
    if pd.api.types.is_numeric_dtype(ref) and not pd.api.types.is_bool_dtype(ref):
        edges = np.unique(np.quantile(ref.astype(float), np.linspace(0, 1, bins + 1)))
        if len(edges) < 2:
            edges = np.array([edges[0] - 0.5, edges[0] + 0.5])
        edges[0], edges[-1] = -np.inf, np.inf
        expected = np.histogram(ref.astype(float), edges)[0] / len(ref)
        actual = np.histogram(cur.astype(float), edges)[0] / len(cur)
    else:
        shares = [side.astype(str).value_counts(normalize=True) for side in (ref, cur)]
        categories = shares[0].index.union(shares[1].index)
        expected, actual = (share.reindex(categories, fill_value=0).to_numpy() for share in shares)
    expected, actual = np.clip(expected, _EPS, None), np.clip(actual, _EPS, None)
    return float(np.sum((actual - expected) * np.log(actual / expected)))


def drift_table(reference: pd.DataFrame, current: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    rows = [{"variable": c, "psi": psi(reference[c], current[c])} for c in columns if c in reference and c in current]
    table = pd.DataFrame(rows, columns=["variable", "psi"])
    table["is_alert"] = table["psi"] > PSI_ALERT
    return table
