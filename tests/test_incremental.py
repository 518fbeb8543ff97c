"""Incremental runs equal a full rebuild.

One warehouse is built on the data loaded by a Sunday noon, then refreshed twice with the rows loaded in the
next day (crossing a Monday: a new as-of week) and in the rest of that week (a week's labels become observed);
another is built in full on everything loaded by the end. Every lead model must hold the same rows and values in both.
Planted bugs in the incremental path (a lookback shorter than the longest window, journey milestones
recomputed for new leads only) must break the equality.
"""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import duckdb
import numpy as np
import pandas as pd
import pytest

from core.warehouse import connect
from ingest.incremental import IncrementalError, append_raw, check_extends_previous_build
from scorehouse.pipeline import build_features
from simulator import SimulationConfig, simulate
from simulator.files import write_rows_loaded
from tests.conftest import copy_of_built_run, isolated_settings, new_activities, read
from tests.time_harness import copy_project, land, plant, share_topic_model

BASE_THROUGH = datetime(2026, 6, 21, 12)  # a Sunday
# a day crossing a Monday (a new as-of week), then the rest of that week (the labels of one more week observed)
DAYS = (datetime(2026, 6, 22, 12), datetime(2026, 6, 28, 12))

# incremental model -> its key
LEAD_MODELS = {
    "staging.stg_crm__leads": ("lead_id",),
    "staging.stg_crm__lead_status_changes": ("status_change_id",),
    "staging.stg_crm__activities": ("activity_id",),
    "staging.stg_web__pages": ("page_view_id",),
    "staging.stg_web__form_submissions": ("form_submission_id",),
    "staging.stg_web__identifies": ("identify_id",),
    "staging.stg_marketing__touches": ("touch_id",),
    "staging.stg_enrichment__firmographics": ("enrichment_id",),
    "intermediate.int_touchpoints": ("source_system", "touchpoint_id"),
    "intermediate.int_lead_touch_events": ("source_system", "touchpoint_id"),
    "intermediate.int_lead_spine": ("lead_id", "as_of_date"),
    "intermediate.int_lead_engagement_asof": ("lead_id", "as_of_date"),
    "intermediate.int_lead_journey_milestones": ("lead_id",),
    "intermediate.int_lead_journey_asof": ("lead_id", "as_of_date"),
    "intermediate.int_lead_firmographics_asof": ("lead_id", "as_of_date"),
    "intermediate.int_lead_stage_asof": ("lead_id", "as_of_date"),
    "intermediate.int_lead_labels": ("lead_id", "as_of_date"),
    "marts.fct_lead_features": ("lead_id", "as_of_date"),
}


class Increment(NamedTuple):
    folder: Path
    rows: int  # raw rows appended
    late: int  # activities loaded days after they happened
    copies: int  # page views re-delivered after their first copy was loaded


def _append(settings, folder: Path):
    with connect(settings) as con:
        return append_raw(con, folder)


def table_differences(a, b) -> list[str]:
    """Per lead model, what differs between two warehouses (doubles to 1e-9: sums in another order)."""
    problems = []
    for table, key in LEAD_MODELS.items():
        frames = []
        for settings in (a, b):
            with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
                frames.append(con.execute(f"select * from {table} order by {', '.join(key)}").df())
        x, y = frames
        if len(x) != len(y) or not x[list(key)].equals(y[list(key)]):
            problems.append(f"{table}: rows differ ({len(x)} vs {len(y)})")
            continue
        for column in x.columns:
            if pd.api.types.is_float_dtype(x[column]):
                same = np.isclose(x[column], y[column], rtol=1e-9, atol=1e-9, equal_nan=True)
            else:
                same = (x[column] == y[column]) | (x[column].isna() & y[column].isna())
            if not same.all():
                problems.append(f"{table}.{column}: {int((~same).sum())} rows differ")
    return problems


def _rows(settings, sql: str) -> int:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return int(con.execute(sql).fetchone()[0])


@pytest.fixture(scope="module")
def builds(tmp_path_factory):
    root = tmp_path_factory.mktemp("incremental")
    raw_dir = root / "raw"
    simulate(SimulationConfig(leads=1_500, seed=23), raw_dir)

    incremental = isolated_settings(root / "incremental")
    land(incremental, raw_dir, loaded_through=BASE_THROUGH)
    build_features(incremental)
    base_weeks = _rows(incremental, "select count(distinct as_of_date) from marts.fct_lead_features")
    base_labels = _rows(incremental, "select count(label_converted) from marts.fct_lead_features")
    # the same starting point for the planted bug
    planted = isolated_settings(root / "planted")
    shutil.copytree(root / "incremental", root / "planted")  # warehouse file and artifacts

    increments, previous = [], BASE_THROUGH
    for through in DAYS:
        folder = root / f"new_{through:%Y%m%d}"
        rows = write_rows_loaded(raw_dir, previous, through, folder)
        late = _late_rows(folder, previous)
        increments.append(Increment(folder, rows, late, _redelivered_rows(folder, raw_dir, previous)))
        _append(incremental, folder)
        build_features(incremental, incremental=True)
        previous = through

    full = isolated_settings(root / "full")
    land(full, raw_dir, loaded_through=DAYS[-1])
    share_topic_model(incremental, full)
    build_features(full)
    return {"root": root, "incremental": incremental, "full": full, "planted": planted, "increments": increments,
            "base_weeks": base_weeks, "base_labels": base_labels}


