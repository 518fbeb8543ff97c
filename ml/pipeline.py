"""Candidate scikit-learn pipelines over a model spec's columns, each with a small, bounded search grid."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pandas.api.types import is_string_dtype
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import ExtraTreesClassifier, HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.feature_selection import VarianceThreshold
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler, TargetEncoder
from sklearn.utils.metaestimators import available_if

from ml.features import ModelSpec

BASELINE = "logistic_l1"
# Columns whose variance falls below this after encoding are dropped (near-constant: nothing to learn).
NEAR_ZERO_VARIANCE = 1e-5
# Rows a category needs before its own conversion rate outweighs the overall rate in its target encoding.
TARGET_ENCODING_SMOOTHING = 50.0
# A frequent value (frequent_values role) is one seen on at least this share of training rows; at most this
# many columns per feature, the last one pooling every rarer value.
FREQUENT_VALUE_SHARE = 0.01
FREQUENT_VALUE_COLUMNS = 20
MISSING = "missing"  # a missing text value's category


class CategoryCodes(TransformerMixin, BaseEstimator):
    """Text columns as integer codes, for the encoders after it: a value's position among the values seen in fit
    and MISSING, sorted as text; a missing value is MISSING; -1 for a value fit never saw. It replaces imputing
    MISSING as text before encoding, and the encoders learn exactly what they learned from that text (the same
    categories, in the same order, hence the same columns; a test checks this). scikit-learn finds and maps the
    distinct values of a text column with a Python loop over its rows, which took most of the preparation's
    time on 100,000 leads' training rows; pandas codes them with one hash lookup per row."""

    def fit(self, X, y=None):
        frame = self._frame(X)
        self.categories_ = [np.sort(np.union1d(self._observed(self._text(frame[c])), [MISSING]).astype(object))
                            for c in frame.columns]
        # looked up on every transform (each scored batch and request): the hash tables are built once, here
        self.lookups_ = [pd.Index(categories, dtype=object) for categories in self.categories_]
        self.n_features_in_ = frame.shape[1]
        return self

    def transform(self, X):
        frame = self._frame(X)
        if frame.shape[1] != self.n_features_in_:
            raise ValueError(f"expected {self.n_features_in_} columns, got {frame.shape[1]}")
        out = np.empty(frame.shape, dtype=np.int64)
        for j, (column, known) in enumerate(zip(frame.columns, self.lookups_)):
            text = self._text(frame[column])
            missing = known.get_loc(MISSING)
            if isinstance(text, pd.Categorical):  # look up each category once, then follow the row codes
                codes = np.append(known.get_indexer(text.categories.astype(object)), missing)[text.codes]
            else:
                codes = known.get_indexer(text)
                codes[np.asarray(pd.isna(text))] = missing
            out[:, j] = codes
        return out

    @staticmethod
    def _text(values: pd.Series):
        """The column as text, kept categorical if it is (training reads text as categories, scoring as str)."""
        if isinstance(values.dtype, pd.CategoricalDtype):
            categorical = values.array
            return categorical if is_string_dtype(categorical.categories) else \
                categorical.rename_categories(categorical.categories.astype(str))
        return values if is_string_dtype(values) else values.astype(str).where(values.notna())

    @staticmethod
    def _observed(text) -> np.ndarray:
        if isinstance(text, pd.Categorical):
            return np.asarray(text.categories[np.unique(text.codes[text.codes >= 0])], dtype=object)
        return np.asarray(pd.unique(text.dropna()), dtype=object)

    def get_feature_names_out(self, input_features=None):
        return np.asarray(input_features if input_features is not None else
                          [f"x{j}" for j in range(self.n_features_in_)], dtype=object)

    @staticmethod
    def _frame(X) -> pd.DataFrame:
        return X if isinstance(X, pd.DataFrame) else pd.DataFrame(np.asarray(X, dtype=object))


