"""Landing: copy raw files (one folder of CSV/Parquet per table) into the warehouse's `raw` schema, and make
sure every contract table exists, so a team can start from any subset of its sources."""

from __future__ import annotations

from pathlib import Path

from core.contract import BY_NAME, RAW_TABLES
from core.warehouse import Connection, land_tables
from ingest.loader import ensure_raw_table


def present_raw_folders(raw_dir: Path) -> tuple[str, ...]:
    """The contract tables that have a folder in raw_dir; none at all is an error."""
    present = tuple(t for t in RAW_TABLES if (raw_dir / t).is_dir())
    if not present:
        raise FileNotFoundError(f"{raw_dir}: no raw table folders (one folder per table: {', '.join(RAW_TABLES)})")
    return present


def ensure_raw_tables(con: Connection) -> None:
    """Every contract table exists: a source a team does not have is an empty table with the contract's columns,
    and the features it feeds are null or zero."""
    for name in RAW_TABLES:
        ensure_raw_table(con, BY_NAME[name])


def land_raw(con: Connection, raw_dir: Path) -> dict[str, int]:
    """Replace `raw.<table>` with the files in raw_dir/<table>/ for each table that has a folder; the others are
    created empty if they do not exist. Rows per landed table."""
    rows = land_tables(con, raw_dir, "raw", present_raw_folders(raw_dir))
    ensure_raw_tables(con)
    return rows
