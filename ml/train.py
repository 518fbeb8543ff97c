"""Train a model from its mart: out-of-time split, candidate selection, calibration, threshold, evaluation,
champion/challenger promotion, registry rows, report."""

from __future__ import annotations

import platform
from datetime import datetime, timezone
from typing import Callable

import numpy as np
import pandas as pd
import sklearn
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.inspection import permutation_importance
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_curve

from ml.dataset import VALUE, load_labelled
from ml.features import ModelSpec
from ml.leakage import audit, record_audit
from ml.metrics import calibration_points, decile_table, evaluate, threshold_curve
from ml.pipeline import BASELINE, CANDIDATES, make_pipeline_for
from ml.registry import ModelBundle, load_active, register, save_bundle
from ml.report import write_report
from ml.selection import choose_winner, evaluate_candidates, fit_weighted
from ml.split import out_of_time_split
from ml.thresholds import choose_threshold
from scorehouse.config import Settings
from scorehouse.ground_truth import truth_for_rows
from scorehouse.warehouse import connect

# Tier cut-offs are probability quantiles of the validation period: the first tier is the top 10%, the second the
# next 20%, the third the next 30%, the last the rest.
TIER_TOP_SHARES = (0.10, 0.30, 0.60)
MAX_FINAL_ROWS = 150_000  # the final fit sees at most this many rows (a fixed random sample): bounded cost
IMPORTANCE_ROWS = 4_000
SELECTION_RULE = (
    "a candidate must beat the logistic baseline's PR-AUC in every rolling out-of-time fold; among those and the "
    "baseline, the highest mean fold PR-AUC wins (within 0.005: the highest mean ROC-AUC)"
)
PROMOTION_RULE = "a new model replaces the active one only if its test PR-AUC beats the active model's on the same rows"


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
    for column in spec.categorical + spec.boolean + spec.target_encoded:
        mode = frame[column].mode(dropna=True)
        values[column] = mode.iloc[0] if len(mode) else None
    return values


def _calibrated_fit(candidate_name: str, params: dict, spec: ModelSpec, fit: pd.DataFrame,
                    validation: pd.DataFrame, settings: Settings):
    """Fit on the fit period (weighted for imbalance), then calibrate on the validation period.

    Platt (sigmoid) calibration keeps the model's ranking intact, so scores stay distinct and ROC-AUC is
    unchanged by calibration; isotonic steps would tie many leads at the same score."""
    candidate = next(c for c in CANDIDATES if c.name == candidate_name)
    rows = fit.sample(n=min(len(fit), MAX_FINAL_ROWS), random_state=settings.random_seed) if len(fit) > MAX_FINAL_ROWS else fit
    pipeline = fit_weighted(make_pipeline_for(candidate, params, spec, settings.random_seed, settings.duckdb_threads),
                            rows, spec)
    return CalibratedClassifierCV(FrozenEstimator(pipeline), method="sigmoid").fit(
        validation[list(spec.features)], validation[spec.label].astype(int)
    )


def _segment_rows(spec: ModelSpec, test: pd.DataFrame, proba: np.ndarray) -> list[tuple[str, str, str, float]]:
    rows = []
    y = test[spec.label].astype(int).to_numpy()
    for column in spec.segments:
        values = test[column].astype(object).where(test[column].notna(), "(missing)").astype(str).to_numpy()
        for value in sorted(set(values)):
            mask = values == value
            if mask.sum() < 30:
                continue
            part = evaluate(y[mask], proba[mask], 0.5)
            for metric in ("rows", "positive_rate", "mean_predicted", "roc_auc", "pr_auc", "brier"):
                rows.append(("test", f"{column}={value}", metric, part[metric]))
    return rows


def _champion_pr_auc(settings: Settings, spec: ModelSpec, test: pd.DataFrame) -> tuple[str | None, float | None]:
    try:
        champion = load_active(settings, spec.name)
    except (LookupError, FileNotFoundError):
        return None, None
    if tuple(champion.spec.features) != tuple(spec.features):
        return champion.model_version, None  # a different feature set cannot be compared on these rows
    proba = champion.predict_proba(test)
    return champion.model_version, float(average_precision_score(test[spec.label].astype(int), proba))


