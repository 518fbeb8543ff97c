"""Flat CRM export mode: one row per lead (or customer) with attributes and a label, through the warehouse.

What time allows: a flat export has no event times, so nothing can prove a column was known before the
outcome. scorehouse therefore (1) audits every column and excludes the ones that look filled in after the
outcome, (2) evaluates with 5-fold stratified cross-validation — or, when a creation date is given, on the
latest 20% of rows by that date — and (3) scores each row with a model that never saw that row
(out-of-fold probabilities), so the scores are honest for the rows that trained the model.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import joblib
import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.utils.class_weight import compute_sample_weight

from core.config import Settings
from core.warehouse import Connection, connect, transaction
from ml.diagnostics import InsufficientData, library_in_data_terms
from ml.features import ModelSpec
from ml.leakage import audit, decide, excluded_and_warned, record_audit, warn_dominant
from ml.metrics import evaluate, signal_verdict
from ml.pipeline import CANDIDATES, make_pipeline_for
from ml.registry import ensure_registry
from ml.scores import TIER_TOP_SHARES, to_score, to_tier
from ml.thresholds import choose_threshold

OPEN = -2  # the label code of a row whose outcome is not known yet
POSITIVE = {"1", "yes", "y", "true", "t", "converted", "churned", "won"}
NEGATIVE = {"0", "no", "n", "false", "f", "not converted", "stayed", "lost"}
FLAT_CANDIDATES = ("logistic_l1", "hist_gradient_boosting")


@dataclass
class FlatResult:
    name: str
    rows_read: int
    rows_used: int
    rows_rejected: int
    evaluation: str
    audit: pd.DataFrame
    excluded: list[str]
    metrics: dict[str, dict[str, float]] = field(default_factory=dict)  # candidate -> roc_auc, pr_auc
    metrics_with_flagged: dict[str, float] = field(default_factory=dict)  # the winner refitted with `excluded`
    winner: str = ""
    model_version: str = ""
    warned: list[str] = field(default_factory=list)
    base_rate: float = float("nan")
    rows_open: int = 0  # rows whose outcome is not known yet: scored, not trained on
    threshold: float = 0.5
    winner_metrics: dict[str, float] = field(default_factory=dict)  # every figure of the winner, as ml.model_metrics
    signal: tuple[bool, str] = (False, "")

    def audit_lines(self) -> list[str]:
        """What the audit did, column by column, in words."""
        lines = []
        for row in self.audit[self.audit.flagged_reason.notna()].itertuples():
            if row.is_excluded:
                action = "excluded"
            elif row.level == "warned":
                action = "kept, with a warning (leave it out with --drop-column)"
            else:
                action = "kept by request"
            lines.append(f"audit: {row.column_name}: {row.flagged_reason} -> {action}")
        return lines

    def leak_note(self) -> str:
        """How much the excluded columns would have 'added': the size of the leak, said consistently."""
        if not self.metrics_with_flagged:
            return ""
        honest, leaky = self.metrics[self.winner]["roc_auc"], self.metrics_with_flagged["roc_auc"]
        if leaky - honest >= 0.005:
            return f"; with the excluded columns it would be {leaky:.3f}: that gap is leakage, not skill"
        return f"; the excluded columns add nothing measurable to it ({leaky:.3f} with them)"


def _column_name(text: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", text.strip().lower()).strip("_") or "column"


NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")  # a flat export's name becomes part of table names


def flat_name(given: str | None, path: Path) -> str:
    """The export's name in table names (raw.flat_NAME, ...): --name as given, which must already be a plain
    name, or the file's name without its extensions, reduced to letters, digits and underscores."""
    if given is not None:
        if not NAME.match(given):
            raise ValueError(f"--name {given!r}: a name is 1 to 48 lower-case letters, digits and underscores, "
                             "starting with a letter (it becomes part of table names)")
        return given
    stem = Path(path).name
    for extension in (".gz", ".zst", ".csv", ".tsv", ".txt", ".parquet"):  # compression first, then the format
        stem = stem[: -len(extension)] if stem.lower().endswith(extension) else stem
    derived = _column_name(stem)
    derived = derived if derived[:1].isalpha() else f"export_{derived}"
    return derived[:48].rstrip("_")


