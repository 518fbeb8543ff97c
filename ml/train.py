"""Train a model from its mart: out-of-time split, candidate selection, calibration, threshold, evaluation,
champion/challenger promotion, registry rows, report.

The warehouse is opened twice: once to read the labelled rows (closed before fitting, so DuckDB's buffers are
gone while pandas holds the data), once to evaluate against an optional ground truth and register.
"""

from __future__ import annotations

import platform
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

import duckdb
import joblib
import numpy as np
import pandas as pd
import sklearn
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import average_precision_score, roc_auc_score

from core.config import Settings
from core.warehouse import Connection, connect
from ml.dataset import VALUE, check_horizon, load_export_extras, load_labelled
from ml.diagnostics import (
    MIN_PERIOD_POSITIVES,
    InsufficientData,
    library_in_data_terms,
    present_sources,
    require_enough,
    sufficiency,
)
from ml.features import ModelSpec
from ml.importance import permutation_importances, row_orders
from ml.leakage import audit, decide, excluded_and_warned, warn_dominant
from ml.metrics import decile_table, evaluate, segment_metrics, signal_verdict, threshold_curve
from ml.pipeline import BASELINE, CANDIDATES, make_pipeline_for
from ml.registry import ModelBundle, Registration, load_active, register, save_bundle
from ml.report import ReportInputs, write_model_report
from ml.scores import tier_cutoffs
from ml.selection import CandidateResult, choose_winner, evaluate_candidates, fit_weighted
from ml.split import TimeSplit, out_of_time_split
from ml.thresholds import choose_threshold

MAX_FINAL_ROWS = 150_000  # the final fit sees at most this many rows (a fixed random sample): bounded cost
IMPORTANCE_ROWS = 4_000
IMPORTANCE_REPEATS = 3
SELECTION_RULE = (
    "grid points are narrowed by successive halving on training rows per fold (a third of the challengers go on "
    "to three times the rows; the baseline's best grid point always does); a candidate that reaches the last rung must beat the "
    "logistic baseline's PR-AUC in every rolling out-of-time fold; among those and the baseline, the highest mean "
    "fold PR-AUC wins (within 0.005: the highest mean ROC-AUC)"
)

# An optional evaluation hook: the best possible probability for the test rows (e.g. a simulator's ground
# truth), given the open warehouse, the entity key, the rows and the horizon; None when there is none.
TruthHook = Callable[[Connection, str, pd.DataFrame, int], "np.ndarray | None"]


def _finite(value) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _library_versions() -> dict[str, str]:
    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "pandas": pd.__version__,
        "numpy": np.__version__,
        "duckdb": duckdb.__version__,
        "joblib": joblib.__version__,
    }


def baseline_values(frame: pd.DataFrame, spec: ModelSpec) -> dict[str, object]:
    """A typical row of the training data (medians and most common values): the reference for explanations."""
    values: dict[str, object] = {}
    for column in spec.numeric:
        median = frame[column].median()
        values[column] = None if pd.isna(median) else float(median)
    for column in spec.categorical + spec.boolean + spec.target_encoded + spec.frequent_values:
        mode = frame[column].mode(dropna=True)
        values[column] = mode.iloc[0] if len(mode) else None
    return values


@dataclass
class Periods:
    """The labelled rows cut out of time: fit, validation (calibration, threshold) and test."""

    frame: pd.DataFrame
    split: TimeSplit
    horizon: int
    _parts: dict = field(default_factory=dict, repr=False)

    def part(self, name: str) -> pd.DataFrame:
        """The rows of one period, selected once (each selection copies the rows)."""
        if name not in self._parts:
            self._parts[name] = self.frame[getattr(self.split, name)]
        return self._parts[name]

    def rows(self, name: str) -> int:
        return int(getattr(self.split, name).sum())

    def development(self, spec: ModelSpec) -> pd.DataFrame:
        """Every row whose label window ends before the test period: where candidates are compared."""
        dates = pd.to_datetime(self.frame[spec.date_column])
        return self.frame[dates + pd.Timedelta(days=self.horizon) <= self.split.test_start]


def _periods(frame: pd.DataFrame, spec: ModelSpec, horizon: int, settings: Settings, say) -> Periods:
    """The out-of-time periods, after checking the data is enough: the counts per period are printed, and a period
    with too few positives (after moving the boundaries to share them out) stops training with the counts."""
    require_enough(frame, spec)
    labels = frame[spec.label].astype(int).to_numpy()
    split = out_of_time_split(frame[spec.date_column], horizon, settings.test_fraction, settings.validation_fraction,
                              labels=labels, min_positives=MIN_PERIOD_POSITIVES)
    periods = Periods(frame, split, horizon)
    counts = sufficiency(frame, spec, {name: getattr(split, name) for name in ("fit", "validation", "test")})
    for line in counts.lines():
        say(f"  {line}")
    short = [r.period for r in counts.table.itertuples() if r.period != "all" and r.positive_rows < MIN_PERIOD_POSITIVES]
    if short:
        raise InsufficientData(
            f"{spec.mart}: the {', '.join(short)} period(s) hold fewer than {MIN_PERIOD_POSITIVES} positive rows even "
            f"with the boundaries placed by positives ({horizon}-day horizon, {len(frame):,} labelled rows): load "
            "more history, or a shorter --horizon-days so that more of it is labelled")
    return periods


AUDIT_ROWS = 100_000  # the audit reads at most this many fit rows (a fixed random sample): bounded cost
QUICK_ROWS = 20_000  # the quick model that measures a column's weight fits on at most this many


def _quick_auc(settings: Settings, spec: ModelSpec, fit: pd.DataFrame) -> Callable[[list[str]], float]:
    """A quick logistic model's ROC-AUC on the latest 30% of the (sampled) fit rows, fitted on the earlier ones,
    from given columns: how much a column carries, measured out of time."""
    rows = fit.sample(n=min(len(fit), QUICK_ROWS), random_state=settings.random_seed).sort_values(spec.date_column)
    cut = int(len(rows) * 0.7)
    train, held = rows.iloc[:cut], rows.iloc[cut:]
    baseline = next(c for c in CANDIDATES if c.name == BASELINE)

    both_classes = train[spec.label].nunique() == 2 and held[spec.label].nunique() == 2

    def auc(columns: list[str]) -> float:
        if not both_classes:  # too few positives early or late to measure anything: no figure, no warning
            return float("nan")
        narrowed = spec.restricted_to(set(columns))
        model = fit_weighted(make_pipeline_for(baseline, baseline.grid[-1], narrowed, settings.random_seed,
                                               settings.duckdb_threads), train, narrowed)
        return float(roc_auc_score(held[spec.label].astype(int), model.predict_proba(held[list(narrowed.features)])[:, 1]))
    return auc


def _audited_spec(settings: Settings, spec: ModelSpec, fit: pd.DataFrame, say) -> tuple[ModelSpec, pd.DataFrame]:
    """Leakage audit before training: near-certain leaks are excluded (unless listed in keep_columns), dominant
    columns are warned about (and left out if listed in drop_columns); the audit is registered with the model
    (ml.leakage_audit)."""
    sample = fit.sample(n=min(len(fit), AUDIT_ROWS), random_state=settings.random_seed) if len(fit) > AUDIT_ROWS \
        else fit
    report = audit(sample, sample[spec.label].astype(int).to_numpy(), list(spec.features), check_names=False)
    report = warn_dominant(report, _quick_auc(settings, spec, fit))
    report = decide(report, set(settings.keep_columns), set(settings.drop_columns))
    excluded, warned = excluded_and_warned(report)
    for row in report[report.column_name.isin(warned)].itertuples():
        say(f"warning: leakage audit: {spec.name}.{row.column_name}: {row.flagged_reason} "
            "(leave it out with --drop-columns)")
    if not excluded:
        return spec, report
    say(f"warning: leakage audit excluded {', '.join(sorted(excluded))} from {spec.name}")
    return spec.restricted_to(set(spec.features) - set(excluded)), report


