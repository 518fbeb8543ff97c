"""The same project on Spark: the same raw files landed and built on Spark (dbt-spark in session mode, local[2]) and
on DuckDB give the same feature marts, value by value, though Spark builds them in two steps (a full build, then
an incremental one that adds an as-of week and rebuilds the weeks whose labels were pending).

Spark runs in a subprocess with its own JVM (the embedded catalog admits one at a time), so the test process never
holds a Spark session. Skipped, saying why, where pyspark, dbt-spark or Java 17 is missing
(`pip install -e '.[test]'` installs the first two).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import textwrap
from datetime import datetime

import numpy as np
import pandas as pd
import pytest

from core.warehouse import connect
from scorehouse.pipeline import build_features, land
from simulator import SimulationConfig, simulate
from tests.conftest import isolated_settings
from tests.test_incremental import BASE_THROUGH, write_increment
from tests.time_harness import share_topic_model

MARTS = {"marts.fct_lead_features": ["lead_id", "as_of_date"], "marts.fct_customer_features": ["account_id", "as_of_date"]}


def _missing() -> str | None:
    """Why the Spark path cannot run here, or None."""
    for module in ("pyspark", "dbt.adapters.spark"):
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            return f"{module} is not installed (pip install -e '.[test]')"
    if shutil.which("java") is None:
        return "no java on PATH: Spark needs Java 17"
    return None


pytestmark = [pytest.mark.slow, pytest.mark.skipif(_missing() is not None, reason=_missing() or "")]


def _on_spark(settings, base_dir, folder) -> subprocess.CompletedProcess:
    """In one process (one JVM), as `scorehouse --engine spark land` and `build` do it: land the rows loaded by
    BASE_THROUGH (base_dir), map pages to topics, build both feature marts in full with dbt-spark and record the
    watermarks; then land every row (settings' raw folder, a superset), check that it extends the first build, and
    build incrementally. Each mart is then read back through the engine's connection (the jobs' read path) into
    folder/<table>.parquet. Models only: the marts are compared value by value below, and Spark's cost per query
    makes its ~290 data tests as slow as the models."""
    script = textwrap.dedent(f"""
        from pathlib import Path
        from core.config import Settings
        from core.dbt import run_dbt
        from core.warehouse import connect
        from ingest.incremental import record_watermarks
        from scorehouse.pipeline import _prepare_build, land
        marts = ["--select", "+fct_lead_features", "+fct_customer_features"]
        full = Settings()
        base = full.with_overrides(raw_dir=Path({str(base_dir)!r}))
        land(base)
        _prepare_build(base, incremental=False)
        # the lead models only: the customer models are tables, rebuilt whole by the second build anyway
        run_dbt(base, "run", ["--select", "+fct_lead_features", "--full-refresh"], quiet=True)
        with connect(base) as con:
            record_watermarks(con, base)
        land(full)
        _prepare_build(full, incremental=True)  # checks that the landed rows extend the first build
        run_dbt(full, "run", marts, quiet=True)
        with connect(full) as con:
            for table in {list(MARTS)!r}:
                con.execute(f"select * from {{table}}").df().to_parquet({str(folder)!r} + f"/{{table}}.parquet")
    """)
    env = {**os.environ, "SCOREHOUSE_ENGINE": "spark", "SCOREHOUSE_SPARK_DIR": str(settings.spark_dir),
           "SCOREHOUSE_RAW_DIR": str(settings.raw_dir), "SCOREHOUSE_ARTIFACTS": str(settings.artifacts_dir),
           "SCOREHOUSE_WAREHOUSE": str(settings.warehouse_path)}
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=False,
                          timeout=900)


@pytest.fixture(scope="module")
def both_engines(tmp_path_factory):
    """400 simulated leads: on DuckDB landed and built in full; on Spark built in full on the rows loaded by a
    Sunday noon, then incrementally on all of them (a new as-of week, and labels observed since). The marts of
    both as pandas frames."""
    root = tmp_path_factory.mktemp("spark")
    duck = isolated_settings(root / "duckdb")
    spark = isolated_settings(root / "spark").with_overrides(raw_dir=duck.raw_dir, spark_dir=root / "spark" / "tables")
    simulate(SimulationConfig(leads=400, seed=3), duck.raw_dir)
    land(duck)
    build_features(duck)
    share_topic_model(duck, spark)  # both engines map pages with the topic model fitted on every page
    base_dir = root / "loaded_by_base"
    assert write_increment(duck.raw_dir, datetime(2000, 1, 1), BASE_THROUGH, base_dir) > 0
    exported = root / "exported"
    exported.mkdir()
    run = _on_spark(spark, base_dir, exported)
    assert run.returncode == 0, f"the Spark path failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    frames = {}
    with connect(duck, read_only=True) as con:
        for table in MARTS:
            frames[table] = (con.execute(f"select * from {table}").df(), pd.read_parquet(exported / f"{table}.parquet"))
    return frames


def _differences(duckdb_frame: pd.DataFrame, spark_frame: pd.DataFrame, key: list[str]) -> dict[str, int]:
    """Per column, how many rows differ (numbers beyond 1e-9, anything else as text; null equals only null)."""
    a = duckdb_frame.sort_values(key).reset_index(drop=True)
    b = spark_frame[list(a.columns)].sort_values(key).reset_index(drop=True)
    differing = {}
    for column in a.columns:
        x, y = a[column], b[column]
        if pd.api.types.is_numeric_dtype(x) and not pd.api.types.is_bool_dtype(x):
            same = np.isclose(pd.to_numeric(x).astype(float), pd.to_numeric(y).astype(float), rtol=1e-9, atol=1e-9,
                              equal_nan=True)
        else:
            same = (x.isna() & y.isna()) | (x.astype(str) == y.astype(str))
        if not same.all():
            differing[column] = int((~same).sum())
    return differing


@pytest.mark.parametrize("table", list(MARTS))
def test_feature_marts_built_on_spark_equal_the_duckdb_build_value_by_value(both_engines, table):
    frames = both_engines
    duckdb_frame, spark_frame = frames[table]
    assert len(duckdb_frame) > 500, f"{table}: too few rows to compare ({len(duckdb_frame)})"
    assert sorted(spark_frame.columns) == sorted(duckdb_frame.columns)
    assert len(spark_frame) == len(duckdb_frame)
    assert _differences(duckdb_frame, spark_frame, MARTS[table]) == {}


def test_the_topic_shares_come_from_page_topics_the_python_job_wrote_into_spark(both_engines):
    lead = both_engines["marts.fct_lead_features"][1]
    assert lead["content_topic_0_share"].fillna(0).gt(0).any()


def test_the_incremental_spark_build_added_weeks_and_observed_labels_the_first_build_had_pending(both_engines):
    spark_frame = both_engines["marts.fct_lead_features"][1]
    after_base = pd.to_datetime(spark_frame["as_of_date"]) > pd.Timestamp(BASE_THROUGH)
    assert after_base.sum() > 0  # weeks only the incremental build could add
    # rows built by the first build whose labels became observed with the later rows
    first_build = spark_frame[~after_base]
    window_end = pd.to_datetime(first_build["label_window_end_at"])
    assert (first_build["is_label_observed"] & (window_end > pd.Timestamp(BASE_THROUGH))).sum() > 0
