"""The warehouse connection: one place that opens DuckDB with the project's limits.

A stage (land, build preparation, train's read and write, score, gates) opens one connection here and
passes it down; helpers take the connection, not the settings, so they never open their own.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from core.config import Settings

Connection = duckdb.DuckDBPyConnection


@contextmanager
def connect(settings: Settings, read_only: bool = False, create: bool = True) -> Iterator[Connection]:
    """Open the warehouse file (a new one only when writing and `create`); closes it on exit so dbt and other
    processes can take the lock."""
    if (read_only or not create) and not settings.warehouse_path.exists():
        raise FileNotFoundError(
            f"warehouse {settings.warehouse_path} does not exist yet: run `scorehouse run` (or `scorehouse build`) first"
        )
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(
            str(settings.warehouse_path),
            read_only=read_only,
            config={"memory_limit": settings.duckdb_memory_limit, "threads": settings.duckdb_threads},
        )
    except duckdb.IOException as error:  # locked by another writer, or a file this user may not write
        reason = str(error).splitlines()[0]
        raise RuntimeError(f"warehouse {settings.warehouse_path} cannot be opened "
                           f"{'for reading' if read_only else 'for writing'}: {reason}") from error
    try:
        yield con
    finally:
        con.close()


@contextmanager
def transaction(con: Connection) -> Iterator[Connection]:
    """All statements inside commit together or not at all: readers see the state before or after, never a mix."""
    con.execute("begin transaction")
    try:
        yield con
    except BaseException:
        try:
            con.execute("rollback")
        except duckdb.Error:
            pass  # the failure already ended the transaction; the original error is the one to report
        raise
    con.execute("commit")


def table_exists(con: Connection, schema: str, table: str) -> bool:
    rows = con.execute(
        "select 1 from information_schema.tables where table_schema = ? and table_name = ?", [schema, table]
    ).fetchall()
    return bool(rows)


def quote_string(text: str) -> str:
    """A SQL string literal holding `text` exactly (for the few places a value cannot be a query parameter)."""
    return "'" + text.replace("'", "''") + "'"


def quote_identifier(name: str) -> str:
    """A SQL identifier naming `name` exactly, whatever characters a file's header gave it."""
    return '"' + name.replace('"', '""') + '"'


def row_count(con: Connection, qualified_name: str) -> int:
    return int(con.execute(f"select count(*) from {qualified_name}").fetchall()[0][0])


def files_sql(folder: Path, files: list[Path] | None = None) -> str:
    """A table function reading every Parquet (else CSV) file in `folder`, or only the given ones of them."""
    parquet, csv = sorted(folder.glob("*.parquet")), sorted(folder.glob("*.csv"))
    chosen = parquet or csv
    if not chosen:
        raise FileNotFoundError(f"{folder}: no .parquet or .csv files to land")
    paths = "[" + ", ".join(quote_string(p.as_posix()) for p in (files if files is not None else chosen)) + "]"
    return f"read_parquet({paths})" if parquet else f"read_csv({paths}, header = true)"


def land_tables(con: Connection, folder: Path, schema: str, tables: tuple[str, ...]) -> dict[str, int]:
    """Replace `<schema>.<table>` with the files in folder/<table>/ for each table; rows per table."""
    con.execute(f"create schema if not exists {schema}")
    rows: dict[str, int] = {}
    for table in tables:
        con.execute(f"create or replace table {schema}.{table} as select * from {files_sql(folder / table)}")
        rows[f"{schema}.{table}"] = row_count(con, f"{schema}.{table}")
    return rows