def _audited_spec(settings: Settings, spec: ModelSpec, fit: pd.DataFrame, say) -> ModelSpec:
    """Leakage audit before training: a column that alone predicts the label almost perfectly is excluded
    (unless listed in SCOREHOUSE_KEEP_COLUMNS) and the audit is written to ml.leakage_audit."""
    report = audit(fit, fit[spec.label].astype(int).to_numpy(), list(spec.features), check_names=False)
    report["is_excluded"] = report.flagged_reason.notna() & ~report.column_name.isin(settings.keep_columns)
    excluded = set(report.loc[report.is_excluded, "column_name"])
    with connect(settings) as con:
        record_audit(con, spec.name, datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0), report)
    if not excluded:
        return spec
    say(f"warning: leakage audit excluded {', '.join(sorted(excluded))} from {spec.name}")
    return spec.restricted_to(set(spec.features) - excluded)


def train_model(settings: Settings, spec: ModelSpec, progress: Callable[[str], None] | None = None) -> dict:
    """Select, fit, evaluate out of time, register and report one model; returns a summary."""
    say = progress or (lambda _msg: None)
    frame = load_labelled(settings, spec)
    if frame.attrs.get("entity_share", 1.0) < 1.0:
        say(f"training on the labelled rows of {frame.attrs['entity_share']:.1%} of entities ({len(frame):,} rows)")
    horizon = int(getattr(settings, spec.horizon_setting))
    dates = frame[spec.date_column]
    split = out_of_time_split(dates, horizon, settings.test_fraction, settings.validation_fraction)
    fit, validation, test = (frame[mask] for mask in (split.fit, split.validation, split.test))
    for name, part in (("fit", fit), ("validation", validation), ("test", test)):
        if part[spec.label].nunique() < 2:
            raise ValueError(f"the {name} period has only one label class; more history is needed to train")
    spec = _audited_spec(settings, spec, fit, say)
    development = frame[pd.to_datetime(dates) + pd.Timedelta(days=horizon) <= split.test_start]
    say(f"selecting {spec.name} on {len(development):,} development rows ({settings.cv_folds} rolling folds)")
    results = evaluate_candidates(development, spec, horizon, settings.random_seed, settings.duckdb_threads,
                                  folds=settings.cv_folds, progress=say)
    winner = choose_winner(results)
    by_name = {r.name: r for r in results}
    say(f"winner {winner.name}; fitting on {len(fit):,} rows, calibrating on {len(validation):,}, testing on {len(test):,}")

    models = {winner.name: _calibrated_fit(winner.name, winner.params, spec, fit, validation, settings)}
    if BASELINE in by_name and BASELINE != winner.name:
        models[BASELINE] = _calibrated_fit(BASELINE, by_name[BASELINE].params, spec, fit, validation, settings)
    features = list(spec.features)
    validation_proba = models[winner.name].predict_proba(validation[features])[:, 1]
    threshold = choose_threshold(settings.threshold_policy, validation[spec.label].to_numpy(), validation_proba,
                                 validation[spec.date_column])
    test_y = test[spec.label].astype(int).to_numpy()
    test_proba = {name: m.predict_proba(test[features])[:, 1] for name, m in models.items()}
    test_metrics = {name: evaluate(test_y, p, threshold) for name, p in test_proba.items()}
    winner_metrics, winner_proba = test_metrics[winner.name], test_proba[winner.name]
    baseline_metrics = test_metrics.get(BASELINE, winner_metrics)
    validation_metrics = evaluate(validation[spec.label].to_numpy(), validation_proba, threshold)
    truth = truth_for_rows(settings, spec.entity_key, test, horizon)
    truth_metrics = evaluate(test_y, truth, threshold) if truth is not None else None

    champion_version, champion_pr_auc = _champion_pr_auc(settings, spec, test)
    if champion_version is None:
        promote, promotion = True, "promoted: first model of its name"
    elif champion_pr_auc is None:
        promote, promotion = True, f"promoted: replaces {champion_version} (different feature set, not comparable)"
    elif winner_metrics["pr_auc"] > champion_pr_auc:
        promote = True
        promotion = f"promoted: test PR-AUC {winner_metrics['pr_auc']:.4f} beats {champion_version} ({champion_pr_auc:.4f})"
    else:
        promote = False
        promotion = (f"not promoted: {champion_version} keeps scoring (test PR-AUC {champion_pr_auc:.4f} "
                     f">= {winner_metrics['pr_auc']:.4f})")

    trained_at = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    model_version = f"{spec.name}-{trained_at:%Y%m%dT%H%M%S}"
    periods = split.describe(dates)
    deciles = decile_table(test_y, winner_proba, test[VALUE].to_numpy())
    curve = threshold_curve(test_y, winner_proba)
    sample = test.sample(n=min(len(test), IMPORTANCE_ROWS), random_state=settings.random_seed)
    importance = permutation_importance(
        models[winner.name], sample[features], sample[spec.label].astype(int), scoring="average_precision",
        n_repeats=3, random_state=settings.random_seed, n_jobs=1,
    )
    importances = pd.Series(importance.importances_mean, index=features).sort_values(ascending=False)

    metadata = {
        "model_version": model_version,
        "model_name": spec.name,
        "algorithm": winner.name,
        "params": winner.params,
        "selection_rule": SELECTION_RULE,
        "candidates": {r.name: {"params": r.params, "fold_pr_auc": r.fold_pr_auc, "fold_roc_auc": r.fold_roc_auc,
                                "searched": r.searched} for r in results},
        "features": features,
        "label": spec.label,
        "horizon_days": horizon,
        "periods": periods,
        "threshold": threshold,
        "threshold_policy": settings.threshold_policy,
        "test_metrics": test_metrics,
        "ground_truth_test_metrics": truth_metrics,
        "promotion": promotion,
        "library_versions": _library_versions(),
    }
    bundle = ModelBundle(
        model_version=model_version, spec=spec, estimator=models[winner.name], threshold=threshold,
        tier_cutoffs=tier_cutoffs(validation_proba, spec.tier_labels), metadata=metadata,
        baseline=baseline_values(fit, spec),
    )
    artifact = save_bundle(settings, bundle)
    report_path = artifact.parent / "report.html"
    row = {
        "algorithm": winner.name,
        "trained_at": trained_at,
        "horizon_days": horizon,
        **{k: (v or None) for k, v in periods.items()},
        "fit_rows": len(fit),
        "validation_rows": len(validation),
        "test_rows": len(test),
        "test_roc_auc": winner_metrics["roc_auc"],
        "test_pr_auc": winner_metrics["pr_auc"],
        "test_brier": winner_metrics["brier"],
        "baseline_test_roc_auc": baseline_metrics["roc_auc"],
        "ground_truth_test_roc_auc": truth_metrics["roc_auc"] if truth_metrics else None,
        "threshold_policy": settings.threshold_policy,
        "promotion": promotion,
        "champion_version": champion_version,
        "champion_test_pr_auc": champion_pr_auc,
        "report_path": str(report_path),
        "library_versions": str(metadata["library_versions"]),
    }
    metric_rows = [("validation", "all", k, v) for k, v in validation_metrics.items()]
    metric_rows += [("test", "all", k, v) for k, v in winner_metrics.items()]
    metric_rows += [("test", f"baseline:{BASELINE}", k, v) for k, v in baseline_metrics.items()]
    if truth_metrics:
        metric_rows += [("test", "ground_truth", k, v) for k, v in truth_metrics.items()]
    for r in results:
        metric_rows += [("cv", f"candidate:{r.name}", "pr_auc", r.pr_auc), ("cv", f"candidate:{r.name}", "roc_auc", r.roc_auc)]
    for d in deciles.itertuples():
        for metric in ("lift", "cumulative_gain", "value_captured", "positive_rate"):
            metric_rows.append(("test", f"decile:{d.decile}", metric, getattr(d, metric)))
    metric_rows += _segment_rows(spec, test, winner_proba)
    metric_rows += [("test", f"feature:{name}", "permutation_importance", float(v)) for name, v in importances.items()]
    register(settings, bundle, artifact, row, metric_rows, curve.assign(split="test"), promote)

    _write_model_report(report_path, spec, bundle, winner, results, test_y, test_proba, baseline_metrics,
                        winner_metrics, truth_metrics, deciles, curve, importances, periods, promotion, test)
    say(
        f"registered {model_version} ({winner.name}): test ROC-AUC {winner_metrics['roc_auc']:.3f}, "
        f"PR-AUC {winner_metrics['pr_auc']:.3f}"
        + (f"; ground truth on the same rows {truth_metrics['roc_auc']:.3f}" if truth_metrics else "")
        + f"; {promotion}"
    )
    return {"model_version": model_version, "algorithm": winner.name, "test": winner_metrics,
            "baseline": baseline_metrics, "ground_truth": truth_metrics, "threshold": threshold,
            "promoted": promote, "promotion": promotion, "report": str(report_path),
            "candidates": {r.name: r.pr_auc for r in results}}


