"""Write scores back atomically: the current table is replaced and history appended in one transaction."""

from __future__ import annotations

import pandas as pd

from scorehouse.config import Settings
from scorehouse.warehouse import connect
from scoring.tables import SCORE_TABLES_DDL


def write_scores(settings: Settings, current_table: str, history_table: str, scores: pd.DataFrame) -> None:
    """Readers see either the previous scores or the new ones, never a mix or an empty table."""
    with connect(settings) as con:
        con.execute(SCORE_TABLES_DDL)
        con.register("new_scores", scores)
        columns = ", ".join(scores.columns)
        con.execute("begin transaction")
        try:
            con.execute(f"delete from scores.{current_table}")
            con.execute(f"insert into scores.{current_table} ({columns}) select {columns} from new_scores")
            con.execute(f"insert into scores.{history_table} ({columns}) select {columns} from new_scores")
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise
