"""Train a model from its mart: out-of-time split, candidate selection, calibration, threshold, evaluation,
champion/challenger promotion, registry rows, report.

The warehouse is opened twice: once to read the labelled rows (closed before fitting, so DuckDB's buffers are
gone while pandas holds the data), once to evaluate against an optional ground truth and register.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from datetime import date, datetime, timezone

import duckdb
import joblib
import numpy as np
import pandas as pd
import sklearn
from joblib.externals.loky import ProcessPoolExecutor
from sklearn.calibration import CalibratedClassifierCV
from sklearn.frozen import FrozenEstimator
from sklearn.metrics import average_precision_score, roc_auc_score
from threadpoolctl import threadpool_limits

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
# Training works beside its main line (_Beside) from this many fit rows on; below it the worker's start would cost
# more than the overlap saves.
BESIDE_MIN_ROWS = 50_000
BESIDE_NICENESS = 10
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


class _Beside:
    """Work done beside the main line of training, in one worker process at a lower priority: the dominance
    check of the leakage audit (while the selection's first rung runs) and the baseline's final fit (while the
    later rungs run; its grid point is settled by the first, and it is fitted whether it wins or not, as the
    report compares the winner with it). The selection keeps about one and a half of two cores busy (CPU time
    over wall time, 100,000 leads); the worker takes what it leaves. Each piece runs in-process instead when
    disabled (one thread, or too few rows to pay for the worker's start: about 2 s of imports).

    joblib's process pool (loky) spawns the worker: no fork of a process whose OpenMP threads have run (that can
    hang the child), and unlike the standard library's spawn it does not re-run the caller's script there (a
    script without a main guard would train again). Niced, the rungs keep the cores they use: with the baseline's
    fit alone beside them, training at 100,000 leads took 68.7 s with the fit after the selection, 61.2 s with
    it beside at normal priority and 57.9 s and 58.3 s with it niced (one run each)."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self.pool: ProcessPoolExecutor | None = None

    def submit(self, task: Callable, *args) -> Future | None:
        """task(*args) in the worker, on one thread, as a future; None when disabled (the caller's fallback then
        does the work)."""
        if not self.enabled:
            return None
        if self.pool is None:
            self.pool = ProcessPoolExecutor(max_workers=1, initializer=os.nice, initargs=(BESIDE_NICENESS,))
        return self.pool.submit(_on_one_thread, task, *args)

    @staticmethod
    def result(future: Future | None, fallback: Callable, say):
        """The task's result, or the fallback's when it did not run beside (or its worker died, e.g. for memory)."""
        if future is None:
            return fallback()
        try:
            return future.result()
        except BrokenProcessPool as error:
            say(f"warning: work beside the selection failed in its worker process ({error}); doing it here")
            return fallback()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=False, kill_workers=True)  # nothing it still runs is wanted any more


def _on_one_thread(task: Callable, *args):
    with threadpool_limits(limits=1):  # the selection keeps running beside it
        return task(*args)


AUDIT_ROWS = 100_000  # the audit reads at most this many fit rows (a fixed random sample): bounded cost
QUICK_ROWS = 20_000  # the quick model that measures a column's weight fits on at most this many


def _quick_rows(fit: pd.DataFrame, spec: ModelSpec, seed: int) -> pd.DataFrame:
    """The rows the quick model below uses: a fixed random sample of the fit rows, oldest first."""
    return fit.sample(n=min(len(fit), QUICK_ROWS), random_state=seed).sort_values(spec.date_column)


def _quick_auc(settings: Settings, spec: ModelSpec, fit: pd.DataFrame) -> Callable[[list[str]], float]:
    """A quick logistic model's ROC-AUC on the latest 30% of the (sampled) fit rows, fitted on the earlier ones,
    from given columns: how much a column carries, measured out of time."""
    return _quick_model_auc(_quick_rows(fit, spec, settings.random_seed), spec, settings.random_seed,
                            settings.duckdb_threads)


def _quick_model_auc(rows: pd.DataFrame, spec: ModelSpec, seed: int, threads: int) -> Callable[[list[str]], float]:
    """_quick_auc on rows already sampled."""
    cut = int(len(rows) * 0.7)
    train, held = rows.iloc[:cut], rows.iloc[cut:]
    baseline = next(c for c in CANDIDATES if c.name == BASELINE)

    both_classes = train[spec.label].nunique() == 2 and held[spec.label].nunique() == 2

    def auc(columns: list[str]) -> float:
        if not both_classes:  # too few positives early or late to measure anything: no figure, no warning
            return float("nan")
        narrowed = spec.restricted_to(set(columns))
        model = fit_weighted(make_pipeline_for(baseline, baseline.grid[-1], narrowed, seed, threads), train, narrowed)
        return float(roc_auc_score(held[spec.label].astype(int), model.predict_proba(held[list(narrowed.features)])[:, 1]))
    return auc


def _dominance(report: pd.DataFrame, rows: pd.DataFrame, spec: ModelSpec, seed: int, threads: int) -> pd.DataFrame:
    return warn_dominant(report, _quick_model_auc(rows, spec, seed, threads))


