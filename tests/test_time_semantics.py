"""No feature or label can see the future: reference comparison, invariance under later data,
and planted leaks that these detectors must catch."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pytest

from core.dbt import DbtError, run_dbt
from simulator import SimulationConfig, simulate
from tests.conftest import isolated_settings
from tests.reference_customer_features import compare_customers_with_mart
from tests.reference_features import compare_with_mart
from tests.time_harness import (
    build_feature_mart,
    copy_project,
    invariance_violations,
    land,
    plant,
    rows_after,
    share_topic_model,
)

END = datetime.fromisoformat(SimulationConfig().end)
CUTS = (datetime(2025, 11, 19, 13, 30), datetime(2026, 3, 4, 7, 0))


def _sample_leads(settings, n: int, seed: int) -> list[str]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return [r[0] for r in con.execute(
            f"select lead_id from (select distinct lead_id from marts.fct_lead_features) "
            f"order by hash(lead_id || '{seed}') limit {n}"
        ).fetchall()]


def _reference_problems(settings, n: int = 60, seed: int = 1) -> list[str]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return compare_with_mart(con, settings.lead_horizon_days, _sample_leads(settings, n, seed))


@pytest.fixture(scope="module")
def raw_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("time-raw") / "raw"
    simulate(SimulationConfig(leads=700, seed=23, chunk_size=350), out)
    return out


def _build_pair(tmp_path, raw_dir, cut, seed, project=None):
    """Two warehouses: everything loaded by the cut, and everything plus random later rows."""
    extra = rows_after(raw_dir, cut, seed, END)
    before = isolated_settings(tmp_path / "before")
    after = isolated_settings(tmp_path / "after")
    if project is not None:
        before = before.with_overrides(project_root=project)
        after = after.with_overrides(project_root=project)
    land(before, raw_dir, loaded_through=cut, extra_rows=extra)
    land(after, raw_dir, extra_rows=extra)
    build_feature_mart(before)
    # Later data is built with the topic model fitted at the cut, as a production build after T would be.
    share_topic_model(before, after)
    build_feature_mart(after)
    return before, after


# --- the real project -----------------------------------------------------------------------------

def test_mart_matches_the_reference_row_by_row(pipeline_run):
    settings, _ = pipeline_run
    problems = _reference_problems(settings, n=120)
    assert problems == [], "\n".join(problems[:20])


@pytest.fixture(scope="module")
def clean_pairs(tmp_path_factory, raw_dir):
    """Builds of the real project before/after each cut, made once per module on demand."""
    built = {}

    def get(cut_index: int):
        if cut_index not in built:
            root = tmp_path_factory.mktemp(f"cut{cut_index}")
            built[cut_index] = _build_pair(root, raw_dir, CUTS[cut_index], 101 + cut_index)
        return built[cut_index]

    return get


@pytest.mark.parametrize("mart", ["fct_lead_features", "fct_customer_features"])
@pytest.mark.parametrize("cut_index", range(len(CUTS)))
def test_appending_later_data_changes_nothing_already_known(clean_pairs, cut_index, mart):
    before, after = clean_pairs(cut_index)
    problems = invariance_violations(before, after, mart)
    assert problems == [], "\n".join(problems)
    # the later build really is different: otherwise the test would prove nothing
    with duckdb.connect(str(after.warehouse_path), read_only=True) as con:
        later = con.execute(f"select count(*) from marts.{mart} where as_of_at > ?", [CUTS[cut_index]]).fetchall()[0][0]
    assert later > 0
    # the build with late-loaded rows still matches the reference everywhere
    if mart == "fct_lead_features":
        assert _reference_problems(after, n=60, seed=cut_index) == []
    else:
        assert _customer_reference_problems(after, n=60, seed=cut_index) == []


def test_late_enrichment_is_invisible_until_loaded(clean_pairs):
    """Enrichment produced before an as-of date but loaded after it must not show at that date."""
    _, after = clean_pairs(0)
    with duckdb.connect(str(after.warehouse_path), read_only=True) as con:
        leaked = con.execute(
            "select count(*) from marts.fct_lead_features where industry = 'aerospace' and as_of_at <= ?", [CUTS[0]]
        ).fetchall()[0][0]
        shown_later = con.execute(
            "select count(*) from marts.fct_lead_features where industry = 'aerospace'"
        ).fetchall()[0][0]
    assert leaked == 0
    assert shown_later > 0


# --- planted leaks: each detector must fail on a deliberately leaky project -------------------------

POINT_IN_TIME = "dbt_project/macros/point_in_time.sql"
LABEL_MACRO = "{% macro in_label_window(event_at, loaded_at, as_of_at, horizon_days) -%}"

# leak -> (file, text, leaky text, the detectors that must catch it)
LEAKS = {
    "load_time_ignored": (
        POINT_IN_TIME,
        "case when {{ event_at }} > {{ loaded_at }} then {{ event_at }} else {{ loaded_at }} end",
        "{{ event_at }}",
        {"reference", "invariance", "dbt_unit_tests"},
    ),
    "load_time_ignored_in_lookups": (
        POINT_IN_TIME,
        "({{ event_at }} <= {{ as_of_at }} and {{ loaded_at }} <= {{ as_of_at }})",
        "({{ event_at }} <= {{ as_of_at }})",
        {"reference", "dbt_unit_tests"},
    ),
    "trailing_window_one_day_too_wide": (
        POINT_IN_TIME,
        "{{ first_as_of_at_or_after(scorehouse.shift_timestamp('day', days, event_at), period) }}",
        "{{ first_as_of_at_or_after(scorehouse.shift_timestamp('day', days + 1, event_at), period) }}",
        {"reference", "dbt_unit_tests"},
    ),
    "journey_ordered_by_event_time_alone": (
        "dbt_project/models/intermediate/int_lead_touch_events.sql",
        # every ordering of a lead's touches in the model: the steps' window and the pages' window
        "order by known_at, event_at, touchpoint_id",
        "order by event_at, touchpoint_id",
        {"reference", "dbt_unit_tests"},
    ),
    "label_window_one_day_too_wide": (
        POINT_IN_TIME,
        LABEL_MACRO,
        LABEL_MACRO + "{% set horizon_days = (horizon_days | int) + 1 %}",
        {"dbt_unit_tests"},
    ),
    "label_counts_outcomes_recorded_after_the_window": (
        POINT_IN_TIME,
        "\n     and {{ loaded_at }} <= {{ scorehouse.shift_timestamp('day', horizon_days, as_of_at) }})",
        ")",
        {"invariance", "dbt_unit_tests"},
    ),
    "usage_counted_before_the_day_is_over": (
        "dbt_project/models/staging/product/stg_product__usage_daily.sql",
        "{{ scorehouse.shift_timestamp('day', 1, 'cast(cast(usage_date as date) as timestamp)') }} as usage_complete_at",
        "cast(cast(usage_date as date) as timestamp) as usage_complete_at",
        {"customer_reference"},
    ),
    "stage_from_current_status_column": (
        "dbt_project/models/marts/fct_lead_features.sql",
        "coalesce(stages.lifecycle_stage, 'new') as lifecycle_stage",
        ("coalesce((select lower(max(r.status)) from {{ source('crm', 'crm_leads') }} r where r.lead_id = spine.lead_id),"
         " 'new') as lifecycle_stage"),
        {"reference"},
    ),
}


@pytest.mark.parametrize("leak", sorted(LEAKS))
def test_planted_leak_is_caught(tmp_path, raw_dir, leak):
    file, old, new, detectors = LEAKS[leak]
    project = copy_project(isolated_settings(tmp_path), tmp_path / "project")
    plant(project, file, old, new)
    before, after = _build_pair(tmp_path, raw_dir, CUTS[0], 505, project=project) if "invariance" in detectors else (
        None, None)
    if after is None:
        after = isolated_settings(tmp_path / "leaky").with_overrides(project_root=project)
        land(after, raw_dir)
        build_feature_mart(after)
    if "invariance" in detectors:
        assert invariance_violations(before, after), f"invariance test missed {leak}"
    if "reference" in detectors:
        assert _reference_problems(after, n=10_000), f"reference comparison missed {leak}"
    if "customer_reference" in detectors:
        assert _customer_reference_problems(after, n=10_000), f"customer reference comparison missed {leak}"
    if "dbt_unit_tests" in detectors:
        with pytest.raises(DbtError, match=r"-> fail"):
            run_dbt(after, "test", ["--select", "test_type:unit"], quiet=True)


# --- the customer mart ------------------------------------------------------------------------------

def _customer_reference_problems(settings, n: int = 80, seed: int = 1) -> list[str]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        accounts = [r[0] for r in con.execute(
            f"select account_id from (select distinct account_id from marts.fct_customer_features) "
            f"order by hash(account_id || '{seed}') limit {n}"
        ).fetchall()]
        return compare_customers_with_mart(con, settings.churn_horizon_days, accounts)


def test_customer_mart_matches_the_reference_row_by_row(pipeline_run):
    settings, _ = pipeline_run
    problems = _customer_reference_problems(settings, n=150)
    assert problems == [], "\n".join(problems[:20])
