"""The warehouse connection: one place that opens DuckDB with the project's limits."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import duckdb

from scorehouse.config import Settings


@contextmanager
def connect(settings: Settings, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse file; closes it on exit so dbt and other processes can take the lock."""
    if read_only and not settings.warehouse_path.exists():
        raise FileNotFoundError(
            f"warehouse {settings.warehouse_path} does not exist yet: run `scorehouse run` (or `scorehouse build`) first"
        )
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(
        str(settings.warehouse_path),
        read_only=read_only,
        config={"memory_limit": settings.duckdb_memory_limit, "threads": settings.duckdb_threads},
    )
    try:
        yield con
    finally:
        con.close()


def table_exists(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    rows = con.execute(
        "select 1 from information_schema.tables where table_schema = ? and table_name = ?", [schema, table]
    ).fetchall()
    return bool(rows)


def row_count(con: duckdb.DuckDBPyConnection, qualified_name: str) -> int:
    return int(con.execute(f"select count(*) from {qualified_name}").fetchall()[0][0])
