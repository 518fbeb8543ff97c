"""The warehouse connection: one place that opens the engine (DuckDB with the project's limits, or Spark).

A stage (land, build preparation, train's read and write, score, gates) opens one connection here and
passes it down; helpers take the connection, not the settings, so they never open their own. Both engines answer
`execute(sql, parameters)` (with `fetchall`, `fetchone`, `df`, `fetch_df_chunk` on the result) and
`register(name, frame)`; the few statements the engines spell differently (landing files, replacing, deleting
or changing a table's rows, a table's columns, a fixed sample, a hash-chosen share of entities) are the helpers
below, which look at `is_spark(con)`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd

from core.config import Settings
from core.spark import SparkConnection, ensure_table, spark_session

Connection = duckdb.DuckDBPyConnection  # or core.spark.SparkConnection, which answers the same calls


def is_spark(con: Connection) -> bool:
    return getattr(con, "kind", "duckdb") == "spark"


@contextmanager
def connect(settings: Settings, read_only: bool = False, create: bool = True) -> Iterator[Connection]:
    """Open the warehouse file (a new one only when writing and `create`); closes it on exit so dbt and other
    processes can take the lock. On Spark: the process's session (read_only and create do not apply)."""
    if settings.engine == "spark":
        yield SparkConnection(spark_session(settings))
        return
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


def open_published(path: Path, catalog: str) -> Connection:
    """A read-only connection to a published warehouse file, for a long-lived reader (the service) that must see
    a new publish when it reopens the path. The file is attached to an in-memory database of its own: DuckDB
    hands every connection to the same path one shared database, which would keep the replaced file open and
    serve it. `catalog` names it as queries compiled against the working warehouse expect (its file's stem)."""
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"attach {quote_string(str(path))} as {quote_identifier(catalog)} (read_only)")
        con.execute(f"use {quote_identifier(catalog)}")
    except duckdb.Error as error:
        con.close()
        raise RuntimeError(f"published warehouse {path} cannot be read: {str(error).splitlines()[0]}") from error
    return con


@contextmanager
def transaction(con: Connection) -> Iterator[Connection]:
    """All statements inside commit together or not at all: readers see the state before or after, never a mix.
    Spark's built-in tables have no transactions: each statement there stands alone (a table replaced by one
    `insert overwrite` is still replaced whole)."""
    if is_spark(con):
        yield con
        return
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
    if is_spark(con):
        return con.table_exists(schema, table)
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


def quote_column(con: Connection, name: str) -> str:
    """A column name quoted for the engine (Spark reads double quotes as a string)."""
    return f"`{name.replace('`', '``')}`" if is_spark(con) else quote_identifier(name)


def query_columns(con: Connection, select_sql: str) -> list[str]:
    """The column names a query returns, without running it."""
    if is_spark(con):
        return list(con.session.sql(select_sql).columns)
    return [r[0] for r in con.execute(f"describe {select_sql}").fetchall()]


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


def files_relation(con: Connection, folder: Path, files: list[Path], view: str) -> str:
    """What to select some of a folder's files' rows from: DuckDB's file reader, or on Spark a temporary view
    `view` over them (Spark reads Parquet only, as it lands)."""
    if not is_spark(con):
        return files_sql(folder, files)
    if any(path.suffix != ".parquet" for path in files):
        raise ValueError(f"{folder}: the Spark engine reads Parquet files only; convert the CSV files to Parquet "
                         "first")
    con.session.read.parquet(*[path.as_posix() for path in files]).createOrReplaceTempView(view)
    return view


def create_table_if_missing(con: Connection, qualified_name: str, columns: list[tuple[str, str]]) -> None:
    """A table of (name, type) columns, created if it does not exist (types as the contract spells them)."""
    schema, table = qualified_name.split(".")
    if is_spark(con):
        ensure_table(con, schema, table, [(name, data_type, None) for name, data_type in columns])
        return
    con.execute(f"create table if not exists {qualified_name} "
                f"({', '.join(f'{name} {data_type}' for name, data_type in columns)})")


def replace_contents(con: Connection, qualified_name: str, select_sql: str, columns: list[str] | None = None) -> None:
    """Replace every row of an existing table with a query's rows (into `columns`, else by position), keeping the
    table's definition and comments. DuckDB deletes and inserts (call it inside `transaction` so readers never see
    the table empty); Spark overwrites in one statement."""
    into = f" ({', '.join(columns)})" if columns else ""
    if is_spark(con):
        con.execute(f"insert overwrite table {qualified_name}{into} {select_sql}")
        return
    con.execute(f"delete from {qualified_name}")
    con.execute(f"insert into {qualified_name}{into} {select_sql}")


def _overwrite_with_own_rows(con, qualified_name: str, select_sql: str, parameters: list) -> None:
    """Spark: overwrite a table with a query over itself. The rows are materialized first, so the table's files
    are not read while they are replaced."""
    rows = con.session.sql(select_sql, args=parameters) if parameters else con.session.sql(select_sql)
    rows.localCheckpoint().write.insertInto(qualified_name, overwrite=True)