def _read(path: Path) -> pd.DataFrame:
    """Every column as text (the file's path goes to DuckDB as a parameter, never as SQL)."""
    parquet = ".parquet" in [s.lower() for s in path.suffixes]
    try:
        with duckdb.connect() as con:
            if parquet:
                return con.execute("select columns(*)::varchar from read_parquet(?)", [str(path)]).df()
            return con.execute("select * from read_csv(?, all_varchar = true, header = true)", [str(path)]).df()
    except duckdb.Error as error:
        kind = "Parquet" if parquet else "CSV"
        raise ValueError(f"{path}: cannot be read as {kind}: {str(error).splitlines()[0]}") from error


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns whose non-blank values are (almost) all numbers become numbers; blanks become missing."""
    out = frame.copy()
    for column in out.columns:
        text = out[column].astype(object).where(out[column].notna(), None)
        text = text.map(lambda v: v.strip() if isinstance(v, str) else v).replace({"": None, "Select": None})
        numbers = pd.to_numeric(text, errors="coerce")
        filled = text.notna().sum()
        out[column] = numbers if filled and numbers.notna().sum() >= 0.98 * filled else text
    return out


def _cv_predictions(candidate_name: str, spec: ModelSpec, frame: pd.DataFrame, y: np.ndarray,
                    settings: Settings) -> np.ndarray:
    """Out-of-fold probabilities: every row scored by a model fitted, like the final one, without it."""
    out = np.zeros(len(frame))
    for train, held in StratifiedKFold(5, shuffle=True, random_state=settings.random_seed).split(frame, y):
        pipeline = _fit_candidate(candidate_name, spec, frame.iloc[train], y[train], settings)
        out[held] = pipeline.predict_proba(frame.iloc[held][list(spec.features)])[:, 1]
    return out


def _spec(name: str, frame: pd.DataFrame, columns: list[str]) -> ModelSpec:
    numeric = tuple(c for c in columns if pd.api.types.is_numeric_dtype(frame[c]))
    categorical = tuple(c for c in columns if c not in numeric)
    return ModelSpec(name=f"flat_{name}", mart=f"marts.fct_flat_{name}", entity_key="entity_id", label="label",
                     numeric=numeric, categorical=categorical)


@dataclass(frozen=True)
class FlatExport:
    """A flat file and what its columns mean."""

    path: Path
    id_column: str | None  # None: rows are named by their line number in the file
    label_column: str
    name: str
    created_at_column: str | None = None
    keep_columns: tuple[str, ...] = ()  # flagged by the audit, kept by request
    drop_columns: tuple[str, ...] = ()  # left out by request (e.g. warned about)
    after_outcome: tuple[str, ...] = ()  # declared known only after the outcome: never used
    open_labels: tuple[str, ...] = ()  # label values of rows whose outcome is not known yet: scored, not trained on


@dataclass
class _Rows:
    raw: pd.DataFrame  # every row read, columns renamed
    rejects: pd.DataFrame  # line, reason (None for a usable row)
    data: pd.DataFrame  # the labelled rows, typed, with entity_id and label
    y: np.ndarray
    label_col: str
    created_col: str | None
    open: pd.DataFrame  # the open rows (outcome not known yet), typed like data, without label

    @property
    def keep(self) -> np.ndarray:
        return self.rejects.reason.isna().to_numpy()


def _rows(export: FlatExport) -> _Rows:
    """Read the file, name its columns, reject rows without an id or a yes/no label, and type the rest."""
    path = Path(export.path)
    if not path.is_file() or path.stat().st_size == 0:
        raise ValueError(f"{path}: no such file, or it is empty")
    raw = _read(path)
    raw.columns = [_column_name(c) for c in raw.columns]
    if export.id_column is None:  # no id in the file: each row is named by its line (the header is line 1)
        raw.insert(0, "line_number", (np.arange(len(raw)) + 2).astype(str))
    id_col, label_col = _column_name(export.id_column or "line_number"), _column_name(export.label_column)
    created_col = _column_name(export.created_at_column) if export.created_at_column else None
    wanted = ((id_col, export.id_column or id_col), (label_col, export.label_column))
    for column, given in wanted + (((created_col, export.created_at_column),) if created_col else ()):
        if column not in raw.columns:
            raise ValueError(f"{path}: no column {given!r}; columns are: {', '.join(raw.columns)}")
    raw = raw.loc[:, ~raw.columns.duplicated()]
    label_text = raw[label_col].astype(str).str.strip().str.lower()
    as_number = pd.to_numeric(label_text, errors="coerce")  # 1.0 / 0.0, as spreadsheets write them
    label_text = label_text.mask(as_number == 1, "1").mask(as_number == 0, "0")
    open_values = {v.strip().lower() for v in export.open_labels}
    label = np.where(label_text.isin(POSITIVE), 1, np.where(label_text.isin(NEGATIVE), 0,
                                                             np.where(label_text.isin(open_values), OPEN, -1)))
    missing_id = raw[id_col].isna() | (raw[id_col].astype(str).str.strip() == "")
    rejects = pd.DataFrame({
        "line": np.arange(len(raw)) + 2,
        "reason": np.where(missing_id, f"missing id {export.id_column}",
                           np.where(label == -1, f"label {export.label_column} is not a yes/no value (one "
                                                          "meaning 'no outcome yet' can be given with --open-label)",
                                    None)),
    })
    duplicated = raw[id_col].duplicated(keep="first") & rejects.reason.isna()
    rejects.loc[duplicated, "reason"] = f"duplicate id {export.id_column}"
    keep = rejects.reason.isna().to_numpy()
    usable = _typed(raw[keep].reset_index(drop=True)).rename(columns={id_col: "entity_id"})  # one typing for both
    usable["entity_id"] = usable["entity_id"].astype(str)
    is_open = label[keep] == OPEN
    data = usable[~is_open].reset_index(drop=True)
    data["label"] = label[keep][~is_open]
    positives = int(data["label"].sum())
    if len(data) == 0:
        raise InsufficientData(f"{path}: no row has a yes/no {export.label_column}{_rejected_note(rejects)}; "
                               "nothing was written")
    if positives == 0 or positives == len(data):
        raise InsufficientData(
            f"{path}: {len(data):,} rows have a yes/no {export.label_column} and {positives:,} of them are yes: a model "
            f"needs both outcomes{_rejected_note(rejects)}; nothing was written")
    return _Rows(raw, rejects, data, data["label"].to_numpy(), label_col, created_col,
                 usable[is_open].reset_index(drop=True))


def _rejected_note(rejects: pd.DataFrame) -> str:
    bad = rejects[rejects.reason.notna()]
    return "" if bad.empty else f" ({len(bad):,} rows rejected, the first on line {int(bad.line.iloc[0])}: " \
        f"{bad.reason.iloc[0]})"


def _land(con: Connection, export: FlatExport, rows: _Rows, now: datetime) -> None:
    """The flat table lands and becomes a mart like any other source; refused rows go to its rejects table."""
    name, keep = export.name, rows.keep
    con.execute("create schema if not exists raw; create schema if not exists marts")
    con.register("flat_raw", rows.raw.assign(_loaded_at=now, _source_file=str(export.path),
                                              _source_line=np.arange(len(rows.raw)) + 2))
    con.execute(f"create or replace table raw.flat_{name} as select * from flat_raw")
    con.register("flat_rejects", rows.rejects[~keep].assign(source=f"flat_{name}", file=str(export.path)))
    con.execute(f"create or replace table raw.flat_{name}_rejects as select source, file, line, reason from flat_rejects")
    # labelled and open rows alike; an open row's label is NULL
    con.register("flat_mart", pd.concat([rows.data, rows.open.assign(label=pd.NA)], ignore_index=True))
    con.execute(f"create or replace table marts.fct_flat_{name} as select * from flat_mart")
    for view in ("flat_raw", "flat_rejects", "flat_mart"):
        con.unregister(view)


def _fit_candidate(candidate_name: str, spec: ModelSpec, frame: pd.DataFrame, y: np.ndarray, settings: Settings):
    c = next(x for x in CANDIDATES if x.name == candidate_name)
    return make_pipeline_for(c, c.grid[-1], spec, settings.random_seed, settings.duckdb_threads).fit(
        frame[list(spec.features)], y, model__sample_weight=compute_sample_weight("balanced", y))


def _evaluate(settings: Settings, rows: _Rows, spec: ModelSpec, result: FlatResult,
              say) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Each candidate's probabilities (out of fold, or on the latest 20% by creation date) and metrics; and the
    labels they are judged against."""
    data, y = rows.data, rows.y
    if rows.created_col:
        created = pd.to_datetime(data[rows.created_col], errors="coerce")
        cut = created.quantile(0.8)
        train, test = (created < cut).to_numpy(), (created >= cut).to_numpy()
        result.evaluation = (f"out of time: trained before {cut.date()}, tested on the latest 20% of rows by "
                             f"{rows.created_col}")
    else:
        result.evaluation = "5-fold stratified cross-validation (no event times in a flat export)"
    predictions = {}
    for candidate in FLAT_CANDIDATES:
        if rows.created_col:
            pipeline = _fit_candidate(candidate, spec, data[train], y[train], settings)
            p, truth = pipeline.predict_proba(data[test][list(spec.features)])[:, 1], y[test]
        else:
            p, truth = _cv_predictions(candidate, spec, data, y, settings), y
        predictions[candidate] = p
        result.metrics[candidate] = {"roc_auc": float(roc_auc_score(truth, p)),
                                     "pr_auc": float(average_precision_score(truth, p))}
        say(f"  {candidate}: ROC-AUC {result.metrics[candidate]['roc_auc']:.3f}  "
            f"PR-AUC {result.metrics[candidate]['pr_auc']:.3f}")
    return predictions, (y[test] if rows.created_col else y)


