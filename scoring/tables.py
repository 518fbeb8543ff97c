"""The score tables: defined once in dbt_project/models/outputs/_outputs__sources.yml (see core/outputs.py), so
dbt can build reports over them before the first scoring run."""

from __future__ import annotations

from core.outputs import ensure_outputs
from core.warehouse import Connection


def ensure_score_tables(con: Connection) -> None:
    ensure_outputs(con, "scores")
