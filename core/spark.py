"""Spark as the warehouse: a connection with the few methods the jobs use on a DuckDB connection.

`execute(sql, parameters)` returns a result with `fetchall`, `fetchone` and `df`; `register(name, frame)` makes a
pandas frame a temporary view. The session is the one dbt-spark's `session` method uses in the same process,
built from the `spark` target's `server_side_parameters` in profiles.yml (the one place Spark's settings live),
so the tables dbt builds and the tables Python writes share one catalog. pyspark is imported only here and only
when the Spark engine is chosen.
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from functools import cache
from pathlib import Path

import pandas as pd
import yaml

from core.config import Settings

# Spark's spelling of the contract's column types (DuckDB's names); the others are the same on both.
SPARK_TYPES = {"varchar": "string", "text": "string"}


def spark_type(data_type: str) -> str:
    return SPARK_TYPES.get(data_type.lower(), data_type)


def _render(value: object, environment: dict[str, str]) -> str:
    """A profile value with its `env_var('NAME', 'default')` calls filled in, as dbt renders it."""
    import jinja2

    def env_var(name: str, default: str | None = None) -> str:
        if name in environment:
            return environment[name]
        if default is None:
            raise KeyError(f"profiles.yml: environment variable {name} is not set and has no default")
        return default

    return jinja2.Environment().from_string(str(value)).render(env_var=env_var)


def spark_conf(settings: Settings) -> dict[str, str]:
    """The Spark settings of profiles.yml's `spark` target, rendered with this job's environment."""
    profile = yaml.safe_load((settings.dbt_profiles_dir / "profiles.yml").read_text(encoding="utf-8"))
    target = profile["scorehouse"]["outputs"]["spark"]
    environment = {**os.environ, **settings.dbt_env()}
    conf = {key: _render(value, environment) for key, value in target.get("server_side_parameters", {}).items()}
    conf["spark.sql.ansi.enabled"] = "false"  # as dbt-spark sets it, so both see the same semantics
    return conf


@cache
def _session(conf_items: tuple[tuple[str, str], ...]):
    try:
        from pyspark.sql import SparkSession
    except ImportError as error:
        raise RuntimeError("the Spark engine needs pyspark and dbt-spark: pip install -e '.[spark]' "
                           "(and Java 17)") from error
    # pyspark 4.3 warns that it is not yet tested with pandas 3; the engine tests compare every value it moves
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    # Scoring runs Python on the executors; locally, with this interpreter (the one with the project installed).
    # pyspark reads the interpreter from the environment only.
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    # ... and the executors' Python, started with this environment, filters the same warning as the line above
    os.environ.setdefault("PYTHONWARNINGS", "ignore:PySpark does not yet fully support pandas:FutureWarning")
    builder = SparkSession.builder.enableHiveSupport()
    for key, value in conf_items:
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    # A failed statement reaches the caller as its exception; Spark would also log it, trace and all
    session.sparkContext.setLogLevel("FATAL")
    from pyspark.logger import PySparkLogger

    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        PySparkLogger.getLogger(name).setLevel(logging.CRITICAL)
    return session


def spark_session(settings: Settings):
    """The process's Spark session with the profile's settings (created on first use, then shared with dbt)."""
    Path(settings.spark_dir).mkdir(parents=True, exist_ok=True)
    return _session(tuple(sorted(spark_conf(settings).items())))


def split_statements(script: str) -> list[str]:
    """A script's statements (Spark runs one at a time), split at semicolons outside quotes (a quote may hold
    backslash-escaped quotes)."""
    statements, current, quote, escaped = [], [], None, False
    for char in script:
        if quote:
            current.append(char)
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == quote:
                quote = None
        elif char in "'\"`":
            quote = char
            current.append(char)
        elif char == ";":
            statements.append("".join(current))
            current = []
        else:
            current.append(char)
    statements.append("".join(current))
    return [s.strip() for s in statements if s.strip()]


class SparkResult:
    def __init__(self, frame) -> None:
        self._frame = frame
        self._rows: list[tuple] | None = None
        self._fetched = False

    def fetchall(self) -> list[tuple]:
        if self._rows is None:
            self._rows = [] if self._frame is None else [tuple(row) for row in self._frame.collect()]
        return self._rows

    def fetchone(self) -> tuple | None:
        rows = self.fetchall()
        return rows[0] if rows else None

    def df(self) -> pd.DataFrame:
        """The result as pandas, typed as DuckDB's results are (dates as datetime64, not Python date objects)."""
        if self._frame is None:
            return pd.DataFrame()
        frame = self._frame.toPandas()
        for field in self._frame.schema.fields:
            if field.dataType.typeName() == "date":
                frame[field.name] = frame[field.name].astype("datetime64[us]")
        return frame

    def fetch_df_chunk(self, _vectors: int = 1) -> pd.DataFrame:
        """The whole result (through Arrow) on the first call, then an empty frame: Spark collects a result to the
        driver in one piece, so a read that must stay bounded bounds its rows in SQL."""
        if self._fetched:
            return pd.DataFrame()
        self._fetched = True
        return self.df()


