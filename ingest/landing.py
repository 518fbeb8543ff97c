"""Landing: copy raw files (one folder of CSV/Parquet per table) into the warehouse's `raw` schema."""

from __future__ import annotations

from pathlib import Path

from core.contract import RAW_TABLES
from core.warehouse import Connection, land_tables


def require_raw_folders(raw_dir: Path) -> None:
    """Missing source folders are an error: every mart needs every source."""
    missing = [t for t in RAW_TABLES if not (raw_dir / t).is_dir()]
    if missing:
        raise FileNotFoundError(f"{raw_dir}: missing raw table folders: {', '.join(missing)}")


def land_raw(con: Connection, raw_dir: Path) -> dict[str, int]:
    """Replace every contract table `raw.<table>` with the files in raw_dir/<table>/; rows per landed table."""
    require_raw_folders(raw_dir)
    return land_tables(con, raw_dir, "raw", RAW_TABLES)
