"""The whole pipeline on small simulated data: tables, contents and honest model quality."""

from __future__ import annotations

import duckdb
import pytest

from ml.features import LEAD_CONVERSION
from scoring.batch import score_model


def query(settings, sql: str):
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_one_score_per_open_lead_with_valid_values(pipeline_run):
    settings, _ = pipeline_run
    open_leads = query(
        settings,
        "select count(*) from marts.fct_lead_features "
        "where as_of_date = (select max(as_of_date) from marts.fct_lead_features)",
    )[0][0]
    assert open_leads > 100
    rows, distinct, p_min, p_max, s_min, s_max, tiers = query(
        settings,
        "select count(*), count(distinct lead_id), min(conversion_probability), max(conversion_probability), "
        "min(score), max(score), list(distinct tier order by tier) from scores.lead_scores",
    )[0]
    assert rows == distinct == open_leads
    assert 0.0 <= p_min <= p_max <= 1.0
    assert 1 <= s_min <= s_max <= 99
    assert set(tiers) <= {"A", "B", "C", "D"} and "A" in tiers and "D" in tiers


def test_scores_come_from_the_active_model(pipeline_run):
    settings, report = pipeline_run
    active = query(settings, "select model_version from ml.model_registry where is_active")
    assert [r[0] for r in active] == [report.training["model_version"]]
    versions = query(settings, "select distinct model_version from scores.lead_scores")
    assert versions == active


def test_model_is_honest_against_the_simulator_ground_truth(pipeline_run):
    """Close to the best possible score on the same rows, and never above it by more than noise:
    a model that beats the ground truth has seen the future."""
    settings, report = pipeline_run
    model_auc = report.training["test"]["roc_auc"]
    truth_auc = report.training["ground_truth"]["roc_auc"]
    assert 0.80 < truth_auc < 0.99
    assert model_auc > truth_auc - 0.08, (model_auc, truth_auc)
    assert model_auc < truth_auc + 0.02, (model_auc, truth_auc)
    stored = query(settings, "select test_roc_auc, ground_truth_test_roc_auc from ml.model_registry where is_active")[0]
    assert stored == pytest.approx((model_auc, truth_auc))


def test_metrics_are_stored_in_the_warehouse(pipeline_run):
    settings, report = pipeline_run
    metrics = dict(
        query(
            settings,
            f"select metric, value from ml.model_metrics where model_version = '{report.training['model_version']}' "
            "and split = 'test' and segment = 'all'",
        )
    )
    for name in ("roc_auc", "pr_auc", "brier", "precision_at_threshold", "recall_at_threshold", "f1_at_threshold",
                 "lift_top_decile", "share_flagged"):
        assert name in metrics
    assert metrics["roc_auc"] == pytest.approx(report.training["test"]["roc_auc"])
    assert metrics["lift_top_decile"] > 1.5


def test_no_label_on_censored_rows_and_labels_on_observed_rows(pipeline_run):
    settings, _ = pipeline_run
    bad = query(
        settings,
        "select count(*) from marts.fct_lead_features where (is_label_observed and label_converted is null) "
        "or (not is_label_observed and label_converted is not null)",
    )[0][0]
    assert bad == 0
    censored, observed = query(
        settings,
        "select count(*) filter (where not is_label_observed), count(*) filter (where is_label_observed) "
        "from marts.fct_lead_features",
    )[0]
    assert censored > 0 and observed > 0


def test_high_priority_report_lists_the_right_leads(pipeline_run):
    settings, _ = pipeline_run
    rows = query(
        settings,
        "select count(*), count(*) filter (where tier = 'A' or conversion_probability >= 0.5), "
        "min(priority_rank), max(priority_rank) from marts.rpt_high_priority_leads",
    )[0]
    expected = query(
        settings, "select count(*) from scores.lead_scores where tier = 'A' or conversion_probability >= 0.5"
    )[0][0]
    assert rows == (expected, expected, 1, expected)


def test_bad_raw_rows_are_rejected_with_a_reason(pipeline_run):
    settings, _ = pipeline_run
    reasons = dict(query(settings, "select source_table, count(*) from staging.stg_rejected_rows group by 1"))
    assert reasons.get("crm_activities", 0) > 0 and reasons.get("web_pages", 0) > 0


def test_rescoring_replaces_current_scores_and_appends_history(pipeline_run):
    settings, _ = pipeline_run
    before = query(settings, "select count(*) from scores.lead_score_history")[0][0]
    current = query(settings, "select count(*) from scores.lead_scores")[0][0]
    written = score_model(settings, LEAD_CONVERSION)
    assert written == current
    assert query(settings, "select count(*) from scores.lead_scores")[0][0] == current
    assert query(settings, "select count(*) from scores.lead_score_history")[0][0] == before + current


def test_registered_split_keeps_the_embargo(pipeline_run):
    settings, _ = pipeline_run
    fit_end, validation_start, validation_end, test_start, horizon = query(
        settings,
        "select fit_end, validation_start, validation_end, test_start, horizon_days from ml.model_registry where is_active",
    )[0]
    from datetime import timedelta

    assert fit_end + timedelta(days=horizon) <= validation_start
    assert validation_end + timedelta(days=horizon) <= test_start