def _late_rows(folder: Path, loaded_after: datetime) -> int:
    """Rows in the increment whose event happened well before it arrived (loaded days late)."""
    with duckdb.connect() as con:
        return int(con.execute(
            f"select count(*) from read_parquet('{folder}/crm_activities/*.parquet') "
            f"where occurred_at < timestamp '{loaded_after}' - interval 3 day").fetchone()[0])


def _redelivered_rows(folder: Path, raw_dir: Path, loaded_through: datetime) -> int:
    """Page views in the increment that are copies of ones loaded before it (staging must keep the first)."""
    with duckdb.connect() as con:
        return int(con.execute(
            f"select count(*) from read_parquet('{folder}/web_pages/*.parquet') as new "
            f"where message_id in (select message_id from read_parquet('{raw_dir}/web_pages/*.parquet') "
            f"where _loaded_at <= timestamp '{loaded_through}')").fetchone()[0])


def test_incremental_runs_equal_a_full_rebuild(builds):
    incremental, full = builds["incremental"], builds["full"]
    # the increments were real: rows appended, some of them late-loaded history or re-delivered copies of rows
    # already staged, a new week, new labels
    assert all(increment.rows > 0 for increment in builds["increments"])
    assert sum(increment.late for increment in builds["increments"]) > 0
    assert sum(increment.copies for increment in builds["increments"]) > 0
    weeks = _rows(incremental, "select count(distinct as_of_date) from marts.fct_lead_features")
    labels = _rows(incremental, "select count(label_converted) from marts.fct_lead_features")
    assert weeks == builds["base_weeks"] + 1
    assert labels > builds["base_labels"]
    assert table_differences(incremental, full) == []


def test_a_full_build_in_time_steps_equals_one_full_build(builds):
    """Large full builds run in time steps (ingest/incremental.py: time_chunks); forced here with 500
    leads a step, i.e. three steps."""
    from ingest.incremental import time_chunks

    stepped = isolated_settings(builds["root"] / "stepped").with_overrides(build_chunk_leads=500)
    land(stepped, builds["root"] / "raw", loaded_through=DAYS[-1])
    share_topic_model(builds["incremental"], stepped)
    assert len(read(stepped, time_chunks, stepped)) >= 2
    build_features(stepped)
    assert table_differences(stepped, builds["full"]) == []


def test_planted_bugs_in_the_incremental_path_are_caught(builds):
    """Two independent bugs planted in one project: engagement does not read the older touches that leave the
    90-day windows in the weeks built, and journey milestones are recomputed only for leads new since the previous
    build, not for every lead with new touches."""
    planted, full, root = builds["planted"], builds["full"], builds["root"]
    project = copy_project(planted, root / "planted_project")
    plant(project, "dbt_project/macros/lead_engagement.sql", "{%- for days in [7, 30, 37, 90] %}",
          "{%- for days in [7, 30, 37] %}")
    plant(project, "dbt_project/models/intermediate/int_lead_journey_milestones.sql",
          "where _loaded_at > {{ loaded_after }} and step_number is not null)",
          "where _loaded_at > {{ loaded_after }} and step_number is not null\n"
          "                and lead_id not in (select lead_id from {{ this }}))")
    planted = planted.with_overrides(project_root=project)
    for increment in builds["increments"]:
        _append(planted, increment.folder)
        build_features(planted, incremental=True)
    differences = table_differences(planted, full)
    assert any("int_lead_engagement_asof" in d and "_90d" in d for d in differences), differences
    assert any("int_lead_journey_milestones" in d for d in differences), differences
    assert any("int_lead_journey_asof" in d for d in differences), differences


def test_rows_loaded_before_the_previous_build_are_refused(builds, tmp_path):
    incremental = builds["incremental"]
    stale = tmp_path / "stale"
    (stale / "crm_activities").mkdir(parents=True)
    with duckdb.connect(str(incremental.warehouse_path), read_only=True) as con:
        con.execute("copy (select * from raw.crm_activities limit 5) to "
                    f"'{stale}/crm_activities/rows.parquet' (format parquet)")
        before = con.execute("select count(*) from raw.crm_activities").fetchone()[0]
    with pytest.raises(IncrementalError, match=r"crm_activities: 5 rows have _loaded_at at or before"):
        _append(incremental, stale)
    assert _rows(incremental, "select count(*) from raw.crm_activities") == before
    read(incremental, check_extends_previous_build, incremental)  # still consistent: nothing was written


