"""The same project on Spark: the same raw files landed and built on Spark (dbt-spark in session mode, local[2]) and
on DuckDB give the same feature marts, value by value, though Spark builds them in two steps (a full build, then,
with the later rows appended as a refresh appends them, an incremental one that adds an as-of week and rebuilds
the weeks whose labels were pending). The first Spark
build, made before the later rows arrived, passes the time-correctness invariance check against the second. Then
the lead model is trained, scored (on the executors) and reported on Spark, and its scores equal the same fitted
model's scores of the DuckDB build's snapshot.

Spark runs in a subprocess with its own JVM (the embedded catalog admits one at a time), so the test process never
holds a Spark session. Skipped, saying why, where pyspark, dbt-spark or Java 17 is missing
(`pip install -e '.[test]'` installs the first two).
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from datetime import datetime

import joblib
import numpy as np
import pandas as pd
import pytest

from core.warehouse import connect
from ml.dataset import load_latest_snapshot
from ml.features import LEAD_CONVERSION
from ml.scores import to_score, to_tier
from scorehouse.pipeline import build_features, land
from scoring.explain import explain
from simulator import SimulationConfig, simulate
from simulator.files import write_rows_loaded
from tests.conftest import isolated_settings
from tests.test_incremental import BASE_THROUGH
from tests.time_harness import frame_invariance_violations, share_topic_model

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


EXPORTED = [*MARTS, "scores.lead_scores", "scores.score_reasons", "ml.model_registry", "ml.model_metrics",
            "marts.rpt_lead_worklist"]


def _on_spark(settings, base_dir, increment_dir, folder) -> subprocess.CompletedProcess:
    """In one process (one JVM), as `scorehouse --engine spark land`, `build`, `train` and `score` do it:
    1. land the rows loaded by BASE_THROUGH (base_dir), map pages to topics, build the lead mart in full with
       dbt-spark, record the watermarks, and keep the mart's rows up to its high-water mark (before_cut.parquet);
    2. append the rows loaded since (increment_dir), as `scorehouse refresh` does, check that they extend the
       first build, build every model but the reports incrementally (both marts among them);
    3. train the lead model, score it, gate the score tables and build the reports on them.
    Each table in EXPORTED is then read back through the engine's connection (the jobs' read path) into
    folder/<table>.parquet. Models only, no dbt data tests: the marts are compared value by value below, and
    Spark's cost per query makes its ~290 data tests as slow as the models."""
    script = textwrap.dedent(f"""
        import json
        from pathlib import Path
        from core.config import Settings
        from core.dbt import run_dbt
        from core.warehouse import connect
        from expectations.gates import run_gates
        from ingest.incremental import record_watermarks
        from ml.features import LEAD_CONVERSION
        from ml.train import train_model
        from scorehouse.pipeline import AFTER_SCORING, _append, _prepare_build, land
        from scoring.batch import score_model
        out = Path({str(folder)!r})
        full = Settings()
        base = full.with_overrides(raw_dir=Path({str(base_dir)!r}))
        land(base)
        # one step on Spark, however many leads (time steps bound DuckDB's memory; Spark spills to disk)
        assert _prepare_build(base.with_overrides(build_chunk_leads=50), incremental=False) == []
        # the lead models only: the customer models are tables, rebuilt whole by the second build anyway
        run_dbt(base, "run", ["--select", "+fct_lead_features", "--full-refresh"], quiet=True)
        with connect(base) as con:
            record_watermarks(con, base)
            through = con.execute("select lead_observed_through from intermediate.int_lead_observed_through").fetchone()[0]
            con.execute("select * from marts.fct_lead_features where as_of_at <= ?", [through]).df().to_parquet(
                out / "before_cut.parquet")
        (out / "through.json").write_text(json.dumps(str(through)))
        _append(full, Path({str(increment_dir)!r}))  # as `scorehouse refresh` appends the rows loaded since
        _prepare_build(full, incremental=True)  # checks that the appended rows extend the first build
        run_dbt(full, "seed", [], quiet=True)  # the reference tables the reports join
        run_dbt(full, "run", ["--exclude", *AFTER_SCORING], quiet=True)  # every model but those on scores
        train_model(full, LEAD_CONVERSION)
        score_model(full, LEAD_CONVERSION)
        run_gates(full, "scores")
        run_dbt(full, "run", ["--select", *AFTER_SCORING], quiet=True)
        with connect(full) as con:
            for table in {EXPORTED!r}:
                con.execute(f"select * from {{table}}").df().to_parquet(out / f"{{table}}.parquet")
        (out / "finished").touch()
    """)
    # a file, not `python -c`: Great Expectations imports pyspark.sql.connect, which ends a process whose __main__
    # has no file (quietly, with status 0) when grpc is missing
    path = folder / "on_spark.py"
    path.write_text(script, encoding="utf-8")
    env = {**os.environ, "SCOREHOUSE_ENGINE": "spark", "SCOREHOUSE_SPARK_DIR": str(settings.spark_dir),
           "SCOREHOUSE_RAW_DIR": str(settings.raw_dir), "SCOREHOUSE_ARTIFACTS": str(settings.artifacts_dir),
           "SCOREHOUSE_WAREHOUSE": str(settings.warehouse_path)}
    return subprocess.run([sys.executable, str(path)], env=env, capture_output=True, text=True, check=False,
                          timeout=900)


