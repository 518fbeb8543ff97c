"""Great Expectations gates, and the real public data sets through the flat-export product path."""

from __future__ import annotations

import shutil

import duckdb
import pytest

from expectations.gates import GateFailure, run_gates
from ml.flat import FlatExport, run_flat
from tests.conftest import SHARED_DATA, isolated_settings

LEADS_CSV = SHARED_DATA / "xeducation_leads" / "Leads.csv"
TELCO_CSV = SHARED_DATA / "telco_churn" / "WA_Fn-UseC_-Telco-Customer-Churn.csv"


def test_gates_pass_on_a_good_run_and_fail_loudly_on_a_bad_score_table(pipeline_run, tmp_path):
    settings, _ = pipeline_run
    results = run_gates(settings, "all")
    assert {r.table for r in results} >= {"raw_crm_leads", "scores_lead_scores", "scores_customer_churn_scores"}
    assert all(r.success for r in results)
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
    assert list((broken.artifacts_dir / "gx").glob("*/index.html"))


@pytest.mark.skipif(not LEADS_CSV.exists(), reason="../shared/data/xeducation_leads/Leads.csv is absent")
def test_leads_csv_audit_flags_sales_filled_columns_and_scores_honestly(tmp_path):
    settings = isolated_settings(tmp_path)
    result = run_flat(settings, FlatExport(LEADS_CSV, "Prospect ID", "Converted", "xeducation"))
    flagged = set(result.excluded)
    for column in ("tags", "lead_quality", "lead_profile", "asymmetrique_activity_index", "asymmetrique_profile_score"):
        assert column in flagged
    honest = result.metrics[result.winner]["roc_auc"]
    assert 0.85 <= honest < 0.95
    assert result.metrics_with_flagged["roc_auc"] > honest + 0.05  # what the leak would have "added"
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        scored = con.execute("select count(*) from scores.flat_xeducation_scores").fetchall()[0][0]
    assert scored == result.rows_used == 9_240


@pytest.mark.skipif(not TELCO_CSV.exists(), reason="../shared/data/telco_churn is absent")
def test_telco_churn_through_the_flat_path(tmp_path):
    settings = isolated_settings(tmp_path)
    result = run_flat(settings, FlatExport(TELCO_CSV, "customerID", "Churn", "telco"))
    assert result.rows_used == 7_043 and not result.excluded
    assert result.metrics[result.winner]["roc_auc"] >= 0.82