def _audit_export_columns(settings: Settings, spec: ModelSpec, fit: pd.DataFrame, extras: pd.DataFrame,
                          say) -> pd.DataFrame:
    """The export's columns outside the contract (never features), audited like features on the fit rows: a
    flagged one is a leak a mapping must not turn into a field. Recorded in ml.leakage_audit, not excluded."""
    columns = [c for c in extras.columns if c != spec.entity_key]
    if not columns or fit.empty:
        return pd.DataFrame()
    sample = fit[[spec.entity_key, spec.label]].sample(n=min(len(fit), AUDIT_ROWS), random_state=settings.random_seed)
    joined = sample.merge(extras, on=spec.entity_key, how="left")
    report = audit(joined, joined[spec.label].astype(int).to_numpy(), columns, check_names=True)
    report["is_excluded"] = False
    flagged = report.flagged_reason.notna()
    report.loc[flagged, "flagged_reason"] = "not a feature (an export column kept in _extra), but would leak: " + \
        report.loc[flagged, "flagged_reason"]
    for row in report[flagged].itertuples():
        say(f"warning: leakage audit: export column {row.column_name}: {row.flagged_reason}")
    return report


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


@dataclass
class Selection:
    winner: CandidateResult
    results: list[CandidateResult]
    models: dict  # candidate name -> calibrated estimator (the winner and the logistic baseline)


def _select_and_fit(settings: Settings, spec: ModelSpec, periods: Periods, say) -> Selection:
    development = periods.development(spec)
    say(f"selecting {spec.name} on {len(development):,} development rows ({settings.cv_folds} rolling folds)")
    results = evaluate_candidates(development, spec, periods.horizon, settings.random_seed, settings.duckdb_threads,
                                  folds=settings.cv_folds, progress=say)
    winner = choose_winner(results)
    by_name = {r.name: r for r in results}
    fit, validation = periods.part("fit"), periods.part("validation")
    fitted = f"{len(fit):,} rows" if len(fit) <= MAX_FINAL_ROWS else f"{MAX_FINAL_ROWS:,} of the {len(fit):,} fit rows"
    say(f"winner {winner.name}; fitting on {fitted}, calibrating on {len(validation):,}, testing on {periods.rows('test'):,}")
    models = {winner.name: _calibrated_fit(winner.name, winner.params, spec, fit, validation, settings)}
    if BASELINE in by_name and BASELINE != winner.name:
        models[BASELINE] = _calibrated_fit(BASELINE, by_name[BASELINE].params, spec, fit, validation, settings)
    return Selection(winner, results, models)


@dataclass
class Evaluation:
    """What the out-of-time periods say about the winner (and the baseline)."""

    threshold: float
    validation_proba: np.ndarray
    validation_metrics: dict[str, float]
    test_y: np.ndarray
    test_proba: dict[str, np.ndarray]
    test_metrics: dict[str, dict[str, float]]
    winner_metrics: dict[str, float]
    baseline_metrics: dict[str, float]
    deciles: pd.DataFrame
    curve: pd.DataFrame
    importances: pd.Series
    segments: pd.DataFrame
    signal: tuple[bool, str]  # does the winner rank better than the base rate, in words