def _land_register_and_score(con: Connection, spec: ModelSpec, export: FlatExport, rows: _Rows, result: FlatResult,
                             scores: pd.DataFrame, metadata: dict, now: datetime) -> None:
    """The export lands, the model becomes the active one of its name, with its audit, and its scores replace the
    previous ones: all in one transaction, so a failure leaves the tables of the previous run as they were."""
    ensure_registry(con)
    with transaction(con):
        _land(con, export, rows, now)
        con.execute("update ml.model_registry set is_active = false where model_name = ?", [spec.name])
        # a flat export has no label horizon (NULL); its threshold is the F1-best one on the evaluation rows
        con.execute(
            "insert into ml.model_registry (model_version, model_name, algorithm, trained_at, is_active, artifact_path, "
            "horizon_days, threshold, test_roc_auc, test_pr_auc, promotion, metadata_json, base_rate, signal_found, "
            "signal_note, threshold_policy) values (?, ?, ?, ?, true, ?, null, ?, ?, ?, ?, ?, ?, ?, ?, 'f1')",
            [result.model_version, spec.name, result.winner, now, metadata["artifact_path"], result.threshold,
             result.metrics[result.winner]["roc_auc"], result.metrics[result.winner]["pr_auc"],
             f"promoted: flat export ({result.evaluation}; scores are {metadata['scores']})", json.dumps(metadata),
             result.base_rate, result.signal[0], result.signal[1]],
        )
        split = "test" if result.evaluation.startswith("out of time") else "cv"
        con.executemany("insert into ml.model_metrics values (?, ?, ?, ?, ?)",
                        [[result.model_version, split, "all", k, v] for k, v in result.winner_metrics.items()]
                        + [[result.model_version, split, f"candidate:{c}", k, v]
                           for c, m in result.metrics.items() for k, v in m.items()])
        record_audit(con, spec.name, now, result.audit)
        con.execute("create schema if not exists scores")
        con.register("flat_scores", scores)
        con.execute(f"create or replace table scores.flat_{result.name}_scores as select * from flat_scores")
    con.unregister("flat_scores")


