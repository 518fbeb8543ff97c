"""The Python API: one entry point for notebooks and for the HTTP service (scorehouse.service).

    from scorehouse import Scorehouse
    house = Scorehouse()                       # the published copy of the default warehouse, read-only
    house.leads().head()                       # stored lead scores: score, tier, reasons, next action
    house.score_lead("00Q000000042")           # a fresh score, from the warehouse's newest rows, as of now
    house.explain("00Q000000042")              # the stored reasons behind a lead's score
    model = house.model("lead_conversion")     # a scikit-learn classifier: model.predict_proba(mart_rows)

It reads the published warehouse (core/publish.py), never the file a run writes, and notices a newly published
run on the next call: scores, models and reasons then come from the new run. Fresh scores use the lead mart's
own SQL (scoring/online.py) and the same scoring as the batch (scoring/batch.py: score_columns).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import pandas as pd

from core.config import Settings
from core.publish import published_path
from core.warehouse import open_published, quote_identifier
from ml.dataset import latest_snapshot_sql
from ml.features import CUSTOMER_CHURN, LEAD_CONVERSION, ModelSpec
from ml.registry import BundleClassifier, ModelBundle, load_active
from scoring.batch import score_columns
from scoring.explain import explain, verified_fast_path
from scoring.online import OnlineFeatures, compile_feature_query, mart_columns

SPECS: dict[str, ModelSpec] = {LEAD_CONVERSION.name: LEAD_CONVERSION, CUSTOMER_CHURN.name: CUSTOMER_CHURN}


class NotFound(LookupError):
    """An id (lead, customer, model) the published warehouse does not hold."""


@dataclass
class FreshScore:
    """Scores computed on request: one row per lead scored, its feature row, and the reasons (long form)."""

    scores: pd.DataFrame
    features: pd.DataFrame
    reasons: pd.DataFrame


class _Generation:
    """One published run, opened read-only: the connection, and what was loaded from it (models, the mart's
    column types, the verified explanation path)."""

    def __init__(self, path: Path, catalog: str) -> None:
        self.path, self.catalog = path, catalog
        self.identity = _file_identity(path)
        self.con = open_published(path, catalog)
        # a published file never changes (a new run is a new file): its tables are listed once
        self.tables = frozenset(self.con.execute(
            "select table_schema, table_name from information_schema.tables where table_catalog = ?",
            [catalog]).fetchall())
        self.local = threading.local()
        self.bundles: dict[str, ModelBundle] = {}
        self.fast: dict[str, object] = {}
        self.lock = threading.Lock()
        self.online: OnlineFeatures | None = None

    def forget_cursor(self) -> None:
        """Close this thread's connection; the next call opens a new one."""
        cursor = getattr(self.local, "cursor", None)
        self.local.cursor = None
        if cursor is not None:
            cursor.close()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection for this thread (DuckDB connections are not shared between threads)."""
        cursor = getattr(self.local, "cursor", None)
        if cursor is None:
            cursor = self.local.cursor = self.con.cursor()
            cursor.execute(f"use {quote_identifier(self.catalog)}")
        return cursor


def _file_identity(path: Path) -> tuple[int, int, int]:
    stat = os.stat(path)
    return stat.st_ino, stat.st_size, stat.st_mtime_ns


class Scorehouse:
    """Read-only access to a published warehouse: stored scores, fresh scores, reasons and models.

    `warehouse`: a DuckDB file to read; by default the published copy of the configured warehouse
    (`warehouse/published/scorehouse.duckdb`, or beside SCOREHOUSE_WAREHOUSE)."""

    def __init__(self, warehouse: str | Path | None = None, settings: Settings | None = None) -> None:
        self.settings = settings or Settings()
        if self.settings.engine != "duckdb":
            raise ValueError("the Python API and the service read a published DuckDB warehouse; on Spark, query "
                             "the score tables through Spark")
        self.path = Path(warehouse) if warehouse else published_path(self.settings)
        if not self.path.exists():
            raise FileNotFoundError(f"no published warehouse at {self.path}: run `scorehouse run` first")
        self._lock = threading.Lock()
        self._generation = _Generation(self.path, self.settings.warehouse_path.stem)
        self._retired: _Generation | None = None
        self._query = None

    # -- the published run -------------------------------------------------------------------------------------
    def _current(self) -> _Generation:
        """The published run, reopened when a newer one has replaced the file (a rename: new inode)."""
        generation = self._generation
        try:
            changed = _file_identity(self.path) != generation.identity
        except FileNotFoundError:
            changed = False  # between a publish's steps there is always a file; keep reading the open one
        if changed:
            with self._lock:
                if self._generation is generation:
                    if self._retired is not None:  # two runs back: no request is still reading it
                        self._retired.con.close()
                    self._retired, self._generation = generation, _Generation(self.path, generation.catalog)
        return self._generation

    def _bundle(self, generation: _Generation, name: str) -> ModelBundle:
        if name not in SPECS:
            raise NotFound(f"no model named {name!r}; models: {', '.join(SPECS)}")
        with generation.lock:
            if name not in generation.bundles:
                try:
                    generation.bundles[name] = load_active(generation.cursor(), name)
                except LookupError as error:
                    raise NotFound(str(error)) from error
            return generation.bundles[name]

    def _online(self, generation: _Generation) -> OnlineFeatures:
        with generation.lock:
            if generation.online is None:
                if self._query is None:
                    self._query = compile_feature_query(self.settings)
                generation.online = OnlineFeatures(self._query, mart_columns(generation.cursor()))
            return generation.online

    def _fast_path(self, generation: _Generation, spec: ModelSpec, bundle: ModelBundle):
        """The fast explanation path, verified once per published model on the stored snapshot's first rows."""
        with generation.lock:
            if spec.name not in generation.fast:
                sample = generation.cursor().execute(latest_snapshot_sql(spec) + " limit 500").df()
                generation.fast[spec.name] = verified_fast_path(bundle, spec, sample) if len(sample) else None
            return generation.fast[spec.name]

    def published_run(self) -> dict:
        """Which published run is being read: its id and when it was published."""
        cursor = self._reader("meta", "published_runs")
        row = cursor.execute("select run_id, published_at from meta.published_runs order by published_at desc "
                             "limit 1").fetchall() if cursor else []
        return {"published_run": row[0][0] if row else None, "published_at": row[0][1] if row else None}

    def prepare(self) -> None:
        """Load what fresh scores need (the compiled query, the lead model, its explanation path) now rather
        than on the first request."""
        generation = self._current()
        bundle = self._bundle(generation, LEAD_CONVERSION.name)
        self._online(generation)
        self._fast_path(generation, LEAD_CONVERSION, bundle)

    def _reader(self, schema: str, table: str) -> duckdb.DuckDBPyConnection | None:
        """This thread's connection to the published run, if the run has that table (None otherwise)."""
        generation = self._current()
        return generation.cursor() if (schema, table) in generation.tables else None

    # -- stored scores -----------------------------------------------------------------------------------------
    def _stored(self, spec: ModelSpec, ids: Sequence[str] | None) -> pd.DataFrame:
        cursor = self._reader("scores", spec.score_table)
        if cursor is None:
            return pd.DataFrame()
        where = f" where {spec.entity_key} in (select unnest(?))" if ids is not None else ""
        return cursor.execute(f"select * from scores.{spec.score_table}{where} order by {spec.entity_key}",
                              [list(map(str, ids))] if ids is not None else []).df()

    def leads(self, lead_ids: Sequence[str] | None = None) -> pd.DataFrame:
        """The stored lead scores of the published run (all open leads, or `lead_ids`)."""
        return self._stored(LEAD_CONVERSION, lead_ids)

    def customers(self, account_ids: Sequence[str] | None = None) -> pd.DataFrame:
        """The stored churn scores of the published run (all customers, or `account_ids`)."""
        return self._stored(CUSTOMER_CHURN, account_ids)

    def stored_score(self, model_name: str, entity_id: str) -> dict:
        """One stored score as a dict; NotFound if the published run did not score that id."""
        spec = SPECS[model_name]
        cursor = self._reader("scores", spec.score_table)
        if cursor is None:
            raise NotFound(f"no {spec.score_table} in the published run")
        result = cursor.execute(f"select * from scores.{spec.score_table} where {spec.entity_key} = ?", [entity_id])
        rows = result.fetchall()
        if not rows:
            raise NotFound(f"{spec.entity_key} {entity_id!r} has no stored score")
        return dict(zip([column[0] for column in result.description], rows[0]))

    def explain(self, entity_id: str, model_name: str = LEAD_CONVERSION.name) -> pd.DataFrame:
        """The stored reasons behind an id's score: the factors raising and lowering it, strongest first."""
        cursor = self._reader("scores", "score_reasons")
        if cursor is None:
            raise NotFound("no scores.score_reasons in the published run")
        rows = cursor.execute(
            "select direction, rank, factor, reason, contribution, model_version, as_of_date, scored_at "
            "from scores.score_reasons where model_name = ? and entity_id = ? order by direction desc, rank",
            [model_name, str(entity_id)]).df()
        if rows.empty:
            raise NotFound(f"{model_name}: {entity_id!r} has no stored reasons")
        return rows

    # -- models ------------------------------------------------------------------------------------------------
    def models(self) -> pd.DataFrame:
        """The active models with their test metrics."""
        cursor = self._reader("ml", "model_registry")
        if cursor is None:
            return pd.DataFrame()
        return cursor.execute(
            "select model_name, model_version, algorithm, trained_at, horizon_days, threshold, test_roc_auc, "
            "test_pr_auc, test_brier, baseline_test_roc_auc, test_rows, signal_found "
            "from ml.model_registry where is_active order by model_name").df()

    def model(self, name: str = LEAD_CONVERSION.name) -> BundleClassifier:
        """The active model as a scikit-learn classifier (predict_proba on a frame of mart columns)."""
        return self._bundle(self._current(), name).as_estimator()

    # -- fresh scores ------------------------------------------------------------------------------------------
    def features(self, lead_ids: Sequence[str], as_of: datetime | None = None,
                 body: Mapping[str, Sequence[Mapping[str, object]]] | None = None,
                 timeout_seconds: float | None = None) -> pd.DataFrame:
        """The leads' feature rows as of `as_of` (default: now), computed by the mart's SQL from the warehouse's
        newest rows, or from `body` (raw rows by raw table name, as in docs/source_contract.md) for the tables it
        gives. A lead not yet known, or already closed, at `as_of` has no row. TimeoutError after
        `timeout_seconds` (the query is interrupted)."""
        generation = self._current()
        online, cursor = self._online(generation), generation.cursor()
        if not timeout_seconds:
            return online.rows(cursor, lead_ids, scoring_instant(as_of), body)
        fired = threading.Event()

        def stop() -> None:
            fired.set()
            cursor.interrupt()

        timer = threading.Timer(timeout_seconds, stop)
        timer.start()
        try:
            return online.rows(cursor, lead_ids, scoring_instant(as_of), body)
        except duckdb.InterruptException as interrupted:
            raise TimeoutError(f"computing features took longer than {timeout_seconds:g} s") from interrupted
        finally:
            timer.cancel()
            timer.join()
            if fired.is_set():  # an interrupt that came as the query ended must not stop this thread's next one
                generation.forget_cursor()

    def score(self, frame: pd.DataFrame, model_name: str = LEAD_CONVERSION.name) -> FreshScore:
        """Score feature rows (mart columns) with the active model, as the batch does: probability, score, tier,
        reasons, next action (or drivers and interventions)."""
        generation = self._current()
        bundle = self._bundle(generation, model_name)
        spec = SPECS[model_name]
        if frame.empty:
            return FreshScore(pd.DataFrame(), frame, pd.DataFrame())
        rows = frame.reset_index(drop=True)
        explained = explain(bundle, spec, rows, lambda _m: None, fast=self._fast_path(generation, spec, bundle))
        scores = score_columns(bundle, spec, rows, explained)
        scores.insert(2, "as_of_at", frame[_as_of_column(frame)].to_numpy())
        return FreshScore(scores, frame, explained.reasons)

    def score_lead(self, lead_id: str, as_of: datetime | None = None,
                   body: Mapping[str, Sequence[Mapping[str, object]]] | None = None) -> FreshScore:
        """A fresh score for one lead as of `as_of` (default: now); NotFound if it has no feature row then."""
        return self.score_leads([lead_id], as_of, body)

    def score_leads(self, lead_ids: Sequence[str], as_of: datetime | None = None,
                    body: Mapping[str, Sequence[Mapping[str, object]]] | None = None,
                    timeout_seconds: float | None = None, missing_ok: bool = False) -> FreshScore:
        """Fresh scores for several leads at one instant (see score_lead); NotFound names the leads without a
        feature row then, unless `missing_ok` (they are then simply absent)."""
        as_of = scoring_instant(as_of)
        rows = self.features(lead_ids, as_of, body, timeout_seconds)
        missing = sorted(set(map(str, lead_ids)) - set(rows["lead_id"]))
        if missing and not missing_ok:
            raise NotFound(not_scorable(missing, as_of))
        return self.score(rows)

    def close(self) -> None:
        self._generation.con.close()


def not_scorable(lead_ids: Sequence[str], as_of: datetime) -> str:
    return (f"no feature row for lead {', '.join(lead_ids[:5])} as of {as_of}: not in the warehouse (or the body), "
            "not yet known then, or already closed")


def scoring_instant(as_of: datetime | None) -> datetime:
    """A naive UTC timestamp, as the warehouse stores times; default now (to the second)."""
    if as_of is None:
        return datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    if as_of.tzinfo is not None:
        as_of = as_of.astimezone(timezone.utc).replace(tzinfo=None)
    return as_of


def _as_of_column(frame: pd.DataFrame) -> str:
    return "as_of_at" if "as_of_at" in frame.columns else "as_of_date"
