"""Raw files cut by load time: the rows a warehouse would have received in a window, for incremental runs of the
benchmark and the tests."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb

from core.contract import RAW_TABLES


def write_rows_loaded(raw_dir: Path, after: datetime | None, through: datetime, destination: Path) -> int:
    """The raw rows loaded in (after, through] (from the start when `after` is None), as one Parquet file per table
    under destination/<table>/; returns the row count."""
    total = 0
    with duckdb.connect() as con:
        for table in RAW_TABLES:
            (destination / table).mkdir(parents=True, exist_ok=True)
            query = (f"select * from read_parquet('{raw_dir}/{table}/*.parquet') where _loaded_at <= '{through}'"
                     + (f" and _loaded_at > '{after}'" if after else ""))
            # COPY answers with the number of rows it wrote: no second scan to count them
            total += con.execute(f"copy ({query}) to '{destination}/{table}/rows.parquet' (format parquet)").fetchone()[0]
    return total