@dataclass
class BothEngines:
    duckdb: object  # the DuckDB build's Settings
    duckdb_marts: dict[str, pd.DataFrame]
    spark: dict[str, pd.DataFrame]  # every table in EXPORTED, and the first build's rows (before_cut)
    through: datetime  # the first Spark build's high-water mark


@pytest.fixture(scope="module")
def both_engines(tmp_path_factory) -> BothEngines:
    """400 simulated leads: on DuckDB landed and built in full; on Spark built in full on the rows loaded by a
    Sunday noon, then incrementally with the later rows appended (a new as-of week, and labels observed since),
    then trained, scored and reported."""
    root = tmp_path_factory.mktemp("spark")
    duck = isolated_settings(root / "duckdb")
    spark = isolated_settings(root / "spark").with_overrides(raw_dir=duck.raw_dir, spark_dir=root / "spark" / "tables")
    simulate(SimulationConfig(leads=400, seed=3), duck.raw_dir)
    land(duck)
    build_features(duck)
    share_topic_model(duck, spark)  # both engines map pages with the topic model fitted on every page
    base_dir = root / "loaded_by_base"
    assert write_rows_loaded(duck.raw_dir, datetime(2000, 1, 1), BASE_THROUGH, base_dir) > 0
    exported = root / "exported"
    exported.mkdir()
    increment_dir = root / "loaded_since"
    assert write_rows_loaded(duck.raw_dir, BASE_THROUGH, datetime(2100, 1, 1), increment_dir) > 0
    run = _on_spark(spark, base_dir, increment_dir, exported)
    assert run.returncode == 0 and (exported / "finished").exists(), \
        f"the Spark path failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    with connect(duck, read_only=True) as con:
        duckdb_marts = {table: con.execute(f"select * from {table}").df() for table in MARTS}
    spark_tables = {table: pd.read_parquet(exported / f"{table}.parquet") for table in [*EXPORTED, "before_cut"]}
    through = datetime.fromisoformat(json.loads((exported / "through.json").read_text()))
    return BothEngines(duck, duckdb_marts, spark_tables, through)


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
    duckdb_frame, spark_frame = both_engines.duckdb_marts[table], both_engines.spark[table]
    assert len(duckdb_frame) > 500, f"{table}: too few rows to compare ({len(duckdb_frame)})"
    assert sorted(spark_frame.columns) == sorted(duckdb_frame.columns)
    assert len(spark_frame) == len(duckdb_frame)
    assert _differences(duckdb_frame, spark_frame, MARTS[table]) == {}


