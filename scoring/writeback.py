"""Write scores back atomically: the current table is replaced and history appended in one transaction,
together with the run's reasons, segments and drift rows."""

from __future__ import annotations

import pandas as pd

from scorehouse.config import Settings
from scorehouse.warehouse import connect
from scoring.tables import SCORE_TABLES_DDL


def _insert(con, table: str, frame: pd.DataFrame) -> None:
    columns = ", ".join(frame.columns)
    con.register("incoming", frame)
    con.execute(f"insert into scores.{table} ({columns}) select {columns} from incoming")
    con.unregister("incoming")


def write_scores(settings: Settings, current_table: str, history_table: str, scores: pd.DataFrame,
                 model_name: str | None = None, reasons: pd.DataFrame | None = None,
                 segments: pd.DataFrame | None = None, drift: pd.DataFrame | None = None) -> None:
    """Readers see either the previous run or the new one, never a mix or an empty table."""
    with connect(settings) as con:
        con.execute(SCORE_TABLES_DDL)
        con.execute("begin transaction")
        try:
            con.execute(f"delete from scores.{current_table}")
            _insert(con, current_table, scores)
            _insert(con, history_table, scores)
            if reasons is not None:
                con.execute("delete from scores.score_reasons where model_name = ?", [model_name])
                _insert(con, "score_reasons", reasons)
            if segments is not None:
                con.execute("delete from scores.lead_segments")
                _insert(con, "lead_segments", segments)
            if drift is not None and len(drift):
                _insert(con, "score_drift", drift)
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise
