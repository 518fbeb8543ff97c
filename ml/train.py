"""Train a model from its mart: out-of-time split, candidates, calibration, threshold, metrics, registry."""

from __future__ import annotations

import platform
from datetime import datetime, timezone
from typing import Callable

import numpy as np
import pandas as pd
import sklearn
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import average_precision_score

from ml.dataset import load_labelled
from ml.features import ModelSpec
from ml.metrics import best_f1_threshold, evaluate
from ml.pipeline import candidates
from ml.registry import ModelBundle, register, save_bundle
from ml.split import out_of_time_split
from scorehouse.config import Settings
from scorehouse.ground_truth import truth_for_rows

# Tier cut-offs are probability quantiles of the validation period: the first tier is the top 10%, the second the
# next 20%, the third the next 30%, the last the rest.
TIER_TOP_SHARES = (0.10, 0.30, 0.60)


def _library_versions() -> dict[str, str]:
    import duckdb
    import joblib

    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "pandas": pd.__version__,
        "numpy": np.__version__,
        "duckdb": duckdb.__version__,
        "joblib": joblib.__version__,
    }


def tier_cutoffs(validation_proba: np.ndarray, labels: tuple[str, ...]) -> dict[str, float]:
    """The lowest probability that earns each tier but the last."""
    return {label: float(np.quantile(validation_proba, 1 - share)) for label, share in zip(labels, TIER_TOP_SHARES)}


def baseline_values(frame: pd.DataFrame, spec: ModelSpec) -> dict[str, object]:
    """A typical row of the training data (medians and most common values): the reference for explanations."""
    values: dict[str, object] = {}
    for column in spec.numeric:
        median = frame[column].median()
        values[column] = None if pd.isna(median) else float(median)
    for column in spec.categorical + spec.boolean:
        mode = frame[column].mode(dropna=True)
        values[column] = mode.iloc[0] if len(mode) else None
    return values


def train_model(settings: Settings, spec: ModelSpec, progress: Callable[[str], None] | None = None) -> dict:
    """Fit, evaluate out of time and register one model; returns a summary of what was registered."""
    say = progress or (lambda _msg: None)
    frame = load_labelled(settings, spec)
    horizon = int(getattr(settings, spec.horizon_setting))
    split = out_of_time_split(frame[spec.date_column], horizon, settings.test_fraction, settings.validation_fraction)
    fit, validation, test = (frame[mask] for mask in (split.fit, split.validation, split.test))
    for name, part in (("fit", fit), ("validation", validation), ("test", test)):
        if part[spec.label].nunique() < 2:
            raise ValueError(f"the {name} period has only one label class; more history is needed to train")
    say(f"training {spec.name} on {len(fit):,} rows, validating on {len(validation):,}, testing on {len(test):,}")

    fitted = {}
    validation_pr_auc = {}
    for algorithm, pipeline in candidates(spec, settings.random_seed).items():
        pipeline.fit(fit[list(spec.features)], fit[spec.label].astype(int))
        validation_pr_auc[algorithm] = float(
            average_precision_score(validation[spec.label], pipeline.predict_proba(validation[list(spec.features)])[:, 1])
        )
        fitted[algorithm] = pipeline
        say(f"  {algorithm}: validation PR-AUC {validation_pr_auc[algorithm]:.3f}")
    # Rule: the candidate with the highest validation PR-AUC wins.
    winner = max(validation_pr_auc, key=validation_pr_auc.get)

    def calibrated(pipeline):
        positives = int(validation[spec.label].sum())
        method = "isotonic" if positives >= 200 else "sigmoid"
        model = CalibratedClassifierCV(FrozenEstimator(pipeline), method=method)
        return model.fit(validation[list(spec.features)], validation[spec.label].astype(int))

    models = {name: calibrated(p) for name, p in fitted.items()}
    validation_proba = models[winner].predict_proba(validation[list(spec.features)])[:, 1]
    threshold = best_f1_threshold(validation[spec.label].to_numpy(), validation_proba)
    test_y = test[spec.label].to_numpy()
    test_metrics = {
        name: evaluate(test_y, m.predict_proba(test[list(spec.features)])[:, 1], threshold) for name, m in models.items()
    }
    validation_metrics = evaluate(validation[spec.label].to_numpy(), validation_proba, threshold)

    truth = truth_for_rows(settings, spec.entity_key, test, horizon)
    truth_metrics = evaluate(test_y, truth, threshold) if truth is not None else None

    trained_at = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    model_version = f"{spec.name}-{trained_at:%Y%m%dT%H%M%S}"
    periods = split.describe(frame[spec.date_column])
    metadata = {
        "model_version": model_version,
        "model_name": spec.name,
        "algorithm": winner,
        "selection_rule": "highest validation PR-AUC",
        "validation_pr_auc": validation_pr_auc,
        "features": list(spec.features),
        "label": spec.label,
        "horizon_days": horizon,
        "periods": periods,
        "threshold": threshold,
        "threshold_rule": "maximise F1 on the validation period",
        "test_metrics": test_metrics,
        "ground_truth_test_metrics": truth_metrics,
        "library_versions": _library_versions(),
    }
    bundle = ModelBundle(
        model_version=model_version,
        spec=spec,
        estimator=models[winner],
        threshold=threshold,
        tier_cutoffs=tier_cutoffs(validation_proba, spec.tier_labels),
        baseline=baseline_values(fit, spec),
        metadata=metadata,
    )
    artifact = save_bundle(settings, bundle)
    baseline = "logistic_regression"
    row = {
        "algorithm": winner,
        "trained_at": trained_at,
        "horizon_days": horizon,
        **{k: (v or None) for k, v in periods.items()},
        "fit_rows": len(fit),
        "validation_rows": len(validation),
        "test_rows": len(test),
        "test_roc_auc": test_metrics[winner]["roc_auc"],
        "test_pr_auc": test_metrics[winner]["pr_auc"],
        "test_brier": test_metrics[winner]["brier"],
        "baseline_test_roc_auc": test_metrics[baseline]["roc_auc"],
        "ground_truth_test_roc_auc": truth_metrics["roc_auc"] if truth_metrics else None,
        "library_versions": str(metadata["library_versions"]),
    }
    metric_rows = [("validation", "all", k, v) for k, v in validation_metrics.items()]
    metric_rows += [("test", "all", k, v) for k, v in test_metrics[winner].items()]
    metric_rows += [("test", f"candidate:{name}", k, v) for name, m in test_metrics.items() for k, v in m.items()]
    if truth_metrics:
        metric_rows += [("test", "ground_truth", k, v) for k, v in truth_metrics.items()]
    register(settings, bundle, artifact, row, metric_rows)
    say(
        f"registered {model_version} ({winner}): test ROC-AUC {test_metrics[winner]['roc_auc']:.3f}, "
        f"PR-AUC {test_metrics[winner]['pr_auc']:.3f}"
        + (f"; ground truth on the same rows {truth_metrics['roc_auc']:.3f}" if truth_metrics else "")
    )
    return {"model_version": model_version, "algorithm": winner, "test": test_metrics[winner],
            "baseline": test_metrics[baseline], "ground_truth": truth_metrics, "threshold": threshold}