class SparkConnection:
    """The warehouse on Spark, answering the calls the jobs make on a DuckDB connection."""

    kind = "spark"

    def __init__(self, session) -> None:
        self.session = session

    def execute(self, sql: str, parameters: list | tuple | None = None) -> SparkResult:
        frame = None
        for statement in split_statements(sql):
            frame = self.session.sql(statement, args=list(parameters)) if parameters else self.session.sql(statement)
        return SparkResult(frame)

    def register(self, name: str, frame: pd.DataFrame) -> None:
        """A pandas frame as a temporary view `name`, its columns typed from the frame's dtypes (an all-null text
        column stays text, where Spark's inference would fail)."""
        import pyarrow as pa

        table = pa.Table.from_pandas(frame, preserve_index=False)
        table = table.cast(pa.schema([
            pa.field(f.name, pa.string()) if pa.types.is_null(f.type) else f for f in table.schema]))
        self.session.createDataFrame(table).createOrReplaceTempView(name)

    def unregister(self, name: str) -> None:
        self.session.catalog.dropTempView(name)

    def table_exists(self, schema: str, table: str) -> bool:
        return bool(self.session.catalog.tableExists(f"{schema}.{table}"))

    def columns(self, schema: str, table: str) -> list[str]:
        return list(self.session.table(f"{schema}.{table}").columns)

    def close(self) -> None:
        """Nothing to close: the session lives as long as the process, and dbt in this process uses it too."""


def spark_literal(text: str) -> str:
    """A Spark SQL string literal holding `text` exactly (Spark escapes with a backslash)."""
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def ensure_table(con: SparkConnection, schema: str, name: str, columns: list[tuple[str, str, str | None]],
                 comment: str | None = None) -> None:
    """Create `schema.name` (Parquet) with the columns (name, contract type, comment) if it is missing, and add the
    columns an older table lacks. Spark's built-in tables take no not-null constraints: those stay dbt tests."""
    def column(entry: tuple[str, str, str | None]) -> str:
        column_name, data_type, text = entry
        return f"`{column_name}` {spark_type(data_type)}" + (f" comment {spark_literal(text)}" if text else "")

    con.execute(f"create database if not exists {schema}")
    if not con.table_exists(schema, name):
        con.execute(f"create table {schema}.{name} ({', '.join(column(c) for c in columns)}) using parquet"
                    + (f" comment {spark_literal(comment)}" if comment else ""))
        return
    present = {c.lower() for c in con.columns(schema, name)}
    missing = [c for c in columns if c[0].lower() not in present]
    if missing:
        con.execute(f"alter table {schema}.{name} add columns ({', '.join(column(c) for c in missing)})")