def _audited_spec(settings: Settings, spec: ModelSpec, fit: pd.DataFrame, say,
                  beside: _Beside) -> tuple[ModelSpec, Callable[[], pd.DataFrame]]:
    """Leakage audit before training: near-certain leaks are excluded (unless listed in keep_columns), dominant
    columns are warned about (and left out if listed in drop_columns); the audit is registered with the model
    (ml.leakage_audit). Returns the spec to train and a call that gives the audit's report.

    Which columns are excluded is known once the columns are audited one by one; the dominance check (quick
    models with and without the strongest columns) only warns, so it runs beside the selection when it can,
    and its warnings come when the report is asked for."""
    sample = fit.sample(n=min(len(fit), AUDIT_ROWS), random_state=settings.random_seed) if len(fit) > AUDIT_ROWS \
        else fit
    single = audit(sample, sample[spec.label].astype(int).to_numpy(), list(spec.features), check_names=False)
    keep, drop = set(settings.keep_columns), set(settings.drop_columns)
    excluded, _ = excluded_and_warned(decide(single, keep, drop))  # the dominance check excludes nothing
    rows = _quick_rows(fit, spec, settings.random_seed)
    seed, threads = settings.random_seed, settings.duckdb_threads
    dominance = beside.submit(_dominance, single, rows, spec, seed, 1)

    def report() -> pd.DataFrame:
        checked = beside.result(dominance, lambda: _dominance(single, rows, spec, seed, threads), say)
        decided = decide(checked, keep, drop)
        _, warned = excluded_and_warned(decided)
        for row in decided[decided.column_name.isin(warned)].itertuples():
            say(f"warning: leakage audit: {spec.name}.{row.column_name}: {row.flagged_reason} "
                "(leave it out with --drop-columns)")
        return decided

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


def _final_rows(fit: pd.DataFrame, settings: Settings) -> pd.DataFrame:
    return fit.sample(n=MAX_FINAL_ROWS, random_state=settings.random_seed) if len(fit) > MAX_FINAL_ROWS else fit


def _fit_final(candidate_name: str, params: dict, spec: ModelSpec, rows: pd.DataFrame, seed: int, threads: int):
    """A candidate's whole pipeline fitted on the final rows (weighted for imbalance)."""
    candidate = next(c for c in CANDIDATES if c.name == candidate_name)
    return fit_weighted(make_pipeline_for(candidate, params, spec, seed, threads), rows, spec)


def _calibrated(pipeline, spec: ModelSpec, validation: pd.DataFrame) -> CalibratedClassifierCV:
    """The fitted pipeline calibrated on the validation period.

    Platt (sigmoid) calibration keeps the model's ranking intact, so scores stay distinct and ROC-AUC is
    unchanged by calibration; isotonic steps would tie many leads at the same score."""
    return CalibratedClassifierCV(FrozenEstimator(pipeline), method="sigmoid").fit(
        validation[list(spec.features)], validation[spec.label].astype(int)
    )


@dataclass
class Selection:
    winner: CandidateResult
    results: list[CandidateResult]
    models: dict  # candidate name -> calibrated estimator (the winner and the logistic baseline)


def _select_and_fit(settings: Settings, spec: ModelSpec, periods: Periods, say, beside: _Beside) -> Selection:
    development = periods.development(spec)
    fit, validation = periods.part("fit"), periods.part("validation")
    rows = _final_rows(fit, settings)
    baseline_fit: dict = {}  # the grid point the baseline's final fit beside was started for, and its future

    def fit_baseline_beside(params: dict) -> None:
        baseline_fit.update(params=params, future=beside.submit(
            _fit_final, BASELINE, params, spec, rows[[*spec.features, spec.label]], settings.random_seed, 1))

    say(f"selecting {spec.name} on {len(development):,} development rows ({settings.cv_folds} rolling folds)")
    results = evaluate_candidates(development, spec, periods.horizon, settings.random_seed, settings.duckdb_threads,
                                  folds=settings.cv_folds, progress=say, baseline_settled=fit_baseline_beside)
    winner = choose_winner(results)
    by_name = {r.name: r for r in results}
    fitted = f"{len(fit):,} rows" if len(fit) <= MAX_FINAL_ROWS else f"{MAX_FINAL_ROWS:,} of the {len(fit):,} fit rows"
    say(f"winner {winner.name}; fitting on {fitted}, calibrating on {len(validation):,}, testing on {periods.rows('test'):,}")

    def final(name: str, params: dict) -> CalibratedClassifierCV:
        started = name == BASELINE and baseline_fit.get("params") == params  # else it is fitted here
        pipeline = beside.result(baseline_fit["future"] if started else None,
                                 lambda: _fit_final(name, params, spec, rows, settings.random_seed,
                                                    settings.duckdb_threads), say)
        return _calibrated(pipeline, spec, validation)

    models = {winner.name: final(winner.name, winner.params)}
    if BASELINE in by_name and BASELINE != winner.name:
        models[BASELINE] = final(BASELINE, by_name[BASELINE].params)
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
        fit = periods.part("fit")
        beside = _Beside(enabled=settings.duckdb_threads > 1 and len(fit) >= BESIDE_MIN_ROWS)
        try:
            spec, audited = _audited_spec(settings, spec, fit, say, beside)
            export_audit = _audit_export_columns(settings, spec, fit, extras, say)
            selection = _select_and_fit(settings, spec, periods, say, beside)
            audit_report = pd.concat([audited(), export_audit], ignore_index=True)
        finally:
            beside.close()
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