def _preprocessor(spec: ModelSpec, scale: bool) -> ColumnTransformer:
    """Numbers imputed (with a missing-value indicator per column), low-cardinality categories one-hot encoded,
    high-cardinality ones target-encoded, identities (pages) by their frequent values.

    Target encoding: each category becomes the label mean shrunk towards the overall rate (a category needs
    about TARGET_ENCODING_SMOOTHING rows to count for half). During fit the encoding of every training row
    comes from the other folds only (scikit-learn's cross fitting), so a row never sees its own label; the
    folds are unshuffled over rows sorted by as-of date, so a lead's weekly rows mostly share a fold. A
    column that is nearly one value per lead (company domain, the full journey path) is never target-encoded:
    its encoding would identify the lead. The mart encodes the domain by frequency (colleagues_known), the
    path enters as its individual steps, and page URLs as their content-topic shares where they have words. The
    landing page is an identity even without words (a hashed id): its frequent values get a column each and the
    rare ones share one, which needs no label and so cannot identify a lead.
    """
    numeric_steps = [SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)]
    if scale:
        numeric_steps.append(StandardScaler())
    encoded_steps = [
        CategoryCodes(),
        TargetEncoder(target_type="binary", smooth=TARGET_ENCODING_SMOOTHING, cv=StratifiedKFold(5)),
    ]
    if scale:
        encoded_steps.append(StandardScaler())
    return ColumnTransformer(
        [
            ("numeric", make_pipeline(*numeric_steps), list(spec.numeric + spec.boolean)),
            (
                "categorical",
                make_pipeline(
                    CategoryCodes(),
                    OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=20, sparse_output=False),
                ),
                list(spec.categorical),
            ),
            *([("target_encoded", make_pipeline(*encoded_steps), list(spec.target_encoded))] if spec.target_encoded else []),
            *([(
                "frequent_values",
                make_pipeline(
                    CategoryCodes(),
                    OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=FREQUENT_VALUE_SHARE,
                                  max_categories=FREQUENT_VALUE_COLUMNS, sparse_output=False),
                ),
                list(spec.frequent_values),
            )] if spec.frequent_values else []),
        ],
        verbose_feature_names_out=False,
    )


@dataclass(frozen=True)
class Candidate:
    name: str
    build: Callable[[dict[str, Any], int, int], Any]  # (params, seed, threads) -> estimator
    grid: tuple[dict[str, Any], ...]
    scale: bool
    # Fits on fewer training rows than this run on one OpenMP thread (selection's early rungs): the estimator's
    # per-round thread overhead outweighs a second core there. The same model either way.
    one_thread_below: int = 0


FOREST_GRID = ({"min_samples_leaf": 20}, {"min_samples_leaf": 60})


def _forest(forest_class) -> Callable[[dict[str, Any], int, int], Any]:
    """A tree ensemble (random forest or extra trees) with the shared size and feature sampling."""
    return lambda p, seed, threads: forest_class(
        n_estimators=120, min_samples_leaf=p["min_samples_leaf"], max_features="sqrt", n_jobs=threads,
        random_state=seed)


CANDIDATES: tuple[Candidate, ...] = (
    Candidate(
        "logistic_l1",
        # tol 1e-2: on 60k-row folds of 100k simulated leads liblinear takes 2-17 s instead of 7-40 s at 1e-3,
        # and held-out PR-AUC moves by at most 0.002 (mostly under 0.0001)
        lambda p, seed, threads: LogisticRegression(l1_ratio=1.0, solver="liblinear", C=p["C"], tol=1e-2,
                                                    max_iter=2000, random_state=seed),
        ({"C": 0.05}, {"C": 0.5}),
        scale=True,
    ),
    Candidate("random_forest", _forest(RandomForestClassifier), FOREST_GRID, scale=False),
    Candidate("extra_trees", _forest(ExtraTreesClassifier), FOREST_GRID, scale=False),
    # Boosting stops after 10 rounds without gain, at most 150; learning rates 0.1 and 0.3 reach their best in
    # fewer rounds than 0.05 and 0.15 did (a fit on 60,000 rows took 6-9 s at the old rates).
    Candidate(
        "hist_gradient_boosting",
        lambda p, seed, threads: HistGradientBoostingClassifier(
            learning_rate=p["learning_rate"], max_iter=150, max_leaf_nodes=31, min_samples_leaf=50,
            l2_regularization=1.0, early_stopping=True, validation_fraction=0.15, n_iter_no_change=10,
            random_state=seed),
        ({"learning_rate": 0.1}, {"learning_rate": 0.3}),
        scale=False,
        # one thread against two on this project's 2-core machine: 0.77 s against 1.0 s a fit on 3,333 rows,
        # 1.8 s against 2.2 s on 10,000; on 30,000 two threads win (4.3 s against 5.3 s)
        one_thread_below=20_000,
    ),
    Candidate(
        "mlp",
        lambda p, seed, threads: MLPClassifier(
            hidden_layer_sizes=p["hidden_layer_sizes"], alpha=1e-3, learning_rate_init=1e-3, max_iter=150,
            early_stopping=True, n_iter_no_change=8, random_state=seed),
        ({"hidden_layer_sizes": (32,)}, {"hidden_layer_sizes": (64, 32)}),
        scale=True,
    ),
)