def delete_rows(con: Connection, qualified_name: str, condition: str, parameters: list | None = None) -> None:
    """Delete the rows for which `condition` holds. Spark's built-in tables have no DELETE: the table is rewritten
    with the other rows (meant for the small tables the jobs keep: registry, audit, reasons)."""
    if is_spark(con):
        _overwrite_with_own_rows(con, qualified_name, f"select * from {qualified_name} "
                                 f"where not coalesce({condition}, false)", list(parameters or []))
        return
    con.execute(f"delete from {qualified_name} where {condition}", list(parameters or []))


def update_rows(con: Connection, qualified_name: str, column: str, value_sql: str, condition: str,
                parameters: list | None = None) -> None:
    """Set `column` to `value_sql` (an expression without parameters) where `condition` holds. Spark's built-in
    tables have no UPDATE: the table is rewritten with the column changed on those rows."""
    parameters = list(parameters or [])
    if not is_spark(con):
        con.execute(f"update {qualified_name} set {column} = {value_sql} where {condition}", parameters)
        return
    names = con.columns(*qualified_name.split("."))
    select = ", ".join(f"case when coalesce({condition}, false) then {value_sql} else {name} end as {name}"
                       if name.lower() == column.lower() else name for name in names)
    _overwrite_with_own_rows(con, qualified_name, f"select {select} from {qualified_name}", parameters)


def table_columns(con: Connection, schema: str, table: str) -> list[str]:
    """The table's column names in order (empty if it does not exist)."""
    if is_spark(con):
        return con.columns(schema, table) if con.table_exists(schema, table) else []
    return list(column_types(con, schema, table))


def column_types(con: Connection, schema: str, table: str) -> dict[str, str]:
    """DuckDB only: the table's column names and types (as information_schema spells them, e.g. VARCHAR), in
    order; empty if it does not exist."""
    return dict(con.execute(
        "select column_name, data_type from information_schema.columns where table_schema = ? and table_name = ? "
        "order by ordinal_position", [schema, table]).fetchall())


def entity_share_condition(con: Connection, column: str, share: float) -> str:
    """A condition true for a fixed share of the values of `column`, chosen by hash (each engine hashes its own
    way, so the two engines choose different entities; either way every row of a chosen entity is in)."""
    bucket = f"pmod(xxhash64({column}), 1000000)" if is_spark(con) else f"hash({column}) % 1000000"
    return f"{bucket} < {int(share * 1_000_000)}"


def fixed_sample_sql(con: Connection, select_sql: str, rows: int, order_sql: str) -> str:
    """`select_sql` (no order or limit) cut to a sample of at most `rows` rows that is the same on every run.
    DuckDB samples with a fixed seed; Spark's TABLESAMPLE of rows is a plain limit, so there the rows with the
    lowest hash of `order_sql` are taken."""
    if is_spark(con):
        return f"{select_sql} order by xxhash64({order_sql}) limit {int(rows)}"
    return f"{select_sql} using sample reservoir({int(rows)} rows) repeatable (7)"


def write_frame(con: Connection, qualified_name: str, frame: pd.DataFrame) -> None:
    """Replace `qualified_name` with a pandas frame, its column types from the frame's dtypes."""
    schema = qualified_name.split(".")[0]
    con.register("_frame_to_write", frame)
    if is_spark(con):
        con.execute(f"create database if not exists {schema}")
        con.session.table("_frame_to_write").write.mode("overwrite").format("parquet").saveAsTable(qualified_name)
    else:
        con.execute(f"create schema if not exists {schema}")
        con.execute(f"create or replace table {qualified_name} as select * from _frame_to_write")
    con.unregister("_frame_to_write")


def land_tables(con: Connection, folder: Path, schema: str, tables: tuple[str, ...]) -> dict[str, int]:
    """Replace `<schema>.<table>` with the files in folder/<table>/ for each table; rows per table."""
    if is_spark(con):
        return _land_tables_on_spark(con, folder, schema, tables)
    con.execute(f"create schema if not exists {schema}")
    rows: dict[str, int] = {}
    for table in tables:
        con.execute(f"create or replace table {schema}.{table} as select * from {files_sql(folder / table)}")
        rows[f"{schema}.{table}"] = row_count(con, f"{schema}.{table}")
    return rows


def _land_tables_on_spark(con, folder: Path, schema: str, tables: tuple[str, ...]) -> dict[str, int]:
    """Spark reads the files itself (in parallel, on its executors); CSV headers and types as DuckDB reads them
    would differ, so Spark lands Parquet only."""
    con.execute(f"create database if not exists {schema}")
    rows: dict[str, int] = {}
    for table in tables:
        files = sorted((folder / table).glob("*.parquet"))
        if not files:
            raise FileNotFoundError(f"{folder / table}: the Spark engine lands Parquet files only; convert the "
                                    "CSV files to Parquet first, or land them on the DuckDB engine")
        frame = con.session.read.parquet(*[p.as_posix() for p in files])
        frame.write.mode("overwrite").format("parquet").saveAsTable(f"{schema}.{table}")
        rows[f"{schema}.{table}"] = row_count(con, f"{schema}.{table}")
    return rows