def test_the_topic_shares_come_from_page_topics_the_python_job_wrote_into_spark(both_engines):
    lead = both_engines.spark["marts.fct_lead_features"]
    assert lead["content_topic_0_share"].fillna(0).gt(0).any()


def test_the_incremental_spark_build_added_weeks_and_observed_labels_the_first_build_had_pending(both_engines):
    spark_frame = both_engines.spark["marts.fct_lead_features"]
    after_base = pd.to_datetime(spark_frame["as_of_date"]) > pd.Timestamp(BASE_THROUGH)
    assert after_base.sum() > 0  # weeks only the incremental build could add
    # rows built by the first build whose labels became observed with the later rows
    first_build = spark_frame[~after_base]
    window_end = pd.to_datetime(first_build["label_window_end_at"])
    assert (first_build["is_label_observed"] & (window_end > pd.Timestamp(BASE_THROUGH))).sum() > 0


def test_time_correctness_on_spark_rows_known_before_the_later_data_do_not_change_with_it(both_engines):
    """The invariance check of tests/test_time_semantics.py on two Spark builds: every feature as of the first
    build's high-water mark or earlier, and every label it had observed, is the same after the later rows."""
    before = both_engines.spark["before_cut"]
    after = both_engines.spark["marts.fct_lead_features"]
    after = after[pd.to_datetime(after["as_of_at"]) <= pd.Timestamp(both_engines.through)]
    assert len(before) > 500
    assert frame_invariance_violations(before, after, "fct_lead_features", both_engines.through) == []


def test_a_model_trained_and_scored_on_spark_gives_the_scores_it_gives_the_duckdb_snapshot(both_engines):
    """Spark scores on its executors; the same fitted model scoring the DuckDB build's newest snapshot on the
    driver gives every lead the same probability (within 1e-9), score, tier and reasons."""
    registry = both_engines.spark["ml.model_registry"]
    active = registry[registry.is_active & (registry.model_name == LEAD_CONVERSION.name)]
    assert len(active) == 1
    assert (both_engines.spark["ml.model_metrics"].model_version == active.model_version.iloc[0]).sum() > 50
    bundle = joblib.load(active.artifact_path.iloc[0])
    with connect(both_engines.duckdb, read_only=True) as con:
        snapshot = load_latest_snapshot(con, LEAD_CONVERSION)
    on_driver = explain(bundle, LEAD_CONVERSION, snapshot, lambda _message: None)
    spark_scores = both_engines.spark["scores.lead_scores"].set_index("lead_id").loc[snapshot.lead_id]
    assert len(spark_scores) == len(snapshot) > 100
    assert np.allclose(spark_scores.conversion_probability, on_driver.probability, rtol=0, atol=1e-9)
    assert (spark_scores.score.to_numpy() == to_score(on_driver.probability)).all()
    assert (spark_scores.tier.to_numpy() == to_tier(on_driver.probability, bundle.tier_cutoffs,
                                                     LEAD_CONVERSION.tier_labels)).all()
    assert list(spark_scores.top_reasons) == on_driver.text
    spark_reasons = both_engines.spark["scores.score_reasons"]
    assert len(spark_reasons) == len(on_driver.reasons) > len(snapshot)
    key = ["entity_id", "direction", "rank"]
    merged = spark_reasons.merge(on_driver.reasons, on=key, suffixes=("_spark", "_driver"))
    assert len(merged) == len(spark_reasons)
    assert (merged.factor_spark == merged.factor_driver).all() and (merged.reason_spark == merged.reason_driver).all()
    assert np.allclose(merged.contribution_spark, merged.contribution_driver, rtol=0, atol=1e-9)


def test_the_reports_built_on_spark_list_scored_leads_only(both_engines):
    worklist, scores = both_engines.spark["marts.rpt_lead_worklist"], both_engines.spark["scores.lead_scores"]
    assert len(worklist) > 0
    assert set(worklist.lead_id) <= set(scores.lead_id)