# Large frames are prepared and scored this many rows at a time. Preparing 443,000 rows whole took 6.5 s and
# scoring them in 25,000-row pieces 2.8 s, transform and model included: each whole-frame step (the column
# blocks stacked side by side, the near-constant columns dropped) writes a fresh array of ~1 GB, and fresh
# memory costs a page fault per 4 KiB. A piece's arrays (~40 MB) are reused from one piece to the next.
CHUNK_ROWS = 25_000


def in_row_chunks(apply: Callable[[Any], np.ndarray], X, rows: int = CHUNK_ROWS) -> np.ndarray:
    """apply(X) for a row-wise `apply`, computed piece by piece into one array: what applying it whole gives, up
    to the last bit (matrix products may sum in another order on a matrix of another height)."""
    if len(X) <= rows:
        return apply(X)
    piece = (lambda start: X.iloc[start:start + rows]) if hasattr(X, "iloc") else (lambda start: X[start:start + rows])
    first = np.asarray(apply(piece(0)))
    out = np.empty((len(X), *first.shape[1:]), dtype=first.dtype)
    out[:rows] = first
    for start in range(rows, len(X), rows):
        out[start:start + rows] = apply(piece(start))
    return out


def _final_step_has(method: str) -> Callable[[Pipeline], bool]:
    """The pipeline offers `method` only where its estimator does (calibration asks for decision_function first)."""
    return lambda pipeline: hasattr(pipeline.steps[-1][1], method)


class RowChunkedPipeline(Pipeline):
    """A pipeline whose predictions on many rows are computed in pieces of CHUNK_ROWS (see in_row_chunks): each
    row's result is the same (to the last bit or two), the time and the peak memory are not."""

    @available_if(_final_step_has("predict_proba"))
    def predict_proba(self, X, **params):
        return in_row_chunks(lambda part: super(RowChunkedPipeline, self).predict_proba(part, **params), X)

    @available_if(_final_step_has("decision_function"))
    def decision_function(self, X, **params):
        return in_row_chunks(lambda part: super(RowChunkedPipeline, self).decision_function(part, **params), X)

    @available_if(_final_step_has("predict"))
    def predict(self, X, **params):
        return in_row_chunks(lambda part: super(RowChunkedPipeline, self).predict(part, **params), X)


class DropNearConstant(VarianceThreshold):
    """VarianceThreshold that hands the matrix on as it is when it keeps every column. VarianceThreshold copies
    the kept columns even then: 31 ms for 25,000 prepared rows, against 118 ms for preparing them, on every fit
    and every prediction (at 100,000 leads the simulated mart's 277 prepared columns all varied)."""

    def transform(self, X):
        support = self.get_support()
        if support.all() and isinstance(X, np.ndarray) and X.ndim == 2 and X.shape[1] == len(support):
            return X
        return super().transform(X)


def make_preparation(spec: ModelSpec, scale: bool) -> Pipeline:
    """The steps before the estimator. They see the label (target encoding) but not the sample weights, so
    one fitted preparation serves every candidate with the same `scale` on the same rows."""
    return Pipeline([
        ("prepare", _preprocessor(spec, scale)),
        ("drop_near_constant", DropNearConstant(NEAR_ZERO_VARIANCE)),
    ])


def make_pipeline_for(candidate: Candidate, params: dict[str, Any], spec: ModelSpec, seed: int, threads: int) -> Pipeline:
    return RowChunkedPipeline([*make_preparation(spec, candidate.scale).steps, ("model", candidate.build(params, seed, threads))])


# The preprocessed matrix's layout. Every preprocessing step works column by column, so each raw column owns a
# set of columns of the matrix; explanations and importances change those alone instead of re-running the
# preprocessing (scoring/occlusion.py, ml/importance.py).

class UnsupportedPipeline(ValueError):
    """A step whose output layout is not known here: callers run the whole pipeline instead."""