def test_replaced_raw_data_needs_a_full_build(builds, tmp_path):
    copy = isolated_settings(tmp_path / "copy")
    shutil.copytree(builds["incremental"].warehouse_path.parent, copy.warehouse_path.parent)
    with duckdb.connect(str(copy.warehouse_path)) as con:
        con.execute("delete from raw.web_pages where rowid < 3")
    with pytest.raises(IncrementalError, match=r"raw\.web_pages has .* the previous build saw"):
        read(copy, check_extends_previous_build, copy)


def _table_rows(settings) -> dict[str, int]:
    """Rows in every table of the warehouse (the refresh log aside)."""
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        names = [f"{s}.{t}" for s, t in con.execute(
            "select table_schema, table_name from information_schema.tables where table_type = 'BASE TABLE' "
            "and table_name <> '_refresh_log'").fetchall()]
        return {name: con.execute(f"select count(*) from {name}").fetchone()[0] for name in names}


def test_refresh_appends_a_day_rescores_and_can_be_run_again(pipeline_run, tmp_path, monkeypatch):
    """The daily job on a copy of the end-to-end warehouse: new activities arrive, scores are rewritten; the same
    folder refreshed again appends, builds and scores nothing. On a second copy the same refresh is killed between
    its append and its build (its new rows committed, nothing built or scored); the same command run again builds
    and scores once and ends where the uninterrupted refresh ended."""
    import scorehouse.pipeline
    from scorehouse.pipeline import refresh

    whole = copy_of_built_run(pipeline_run[0].warehouse_path.parent, tmp_path / "whole")
    broken = copy_of_built_run(pipeline_run[0].warehouse_path.parent, tmp_path / "broken")
    folder = new_activities(whole, tmp_path / "new")
    with duckdb.connect(str(whole.warehouse_path), read_only=True) as con:
        history_before = con.execute("select count(*) from scores.lead_score_history").fetchone()[0]
    report = refresh(whole, folder, progress=lambda _m: None)
    assert "dbt build, incremental (staging, intermediate, marts)" in report.stage_seconds
    with duckdb.connect(str(whole.warehouse_path), read_only=True) as con:
        assert con.execute("select count(*) from intermediate.int_touchpoints "
                           "where touchpoint_id like 'new-%'").fetchone()[0] == 50
        scored = con.execute("select count(*), count(distinct scored_at) from scores.lead_scores").fetchone()
        history_after = con.execute("select count(*) from scores.lead_score_history").fetchone()[0]
    assert scored[0] == report.rows["scores.lead_scores"] > 0 and scored[1] == 1
    assert history_after == history_before + scored[0]

    finished = _table_rows(whole)
    said = []
    again = refresh(whole, folder, progress=said.append)
    assert list(again.stage_seconds) == ["append new raw files"]
    assert any("nothing to do" in line for line in said)
    assert _table_rows(whole) == finished

    def killed(*_args, **_kwargs):
        raise KeyboardInterrupt  # what a kill between the two steps leaves behind

    with monkeypatch.context() as patch:
        patch.setattr(scorehouse.pipeline, "build_features", killed)
        with pytest.raises(KeyboardInterrupt):
            refresh(broken, folder, progress=lambda _m: None)
    said = []
    refresh(broken, folder, progress=said.append)
    assert any("stopped before scoring, which this run finishes" in line for line in said)

    assert _table_rows(broken) == finished
    query = ("select lead_id, as_of_date, round(conversion_probability, 12), tier, top_reasons "
             "from scores.lead_scores order by lead_id")
    with duckdb.connect(str(whole.warehouse_path), read_only=True) as a, \
            duckdb.connect(str(broken.warehouse_path), read_only=True) as b:
        assert a.execute(query).fetchall() == b.execute(query).fetchall()
        touch = "select count(*) from intermediate.int_touchpoints where touchpoint_id like 'new-%'"
        assert a.execute(touch).fetchone() == b.execute(touch).fetchone() == (50,)


def test_the_worklist_does_not_depend_on_when_the_scores_were_written(pipeline_run, tmp_path):
    """The control draw, routes and queue positions come from the data, not the clock: the same scores written an
    hour later give the same worklist."""
    from core.dbt import run_dbt

    settings = copy_of_built_run(pipeline_run[0].warehouse_path.parent, tmp_path / "copy")
    query = "select * exclude (scored_at) from marts.rpt_lead_worklist order by lead_id"
    with duckdb.connect(str(settings.warehouse_path)) as con:
        before = con.execute(query).fetchall()
        con.execute("update scores.lead_scores set scored_at = scored_at + interval 1 hour")
    run_dbt(settings, "run", ["--select", "rpt_lead_worklist"], quiet=True)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        after = con.execute(query).fetchall()
        controls = con.execute("select count(*) from marts.rpt_lead_worklist where is_control").fetchone()[0]
    assert after == before and controls > 0