def _cv_auc(settings: Settings, name: str, frame: pd.DataFrame, y: np.ndarray) -> Callable[[list[str]], float]:
    """A quick model's cross-validated ROC-AUC on given columns (logistic, 3 folds, at most 20,000 rows)."""
    rows = np.random.default_rng(settings.random_seed).permutation(len(frame))[:20_000]
    sample, labels = frame.iloc[rows].reset_index(drop=True), y[rows]
    candidate = next(c for c in CANDIDATES if c.name == "logistic_l1")

    def auc(columns: list[str]) -> float:
        if np.bincount(labels, minlength=2).min() < 3:  # too few of a class for three folds: no figure
            return float("nan")
        spec = _spec(name, sample, columns)
        p = np.zeros(len(sample))
        for train, held in StratifiedKFold(3, shuffle=True, random_state=settings.random_seed).split(sample, labels):
            model = make_pipeline_for(candidate, candidate.grid[-1], spec, settings.random_seed, settings.duckdb_threads)
            model.fit(sample.iloc[train][columns], labels[train],
                      model__sample_weight=compute_sample_weight("balanced", labels[train]))
            p[held] = model.predict_proba(sample.iloc[held][columns])[:, 1]
        return float(roc_auc_score(labels, p))
    return auc


def _audit(settings: Settings, export: FlatExport, rows: _Rows, candidates: list[str]) -> pd.DataFrame:
    after = tuple(_column_name(c) for c in export.after_outcome)
    unknown = [c for c in (*after, *map(_column_name, export.drop_columns)) if c not in candidates]
    if unknown:
        raise ValueError(f"{export.path}: no column {', '.join(map(repr, unknown))} to leave out; "
                         f"columns are: {', '.join(candidates)}")
    report = audit(rows.data, rows.y, candidates, check_names=True, after_outcome=after, open_rows=rows.open)
    report = warn_dominant(report, _cv_auc(settings, export.name, rows.data, rows.y))
    return decide(report, {_column_name(c) for c in export.keep_columns},
                  {_column_name(c) for c in export.drop_columns})