def _step_layout(step, mapping: dict[int, list[int]], width: int) -> tuple[dict[int, list[int]], int]:
    """Input column -> output positions after one step, given the positions before it."""
    if isinstance(step, (StandardScaler, TargetEncoder, CategoryCodes)):
        return mapping, width
    if isinstance(step, SimpleImputer):
        statistics = np.asarray(step.statistics_, dtype=object)
        kept = [j for j in range(width) if step.keep_empty_features or step.strategy == "constant"
                or not pd.isna(statistics[j])]
        position = {old: new for new, old in enumerate(kept)}
        out = {column: [position[p] for p in positions if p in position] for column, positions in mapping.items()}
        indicated = list(step.indicator_.features_) if step.add_indicator and step.indicator_ is not None else []
        for k, old in enumerate(indicated):
            for column, positions in mapping.items():
                if old in positions:
                    out[column].append(len(kept) + k)
        return out, len(kept) + len(indicated)
    if isinstance(step, OneHotEncoder):
        if step.drop is not None:
            raise UnsupportedPipeline("one-hot encoding with dropped categories")
        infrequent = getattr(step, "infrequent_categories_", [None] * len(step.categories_))
        sizes = [len(c) - (len(i) - 1 if i is not None else 0) for c, i in zip(step.categories_, infrequent)]
        starts = np.concatenate([[0], np.cumsum(sizes)])
        if starts[-1] != len(step.get_feature_names_out()):
            raise UnsupportedPipeline("unexpected one-hot layout")
        out = {column: [q for p in positions for q in range(starts[p], starts[p + 1])]
               for column, positions in mapping.items()}
        return out, int(starts[-1])
    raise UnsupportedPipeline(f"no known layout for {type(step).__name__}")


def encoded_positions(prepare: ColumnTransformer, selector: VarianceThreshold) -> dict[str, list[int]]:
    """Raw column name -> the columns of the preprocessed matrix that come from it."""
    kept = {old: new for new, old in enumerate(np.flatnonzero(selector.get_support()))}
    out: dict[str, list[int]] = defaultdict(list)
    for name, transformer, columns in prepare.transformers_:
        if name == "remainder" or transformer == "drop" or not len(columns):
            continue
        steps = transformer.steps if isinstance(transformer, Pipeline) else [(name, transformer)]
        mapping = {i: [i] for i in range(len(columns))}
        width = len(columns)
        for _, step in steps:
            mapping, width = _step_layout(step, mapping, width)
        offset = prepare.output_indices_[name].start
        if prepare.output_indices_[name].stop - offset != width:
            raise UnsupportedPipeline(f"{name}: expected {width} columns")
        for i, column in enumerate(columns):
            out[column] += [kept[offset + p] for p in mapping[i] if offset + p in kept]
    return dict(out)


@dataclass
class CalibratedParts:
    """A calibrated pipeline taken apart: the preparation, the estimator, the calibrator of its response, and
    which columns of the prepared matrix each raw column owns."""

    prepare: Pipeline
    model: Any
    calibrator: Any
    positions: dict[str, list[int]]

    def response(self, encoded: np.ndarray) -> np.ndarray:
        """The estimator's response as the calibration reads it (decision function if it has one)."""
        if hasattr(self.model, "decision_function"):
            return np.asarray(self.model.decision_function(encoded), dtype=float)
        return np.asarray(self.model.predict_proba(encoded)[:, 1], dtype=float)

    def calibrated(self, response: np.ndarray) -> np.ndarray:
        return self.calibrator.predict(response)


def calibrated_parts(calibrated) -> CalibratedParts:
    """The parts of a CalibratedClassifierCV over one frozen prepare -> drop_near_constant -> model pipeline."""
    if len(getattr(calibrated, "calibrated_classifiers_", ())) != 1:
        raise UnsupportedPipeline("expected one calibrated classifier")
    (fitted,) = calibrated.calibrated_classifiers_
    pipeline = getattr(fitted.estimator, "estimator", fitted.estimator)
    if not isinstance(pipeline, Pipeline) or len(pipeline.steps) != 3:
        raise UnsupportedPipeline("expected prepare -> drop_near_constant -> model")
    return CalibratedParts(pipeline[:-1], pipeline[-1], fitted.calibrators[0], encoded_positions(pipeline[0], pipeline[1]))
