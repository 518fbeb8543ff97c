"""Occlusion without re-running the preprocessing for every factor.

Every preprocessing step of a training pipeline (imputation with missing-value indicators, scaling, one-hot and
target encoding, the near-constant filter) works column by column. So a row with some raw columns set to
their typical values has, after preprocessing, exactly the row's own encoded columns except those that came
from the replaced raw columns, which take the typical row's encoded values. This module transforms a batch
once, then for each factor swaps those encoded columns and runs only the fitted estimator and its
calibration: one preprocessing per batch instead of one per factor. For a binary logistic model not even
that: the response moves by the swapped columns' terms alone.

It depends on how scikit-learn lays out these steps' outputs; `InputSpaceOcclusion.matches` compares its
probabilities with the bundle's own on the batch, and scoring falls back to plain occlusion when they differ.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression

from ml.pipeline import UnsupportedPipeline, calibrated_parts
from scoring.reasons import probability_with_typical

TOLERANCE = 1e-9


class InputSpaceOcclusion:
    """Probabilities of a bundle's calibrated pipeline with some raw columns set to their typical values."""

    def __init__(self, bundle) -> None:
        self.parts = calibrated_parts(bundle.estimator)
        self.features = list(bundle.spec.features)
        self.model_input = bundle.spec.model_input
        self.prepare, self.model, self.positions = self.parts.prepare, self.parts.model, self.parts.positions
        self.baseline = bundle.baseline or {}
        self.typical: np.ndarray | None = None
        # A binary linear model's response changes only by the swapped columns' terms: no pass over the rest.
        coef = getattr(self.model, "coef_", None)
        self.linear = coef[0] if isinstance(self.model, LogisticRegression) and coef.shape[0] == 1 else None
        self._response: tuple[np.ndarray, np.ndarray] | None = None  # (encoded batch, its response)

    def _model_response(self, encoded: np.ndarray) -> np.ndarray:
        return self.parts.response(encoded)

    def _calibrated(self, response: np.ndarray) -> np.ndarray:
        return self.parts.calibrated(response)

    def _batch_response(self, encoded: np.ndarray) -> np.ndarray:
        """The model's response to the batch as it is, computed once per batch (every factor starts from it)."""
        if self._response is None or self._response[0] is not encoded:
            self._response = (encoded, self._model_response(encoded))
        return self._response[1]

    def encode(self, frame: pd.DataFrame) -> np.ndarray:
        if self.typical is None and len(frame):
            # the typical row, built the way reasons.probability_with_typical builds it (same column types)
            typical = self.model_input(frame.iloc[:1])
            for column in self.features:
                value = self.baseline.get(column)
                typical[column] = np.nan if value is None else value
            self.typical = np.array(self.prepare.transform(typical), dtype=float)[0]
        self._response = None  # a new batch
        # a new array of the batch's own (probability() swaps columns in it and restores them)
        return np.asarray(self.prepare.transform(self.model_input(frame)), dtype=float)

    def probability(self, encoded: np.ndarray, typical_columns: tuple[str, ...] = ()) -> np.ndarray:
        """The probability with the given raw columns at their typical values (none: the row as it is)."""
        positions = sorted({p for c in typical_columns for p in self.positions.get(c, [])})
        if not positions:
            return self._calibrated(self._batch_response(encoded))
        if self.linear is not None:
            shift = (self.typical[positions] - encoded[:, positions]) @ self.linear[positions]
            return self._calibrated(self._batch_response(encoded) + shift)
        saved = encoded[:, positions].copy()
        encoded[:, positions] = self.typical[positions]
        try:
            return self._calibrated(self._model_response(encoded))
        finally:
            encoded[:, positions] = saved

    def matches(self, bundle, frame: pd.DataFrame, column_sets: list[tuple[str, ...]]) -> bool:
        """Same probabilities as the bundle's own pipeline on `frame`: as the rows are, and with each set
        of columns at its typical values."""
        encoded = self.encode(frame)
        if not np.allclose(self.probability(encoded), bundle.predict_proba(frame), rtol=0, atol=TOLERANCE):
            return False
        return all(np.allclose(self.probability(encoded, columns), probability_with_typical(bundle, frame, columns),
                               rtol=0, atol=TOLERANCE) for columns in column_sets)


def input_space_occlusion(bundle, sample: pd.DataFrame, column_sets: list[tuple[str, ...]]) -> InputSpaceOcclusion | None:
    """The fast path for this bundle if it reproduces plain occlusion exactly on `sample`, else None."""
    try:
        occlusion = InputSpaceOcclusion(bundle)
    except (UnsupportedPipeline, AttributeError, KeyError):
        return None
    return occlusion if len(sample) and occlusion.matches(bundle, sample, column_sets) else None