def _evaluate(settings: Settings, spec: ModelSpec, periods: Periods, selection: Selection) -> Evaluation:
    features, winner = list(spec.features), selection.winner.name
    validation, test = periods.part("validation"), periods.part("test")
    validation_proba = selection.models[winner].predict_proba(validation[features])[:, 1]
    threshold = choose_threshold(settings.threshold_policy, validation[spec.label].to_numpy(), validation_proba,
                                 validation[spec.date_column])
    test_y = test[spec.label].astype(int).to_numpy()
    test_proba = {name: m.predict_proba(test[features])[:, 1] for name, m in selection.models.items()}
    test_metrics = {name: evaluate(test_y, p, threshold) for name, p in test_proba.items()}
    sample = test.sample(n=min(len(test), IMPORTANCE_ROWS), random_state=settings.random_seed)
    importances = permutation_importances(selection.models[winner], sample, sample[spec.label].to_numpy(), features,
                                          row_orders(len(sample), IMPORTANCE_REPEATS, settings.random_seed))
    return Evaluation(
        threshold=threshold, validation_proba=validation_proba,
        validation_metrics=evaluate(validation[spec.label].to_numpy(), validation_proba, threshold),
        test_y=test_y, test_proba=test_proba, test_metrics=test_metrics, winner_metrics=test_metrics[winner],
        baseline_metrics=test_metrics.get(BASELINE, test_metrics[winner]),
        deciles=decile_table(test_y, test_proba[winner], test[VALUE].to_numpy()),
        curve=threshold_curve(test_y, test_proba[winner]),
        importances=importances.sort_values(ascending=False),
        segments=segment_metrics(test, spec.segments, test_y, test_proba[winner], threshold),
        signal=signal_verdict(test_y, test_proba[winner], selection.winner.roc_auc, settings.random_seed),
    )


def _promotion(champion: ModelBundle | None, spec: ModelSpec, test: pd.DataFrame,
               pr_auc: float) -> tuple[bool, str, str | None, float | None]:
    """(promote, why, champion version, champion's test PR-AUC on the same rows)."""
    if champion is None:
        return True, "promoted: first model of its name", None, None
    if tuple(champion.spec.features) != tuple(spec.features):  # a different feature set cannot be compared
        return True, f"promoted: replaces {champion.model_version} (different feature set, not comparable)", \
            champion.model_version, None
    theirs = float(average_precision_score(test[spec.label].astype(int), champion.predict_proba(test)))
    if pr_auc > theirs:
        return True, f"promoted: test PR-AUC {pr_auc:.4f} beats {champion.model_version} ({theirs:.4f})", \
            champion.model_version, theirs
    return False, (f"not promoted: {champion.model_version} keeps scoring (test PR-AUC {theirs:.4f} "
                   f">= {pr_auc:.4f})"), champion.model_version, theirs


def _metric_rows(selection: Selection, evaluation: Evaluation,
                 truth_metrics: dict | None) -> list[tuple[str, str, str, float]]:
    """Every number training measured, as (split, segment, metric, value) rows of ml.model_metrics."""
    rows = [("validation", "all", k, v) for k, v in evaluation.validation_metrics.items()]
    rows += [("test", "all", k, v) for k, v in evaluation.winner_metrics.items()]
    rows += [("test", f"baseline:{BASELINE}", k, v) for k, v in evaluation.baseline_metrics.items()]
    if truth_metrics:
        rows += [("test", "ground_truth", k, v) for k, v in truth_metrics.items()]
    for r in selection.results:
        rows += [("cv", f"candidate:{r.name}", "pr_auc", r.pr_auc), ("cv", f"candidate:{r.name}", "roc_auc", r.roc_auc)]
    for d in evaluation.deciles.itertuples():
        for metric in ("lift", "cumulative_gain", "value_captured", "positive_rate"):
            rows.append(("test", f"decile:{d.decile}", metric, getattr(d, metric)))
    for s in evaluation.segments.itertuples():
        for metric in ("rows", "positive_rate", "mean_predicted", "roc_auc", "pr_auc", "brier"):
            rows.append(("test", s.segment, metric, getattr(s, metric)))
    rows += [("test", f"feature:{name}", "permutation_importance", float(v))
             for name, v in evaluation.importances.items()]
    return rows