def _write_model_report(path, spec, bundle, winner, results, test_y, test_proba, baseline_metrics, winner_metrics,
                        truth_metrics, deciles, curve, importances, periods, promotion, test) -> None:
    roc, pr = [], []
    for name, proba in test_proba.items():
        fpr, tpr, _ = roc_curve(test_y, proba)
        precision, recall, _ = precision_recall_curve(test_y, proba)
        roc.append((name, fpr, tpr))
        pr.append((name, recall, precision))
    calib = calibration_points(test_y, test_proba[winner.name])
    top = float(max(calib.predicted.max(), calib.observed.max(), 0.05))
    summary = pd.DataFrame({
        "metric": list(winner_metrics),
        f"winner ({winner.name})": list(winner_metrics.values()),
        f"baseline ({BASELINE})": [baseline_metrics[k] for k in winner_metrics],
        **({"simulator ground truth": [truth_metrics[k] for k in winner_metrics]} if truth_metrics else {}),
    })
    candidates = pd.DataFrame([
        {"candidate": r.name + (" (winner)" if r.name == winner.name else ""), "params": str(r.params),
         "fold PR-AUC": r.pr_auc, "fold ROC-AUC": r.roc_auc,
         "per fold PR-AUC": ", ".join(f"{v:.3f}" for v in r.fold_pr_auc)}
        for r in sorted(results, key=lambda r: -r.pr_auc)
    ])
    y = test[spec.label].astype(int).to_numpy()
    segments = []
    for column in spec.segments:
        values = test[column].astype(object).where(test[column].notna(), "(missing)").astype(str).to_numpy()
        for value in sorted(set(values)):
            mask = values == value
            if mask.sum() >= 30:
                m = evaluate(y[mask], test_proba[winner.name][mask], bundle.threshold)
                segments.append({"segment": f"{column} = {value}", "rows": int(m["rows"]), "positive rate": m["positive_rate"],
                                 "mean predicted": m["mean_predicted"], "ROC-AUC": m["roc_auc"], "PR-AUC": m["pr_auc"]})
    top_features = importances.head(15)
    context = {
        "model_name": spec.name, "model_version": bundle.model_version, "algorithm": winner.name,
        "selection_rule": SELECTION_RULE, "horizon_days": bundle.metadata["horizon_days"], "promotion": promotion,
        "periods": pd.DataFrame([{"period": k.replace("_", " "), "date": v} for k, v in periods.items()]),
        "summary": summary, "roc": roc, "pr": pr,
        "calibration": [(winner.name, calib.predicted, calib.observed)], "calibration_range": (0.0, min(1.0, top * 1.1)),
        "gain": [(winner.name, np.r_[0.0, deciles.decile / 10], np.r_[0.0, deciles.cumulative_gain])],
        "lift": [(winner.name, deciles.decile, deciles.lift)], "max_lift": float(np.nanmax(deciles.lift)) * 1.1,
        "threshold_series": [("precision", curve.threshold, curve.precision), ("recall", curve.threshold, curve.recall),
                             ("share flagged", curve.threshold, curve.share_flagged)],
        "threshold_range": (float(curve.threshold.min()), float(curve.threshold.max())),
        "importance_labels": list(top_features.index), "importance_values": [float(v) for v in top_features.values],
        "candidates": candidates, "segments": pd.DataFrame(segments), "deciles": deciles,
        "threshold_policy": bundle.metadata["threshold_policy"], "threshold": bundle.threshold,
    }
    write_report(path, context)
