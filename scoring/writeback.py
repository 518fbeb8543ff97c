"""Write scores back atomically: the current table is replaced and history appended in one transaction,
together with the run's reasons, segments and drift rows."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from core.warehouse import Connection, delete_rows, replace_contents, transaction
from ml.features import ModelSpec
from scoring.tables import ensure_score_tables


@dataclass
class ScoringRun:
    """One scoring run of one model: what goes into the score tables."""

    scores: pd.DataFrame
    reasons: pd.DataFrame | None = None
    segments: pd.DataFrame | None = None
    drift: pd.DataFrame | None = None


def _insert(con: Connection, table: str, frame: pd.DataFrame) -> None:
    columns = ", ".join(frame.columns)
    con.register("incoming", frame)
    con.execute(f"insert into scores.{table} ({columns}) select {columns} from incoming")
    con.unregister("incoming")


def _replace(con: Connection, table: str, frame: pd.DataFrame) -> None:
    con.register("incoming", frame)
    replace_contents(con, f"scores.{table}", f"select {', '.join(frame.columns)} from incoming", list(frame.columns))
    con.unregister("incoming")


def write_scores(con: Connection, spec: ModelSpec, run: ScoringRun) -> None:
    """On DuckDB, readers see either the previous run or the new one, never a mix or an empty table (one
    transaction). Spark has no transactions: each current table is replaced by one `insert overwrite`, history is
    appended after it, and the run's other tables follow one by one."""
    ensure_score_tables(con)
    with transaction(con):
        _replace(con, spec.score_table, run.scores)
        _insert(con, spec.history_table, run.scores)
        if run.reasons is not None:
            delete_rows(con, "scores.score_reasons", "model_name = ?", [spec.name])
            _insert(con, "score_reasons", run.reasons)
        if run.segments is not None:
            _replace(con, "lead_segments", run.segments)
        if run.drift is not None and len(run.drift):
            _insert(con, "score_drift", run.drift)