def run_flat(settings: Settings, export: FlatExport, progress: Callable[[str], None] | None = None) -> FlatResult:
    """Audit, evaluate, fit and score a flat export; lands raw.flat_NAME, marts.fct_flat_NAME and
    scores.flat_NAME_scores and registers the model."""
    say = progress or (lambda _m: None)
    flat_name(export.name, export.path)  # refuses a name that is not a plain identifier before any SQL sees it
    rows = _rows(export)
    with library_in_data_terms(f"flat export {export.name}", rows.data, "label", say):
        return _audit_fit_and_score(settings, export, rows, say)


def _audit_fit_and_score(settings: Settings, export: FlatExport, rows: _Rows, say: Callable[[str], None]) -> FlatResult:
    candidates = [c for c in rows.data.columns if c not in ("entity_id", "label", rows.label_col, rows.created_col)]
    report = _audit(settings, export, rows, candidates)
    excluded, warned = excluded_and_warned(report)
    if excluded:
        say(f"warning: leakage audit excluded {len(excluded)} column(s): {', '.join(excluded)} "
            "(keep one with --keep-column)")
    if warned:
        say(f"warning: leakage audit warns about {', '.join(warned)}: see the audit lines below")
    spec = _spec(export.name, rows.data, [c for c in candidates if c not in excluded])
    result = FlatResult(export.name, len(rows.raw), len(rows.data), int((~rows.keep).sum()), "", report, excluded,
                        warned=warned, base_rate=float(rows.y.mean()), rows_open=len(rows.open))
    now = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    predictions, truth = _evaluate(settings, rows, spec, result, say)
    result.winner = max(result.metrics, key=lambda k: result.metrics[k]["pr_auc"])
    winner_p = predictions[result.winner]
    result.threshold = choose_threshold("f1", truth, winner_p, None)
    result.winner_metrics = {**evaluate(truth, winner_p, result.threshold), "base_rate": float(truth.mean())}
    result.signal = signal_verdict(truth, winner_p, result.metrics[result.winner]["roc_auc"], settings.random_seed)
    say(result.signal[1])
    if excluded and not rows.created_col:  # what the flagged columns would have added: the size of the leak
        p = _cv_predictions(result.winner, _spec(export.name, rows.data, candidates), rows.data, rows.y, settings)
        result.metrics_with_flagged = {"roc_auc": float(roc_auc_score(rows.y, p)),
                                       "pr_auc": float(average_precision_score(rows.y, p))}

    result.model_version = f"flat_{export.name}-{now:%Y%m%dT%H%M%S}"
    folder = settings.models_dir / result.model_version
    folder.mkdir(parents=True, exist_ok=True)
    final = _fit_candidate(result.winner, spec, rows.data, rows.y, settings)
    joblib.dump({"spec": spec, "estimator": final, "excluded": excluded}, folder / "model.joblib")
    if rows.created_col:
        scores_p, score_note = final.predict_proba(rows.data[list(spec.features)])[:, 1], \
            "in-sample (out-of-time evaluation above)"
    else:
        scores_p, score_note = predictions[result.winner], "out-of-fold"  # each row scored by a model that never saw it
    metadata = {"evaluation": result.evaluation, "metrics": result.metrics, "excluded": excluded, "warned": warned,
                "metrics_with_flagged": result.metrics_with_flagged, "features": list(spec.features),
                "artifact_path": str(folder / "model.joblib"), "scores": score_note}
    (folder / "metadata.json").write_text(json.dumps(metadata, indent=2))
    cutoffs = {t: float(np.quantile(scores_p, 1 - s)) for t, s in zip("ABC", TIER_TOP_SHARES)}
    # open rows (outcome not known yet) are what a score is for: the final model scores them
    open_p = final.predict_proba(rows.open[list(spec.features)])[:, 1] if len(rows.open) else np.zeros(0)
    probability = np.concatenate([scores_p, open_p])
    scores = pd.DataFrame({
        "entity_id": pd.concat([rows.data.entity_id, rows.open.entity_id], ignore_index=True), "scored_at": now,
        "model_version": result.model_version, "probability": probability, "score": to_score(probability),
        "tier": to_tier(probability, cutoffs), "is_open": np.r_[np.zeros(len(scores_p), bool), np.ones(len(open_p), bool)],
    })
    with connect(settings) as con:
        _land_register_and_score(con, spec, export, rows, result, scores, metadata, now)
    return result
