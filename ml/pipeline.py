"""Candidate scikit-learn pipelines over a model spec's columns."""

from __future__ import annotations

from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from ml.features import ModelSpec


def _preprocessor(spec: ModelSpec, scale: bool) -> ColumnTransformer:
    numeric_steps = [SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True)]
    if scale:
        numeric_steps.append(StandardScaler())
    return ColumnTransformer(
        [
            ("numeric", make_pipeline(*numeric_steps), list(spec.numeric + spec.boolean)),
            (
                "categorical",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="missing"),
                    OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=20, sparse_output=False),
                ),
                list(spec.categorical),
            ),
        ],
        verbose_feature_names_out=False,
    )


def candidates(spec: ModelSpec, seed: int) -> dict[str, Pipeline]:
    """A gradient-boosting model and a logistic-regression baseline, both with the same inputs."""
    return {
        "hist_gradient_boosting": Pipeline(
            [
                ("prepare", _preprocessor(spec, scale=False)),
                (
                    "model",
                    HistGradientBoostingClassifier(
                        learning_rate=0.05, max_iter=300, max_leaf_nodes=31, min_samples_leaf=50,
                        l2_regularization=1.0, early_stopping=True, validation_fraction=0.15,
                        n_iter_no_change=20, random_state=seed,
                    ),
                ),
            ]
        ),
        "logistic_regression": Pipeline(
            [
                ("prepare", _preprocessor(spec, scale=True)),
                ("model", LogisticRegression(C=0.5, max_iter=2000)),
            ]
        ),
    }