@dataclass
class Trained:
    """One training run's decisions, ready for the registry and the report."""

    spec: ModelSpec
    settings: Settings
    periods: Periods
    selection: Selection
    evaluation: Evaluation
    truth_metrics: dict | None
    promotion: tuple[bool, str, str | None, float | None]
    trained_at: datetime
    audit: pd.DataFrame
    sources: tuple[str, ...] = ()  # the raw tables that had rows when the model was trained

    def leakage(self) -> dict:
        """What the audit excluded and warned about, with the quick model's test ROC-AUC with and without each
        warned column (the same figures ml.leakage_audit holds)."""
        excluded, warned = excluded_and_warned(self.audit)
        rows = self.audit.set_index("column_name")
        export = self.audit[self.audit.column_name.str.startswith("_extra.") & self.audit.flagged_reason.notna()]
        return {"excluded": excluded, "export_columns": dict(zip(export.column_name, export.flagged_reason)),
                "warned": {c: {"reason": rows.at[c, "flagged_reason"], "auc_with": _finite(rows.at[c, "auc_with"]),
                               "auc_without": _finite(rows.at[c, "auc_without"])} for c in warned}}

    @property
    def model_version(self) -> str:
        return f"{self.spec.name}-{self.trained_at:%Y%m%dT%H%M%S}"

    def metadata(self) -> dict:
        ev, sel = self.evaluation, self.selection
        return {
            "model_version": self.model_version, "model_name": self.spec.name, "algorithm": sel.winner.name,
            "params": sel.winner.params, "selection_rule": SELECTION_RULE,
            "candidates": {r.name: {"params": r.params, "fold_pr_auc": r.fold_pr_auc, "fold_roc_auc": r.fold_roc_auc,
                                    "rows_per_fold": r.rows, "searched": r.searched} for r in sel.results},
            "features": list(self.spec.features), "label": self.spec.label, "horizon_days": self.periods.horizon,
            "periods": self.periods.split.describe(self.periods.frame[self.spec.date_column]),
            "threshold": ev.threshold, "threshold_policy": self.settings.threshold_policy,
            "test_metrics": ev.test_metrics, "ground_truth_test_metrics": self.truth_metrics,
            "promotion": self.promotion[1], "library_versions": _library_versions(), "leakage": self.leakage(),
            "signal": ev.signal[1], "sources_present": list(self.sources),
        }

    def bundle(self) -> ModelBundle:
        return ModelBundle(
            model_version=self.model_version, spec=self.spec, estimator=self.selection.models[self.selection.winner.name],
            threshold=self.evaluation.threshold,
            tier_cutoffs=tier_cutoffs(self.evaluation.validation_proba, self.spec.tier_labels),
            metadata=self.metadata(), baseline=baseline_values(self.periods.part("fit"), self.spec),
        )

    def registry_row(self, report_path: str, library_versions: dict) -> dict:
        ev, periods = self.evaluation, self.periods.split.describe(self.periods.frame[self.spec.date_column])
        return {
            "algorithm": self.selection.winner.name, "trained_at": self.trained_at, "horizon_days": self.periods.horizon,
            **{k: (date.fromisoformat(v) if v else None) for k, v in periods.items()},
            "fit_rows": self.periods.rows("fit"), "validation_rows": self.periods.rows("validation"),
            "test_rows": self.periods.rows("test"),
            "test_roc_auc": ev.winner_metrics["roc_auc"], "test_pr_auc": ev.winner_metrics["pr_auc"],
            "test_brier": ev.winner_metrics["brier"], "baseline_test_roc_auc": ev.baseline_metrics["roc_auc"],
            "ground_truth_test_roc_auc": self.truth_metrics["roc_auc"] if self.truth_metrics else None,
            "threshold_policy": self.settings.threshold_policy, "promotion": self.promotion[1],
            "champion_version": self.promotion[2], "champion_test_pr_auc": self.promotion[3],
            "report_path": report_path, "library_versions": str(library_versions),
            "base_rate": float(ev.test_y.mean()), "signal_found": ev.signal[0], "signal_note": ev.signal[1],
            "sources_present": ", ".join(self.sources),
        }

    def summary(self, report_path: str) -> dict:
        ev = self.evaluation
        return {"model_version": self.model_version, "algorithm": self.selection.winner.name,
                "test": ev.winner_metrics, "baseline": ev.baseline_metrics, "ground_truth": self.truth_metrics,
                "threshold": ev.threshold, "promoted": self.promotion[0], "promotion": self.promotion[1],
                "report": report_path, "candidates": {r.name: r.pr_auc for r in self.selection.results},
                "leakage": self.leakage(), "base_rate": float(ev.test_y.mean()), "signal_found": ev.signal[0],
                "signal": ev.signal[1], "sources_present": list(self.sources)}


