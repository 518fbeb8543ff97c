"""Shared fixtures: isolated settings and one small end-to-end run reused by many tests."""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import pytest

from core.config import Settings
from core.warehouse import connect
from scorehouse.pipeline import RunReport, run_all
from simulator import SimulationConfig

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# With pyspark installed, Great Expectations imports pyspark.sql.connect, which takes a __main__ module without a
# file for a doctest run and exits the process when grpc is missing. A pytest-xdist worker's __main__ has no file;
# giving it one keeps that check from firing (a command-line run's __main__ always has one).
if not hasattr(sys.modules["__main__"], "__file__") and getattr(sys.modules["__main__"], "__spec__", None) is None:
    sys.modules["__main__"].__file__ = __file__


def read(settings: Settings, function, *args, **kwargs):
    """Call function(con, *args) on a read-only connection to the settings' warehouse."""
    with connect(settings, read_only=True) as con:
        return function(con, *args, **kwargs)


def isolated_settings(root: Path) -> Settings:
    """Settings whose warehouse, raw files and artifacts all live under `root`."""
    return Settings().with_overrides(
        warehouse_path=root / "warehouse.duckdb", raw_dir=root / "raw", artifacts_dir=root / "artifacts"
    )


def new_activities(settings, folder: Path) -> Path:
    """50 activities loaded an hour after the warehouse's latest, as one Parquet file under folder/crm_activities."""
    new = folder / "crm_activities"
    new.mkdir(parents=True)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        latest = con.execute("select max(_loaded_at) from raw.crm_activities").fetchone()[0]
        con.execute(
            "copy (select * replace ('new-' || activity_id as activity_id, "
            f"timestamp '{latest}' + interval 1 hour as _loaded_at, timestamp '{latest}' as occurred_at) "
            # 50 rows staging accepted once (no rejected or re-exported rows), so each must become a touchpoint
            "from raw.crm_activities where activity_id in (select activity_id from staging.stg_crm__activities) "
            "qualify count(*) over (partition by activity_id) = 1 order by activity_id limit 50) "
            f"to '{new}/rows.parquet' (format parquet)")
    return folder


@pytest.fixture(scope="session")
def pipeline_run(tmp_path_factory) -> tuple[Settings, RunReport]:
    """The whole job on 4,000 simulated leads, built once per test session."""
    settings = isolated_settings(tmp_path_factory.mktemp("pipeline"))
    report = run_all(settings, SimulationConfig(leads=4_000, seed=11), progress=lambda _m: None)
    return settings, report
