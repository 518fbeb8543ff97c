"""Great Expectations gates, and the real public data sets through the flat-export product path."""

from __future__ import annotations

import re
import shutil

import duckdb
import pytest

from expectations.context import docs_index
from expectations.gates import GateFailure, run_gates
from expectations.suites import suite_definitions
from ml.flat import FlatExport, run_flat
from tests.conftest import SHARED_DATA, isolated_settings

LEADS_CSV = SHARED_DATA / "xeducation_leads" / "Leads.csv"
TELCO_CSV = SHARED_DATA / "telco_churn" / "WA_Fn-UseC_-Telco-Customer-Churn.csv"
MAVEN_PIPELINE = SHARED_DATA / "maven_crm" / "sales_pipeline.csv"


def test_gates_pass_on_a_good_run_and_fail_loudly_on_a_bad_score_table(pipeline_run, tmp_path):
    settings, _ = pipeline_run
    results = run_gates(settings, "all")
    assert {r.table for r in results} >= {"raw_crm_leads", "scores_lead_scores", "scores_customer_churn_scores"}
    assert all(r.success for r in results)
    # the Data Docs site lists every suite of the context, each with its page, and this run's results
    index = docs_index(settings)
    page = index.read_text(encoding="utf-8")
    for suite in suite_definitions():
        link = f"expectations/{suite.replace('.', '/')}.html"
        assert f'href="{link}"' in page and (index.parent / link).exists(), suite
    # the runs' table is data for a script in the page; each run's page is a file of its own
    validations = set(re.findall(r"(validations/[^'\"]+\.html)", page))
    assert len(validations) >= len(results) and all((index.parent / v).exists() for v in validations)
    broken = isolated_settings(tmp_path)
    broken.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(settings.warehouse_path, broken.warehouse_path)
    with duckdb.connect(str(broken.warehouse_path)) as con:
        con.execute("update scores.lead_scores set conversion_probability = 1.5 "
                    "where lead_id = (select min(lead_id) from scores.lead_scores)")
    with pytest.raises(GateFailure) as failure:
        run_gates(broken, "scores")
    message = str(failure.value)
    assert "expect_column_values_to_be_between" in message and "scores_lead_scores.conversion_probability" in message
    assert "1.5" in message
    assert f"Data Docs: {docs_index(broken)}" in message and docs_index(broken).exists()


@pytest.mark.skipif(not LEADS_CSV.exists(), reason="../shared/data/xeducation_leads/Leads.csv is absent")
def test_leads_csv_audit_flags_sales_filled_columns_and_scores_honestly(tmp_path):
    settings = isolated_settings(tmp_path)
    result = run_flat(settings, FlatExport(LEADS_CSV, "Prospect ID", "Converted", "xeducation"))
    sales_filled = {"tags", "lead_quality", "lead_profile", "asymmetrique_activity_index", "asymmetrique_profile_index",
                    "asymmetrique_activity_score", "asymmetrique_profile_score", "last_activity", "last_notable_activity"}
    assert set(result.excluded) == sales_filled | {"lead_number"} and not result.warned  # the honest columns stay
    reasons = result.audit.set_index("column_name").flagged_reason
    assert "identifier" in reasons["lead_number"] and "'Closed by Horizzon' occurs almost only" in reasons["tags"]
    honest = result.metrics[result.winner]["roc_auc"]
    assert 0.85 <= honest < 0.95
    assert result.metrics_with_flagged["roc_auc"] > honest + 0.05  # what the leak would have "added"
    assert f"it would be {result.metrics_with_flagged['roc_auc']:.3f}: that gap is leakage" in result.leak_note()
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        scored = con.execute("select count(*) from scores.flat_xeducation_scores").fetchall()[0][0]
    assert scored == result.rows_used == 9_240


@pytest.mark.skipif(not TELCO_CSV.exists(), reason="../shared/data/telco_churn is absent")
def test_telco_churn_through_the_flat_path(tmp_path):
    settings = isolated_settings(tmp_path)
    result = run_flat(settings, FlatExport(TELCO_CSV, "customerID", "Churn", "telco"))
    assert result.rows_used == 7_043 and not result.excluded and not result.warned
    assert result.metrics[result.winner]["roc_auc"] >= 0.82


@pytest.mark.skipif(not MAVEN_PIPELINE.exists(), reason="../shared/data/maven_crm is absent")
def test_maven_deals_close_fields_are_excluded_open_deals_scored_and_no_signal_remains(tmp_path):
    """Deals close Won or Lost; open ones (Engaging, Prospecting) have no outcome yet. The fields filled at closing
    are leaks — close_value perfectly, and both are blank on every open deal — and out of time nothing else
    predicts the outcome. The open deals are what a score is for: each gets one."""
    settings = isolated_settings(tmp_path)
    # no --id: rows are named by their line; the deal id is then just a column, which the audit excludes
    result = run_flat(settings, FlatExport(MAVEN_PIPELINE, None, "deal_stage", "maven",
                                           created_at_column="engage_date", open_labels=("Engaging", "Prospecting")))
    assert (result.rows_used, result.rows_open, result.rows_rejected) == (6_711, 2_089, 0)
    assert {"close_value", "close_date"} <= set(result.excluded) and not result.warned
    reasons = result.audit.set_index("column_name").flagged_reason
    assert "near-perfect" in reasons["close_value"]
    assert "filled only once the outcome is known (on 0% of the open rows, 100% of the closed ones)" in reasons["close_date"]
    assert result.metrics[result.winner]["roc_auc"] < 0.58
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        scored = dict(con.execute("select is_open, count(*) from scores.flat_maven_scores group by 1").fetchall())
        mart = con.execute("select count(*), count(label) from marts.fct_flat_maven").fetchall()[0]
    assert scored == {False: 6_711, True: 2_089} and mart == (8_800, 6_711)
    assert "identifier" in reasons["opportunity_id"] and not result.signal[0]
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        registry = con.execute("select horizon_days, threshold, signal_found from ml.model_registry").fetchall()
        metrics = dict(con.execute("select metric, value from ml.model_metrics where segment = 'all'").fetchall())
        first_id = con.execute("select min(entity_id::int) from marts.fct_flat_maven").fetchall()[0][0]
    assert registry[0][0] is None and registry[0][1] != 0.5 and registry[0][2] is False
    assert abs(metrics["roc_auc"] - result.metrics[result.winner]["roc_auc"]) < 1e-12 and "base_rate" in metrics
    assert first_id == 2  # the first data line
