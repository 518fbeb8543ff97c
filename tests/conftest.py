"""Shared fixtures: isolated settings and one small end-to-end run reused by many tests."""

from __future__ import annotations

import fcntl
import os
import pickle
import shutil
import sys
from collections.abc import Callable
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


# The modules that take longest, longest first (measured on a 2-core machine, minutes: Spark 6.5, incremental 5.4,
# time semantics and real exports 3.6 each, ...). pytest-xdist hands each worker the next module when it is free;
# by default it orders them by how many tests they hold, which started the Spark module last and left one worker
# running it alone for the last minutes. Longest first, the last modules to start are short ones
# (--no-loadscope-reorder in pyproject.toml keeps this order).
SLOWEST_MODULES_FIRST = (
    "test_spark.py", "test_incremental.py", "test_time_semantics.py", "test_real_exports.py",
    "test_model_selection.py", "test_explanations_and_routing.py", "test_publishing.py", "test_leakage.py",
    "test_dbt_native.py", "test_gates_and_real_data.py", "test_end_to_end.py", "test_service.py",
    "test_hostile_input.py", "test_time_steps.py",
)


def pytest_collection_modifyitems(config, items):
    rank = {name: k for k, name in enumerate(SLOWEST_MODULES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest keep their order


def pytest_xdist_auto_num_workers(config):
    """One worker more than cores, up to four: a worker waiting on Spark's JVM or on single-threaded Python leaves
    its core to another (on 2 cores, in xdist's own order, 3 workers ran the suite in 15 min 25 s, 2 in 16 min
    44 s)."""
    return min(4, (os.cpu_count() or 1) + 1)


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


def built_once_per_run(tmp_path_factory, name: str, build: Callable[[Path], object]) -> tuple[Path, object]:
    """(folder, result) of build(folder), run once per test run: under pytest-xdist the first worker to ask builds
    in a folder every worker of the run shares while the others wait on a lock, then read its pickled result.
    Callers copy the folder before touching it, so each worker keeps a warehouse of its own."""
    if os.environ.get("PYTEST_XDIST_WORKER") is None:  # one process: nothing to share
        folder = tmp_path_factory.mktemp(name)
        return folder, build(folder)
    shared = tmp_path_factory.getbasetemp().parent / f"shared-{name}"  # the run's folder, above each worker's
    shared.mkdir(exist_ok=True)
    result_file = shared / "result.pickle"
    with open(shared.parent / f"shared-{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # held while building: the others wait here, then find the result
        if not result_file.exists():
            folder = shared / "build"
            shutil.rmtree(folder, ignore_errors=True)  # a worker that failed to build left it half done
            folder.mkdir()
            result = build(folder)
            result_file.write_bytes(pickle.dumps(result))
    return shared / "build", pickle.loads(result_file.read_bytes())


def copy_of_built_run(source: Path, destination: Path) -> Settings:
    """A worker's own copy of a built run, its registry pointing at the copied model artifacts."""
    shutil.copytree(source, destination, dirs_exist_ok=True)
    settings = isolated_settings(destination)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("update ml.model_registry set artifact_path = replace(artifact_path, $old, $new), "
                    "report_path = replace(report_path, $old, $new)", {"old": str(source), "new": str(destination)})
    return settings


@pytest.fixture(scope="session")
def pipeline_run(tmp_path_factory) -> tuple[Settings, RunReport]:
    """The whole job on 4,000 simulated leads, built once per test run and copied for each worker."""
    source, report = built_once_per_run(tmp_path_factory, "pipeline", lambda folder: run_all(
        isolated_settings(folder), SimulationConfig(leads=4_000, seed=11), progress=lambda _m: None))
    return copy_of_built_run(source, tmp_path_factory.mktemp("pipeline")), report