def _read_training_rows(settings: Settings, spec: ModelSpec,
                        horizon: int) -> tuple[pd.DataFrame, ModelBundle | None, pd.DataFrame]:
    """The labelled rows, the active model of this name (None if there is none) and the export's own columns
    outside the contract, in one read-only visit."""
    with connect(settings, read_only=True) as con:
        check_horizon(con, spec, horizon)
        chunks = load_labelled(con, spec)
        extras = load_export_extras(con, spec)
        try:
            champion = load_active(con, spec.name)
        except (LookupError, FileNotFoundError):
            champion = None
    return chunks.frame(), champion, extras


def train_model(settings: Settings, spec: ModelSpec, progress: Callable[[str], None] | None = None,
                truth: TruthHook | None = None) -> dict:
    """Select, fit, evaluate out of time, register and report one model; returns a summary.

    `truth`, when given, scores the test rows with the best possible probability for comparison."""
    say = progress or (lambda _msg: None)
    horizon = int(getattr(settings, spec.horizon_setting))
    frame, champion, extras = _read_training_rows(settings, spec, horizon)
    if frame.attrs.get("entity_share", 1.0) < 1.0:
        say(f"training on the labelled rows of {frame.attrs['entity_share']:.1%} of entities ({len(frame):,} rows)")
    with library_in_data_terms(f"{spec.name} ({spec.mart})", frame, spec.label, say):
        periods = _periods(frame, spec, horizon, settings, say)
        spec, audit_report = _audited_spec(settings, spec, periods.part("fit"), say)
        export_audit = _audit_export_columns(settings, spec, periods.part("fit"), extras, say)
        audit_report = pd.concat([audit_report, export_audit], ignore_index=True)
        selection = _select_and_fit(settings, spec, periods, say)
        evaluation = _evaluate(settings, spec, periods, selection)
    test = periods.part("test")
    promotion = _promotion(champion, spec, test, evaluation.winner_metrics["pr_auc"])
    trained_at = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    with connect(settings) as con:
        best = truth(con, spec.entity_key, test, horizon) if truth else None
        truth_metrics = evaluate(evaluation.test_y, best, evaluation.threshold) if best is not None else None
        trained = Trained(spec, settings, periods, selection, evaluation, truth_metrics, promotion, trained_at,
                          audit_report, tuple(present_sources(con)))
        bundle = trained.bundle()
        artifact = save_bundle(settings, bundle)
        report_path = artifact.parent / "report.html"
        register(con, Registration(
            bundle, artifact, trained.registry_row(str(report_path), bundle.metadata["library_versions"]),
            _metric_rows(selection, evaluation, truth_metrics), evaluation.curve.assign(split="test"), promotion[0],
            audit_report))
    write_model_report(report_path, ReportInputs(spec, bundle, selection.winner.name, selection.results, evaluation,
                                                 truth_metrics, SELECTION_RULE, BASELINE, audit_report))
    wm = evaluation.winner_metrics
    say(f"registered {trained.model_version} ({selection.winner.name}): test ROC-AUC {wm['roc_auc']:.3f}, "
        f"PR-AUC {wm['pr_auc']:.3f}"
        + (f"; ground truth on the same rows {truth_metrics['roc_auc']:.3f}" if truth_metrics else "")
        + f"; {promotion[1]}")
    say(evaluation.signal[1] + f" (logistic baseline {evaluation.baseline_metrics['roc_auc']:.3f})")
    return trained.summary(str(report_path))
