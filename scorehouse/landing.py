"""Landing: copy raw files (one folder of CSV/Parquet per table) into the warehouse's `raw` schema."""

from __future__ import annotations

from pathlib import Path

from scorehouse.config import Settings
from scorehouse.simulate import RAW_TABLES, TRUTH_TABLES
from scorehouse.warehouse import connect

TRUTH_SCHEMA = "sim_truth"


def _files_sql(folder: Path) -> str:
    parquet = sorted(folder.glob("*.parquet"))
    if parquet:
        return f"read_parquet('{folder.as_posix()}/*.parquet')"
    if sorted(folder.glob("*.csv")):
        return f"read_csv('{folder.as_posix()}/*.csv', header = true)"
    raise FileNotFoundError(f"{folder}: no .parquet or .csv files to land")


def land_raw(settings: Settings, raw_dir: Path) -> dict[str, int]:
    """Replace `raw.<table>` with the files in raw_dir/<table>/ (and the simulator's truth, if present).

    Returns rows per landed table. Missing source folders are an error: every mart needs every source.
    """
    missing = [t for t in RAW_TABLES if not (raw_dir / t).is_dir()]
    if missing:
        raise FileNotFoundError(f"{raw_dir}: missing raw table folders: {', '.join(missing)}")
    rows: dict[str, int] = {}
    with connect(settings) as con:
        con.execute("create schema if not exists raw")
        for table in RAW_TABLES:
            con.execute(f"create or replace table raw.{table} as select * from {_files_sql(raw_dir / table)}")
            rows[f"raw.{table}"] = int(con.execute(f"select count(*) from raw.{table}").fetchall()[0][0])
        truth_dir = raw_dir / "_truth"
        if truth_dir.is_dir():
            con.execute(f"create schema if not exists {TRUTH_SCHEMA}")
            for table in TRUTH_TABLES:
                con.execute(
                    f"create or replace table {TRUTH_SCHEMA}.{table} as select * from {_files_sql(truth_dir / table)}"
                )
                rows[f"{TRUTH_SCHEMA}.{table}"] = int(
                    con.execute(f"select count(*) from {TRUTH_SCHEMA}.{table}").fetchall()[0][0]
                )
    return rows
