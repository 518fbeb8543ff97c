"""The whole pipeline on small simulated data: tables, contents and honest model quality."""

from __future__ import annotations

from datetime import timedelta

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


def test_scores_come_from_the_active_models(pipeline_run):
    settings, report = pipeline_run
    active = dict(query(settings, "select model_name, model_version from ml.model_registry where is_active"))
    assert active == {name: t["model_version"] for name, t in report.training.items()}
    assert query(settings, "select distinct model_version from scores.lead_scores") == [(active["lead_conversion"],)]
    assert query(settings, "select distinct model_version from scores.customer_churn_scores") == [
        (active["customer_churn"],)
    ]


@pytest.mark.parametrize("model,below_truth", [("lead_conversion", 0.08), ("customer_churn", 0.15)])
def test_model_is_honest_against_the_simulator_ground_truth(pipeline_run, model, below_truth):
    """Close to the best possible score on the same rows, and never above it by more than noise:
    a model that beats the ground truth has seen the future. (The churn test period is small, so its
    margin is wider.)"""
    settings, report = pipeline_run
    model_auc = report.training[model]["test"]["roc_auc"]
    truth_auc = report.training[model]["ground_truth"]["roc_auc"]
    assert 0.75 < truth_auc < 0.99
    assert model_auc > truth_auc - below_truth, (model_auc, truth_auc)
    assert model_auc < truth_auc + 0.02, (model_auc, truth_auc)
    stored = query(
        settings,
        f"select test_roc_auc, ground_truth_test_roc_auc from ml.model_registry where is_active and model_name = '{model}'",
    )[0]
    assert stored == pytest.approx((model_auc, truth_auc))


def test_metrics_are_stored_in_the_warehouse(pipeline_run):
    settings, report = pipeline_run
    training = report.training["lead_conversion"]
    metrics = dict(
        query(
            settings,
            f"select metric, value from ml.model_metrics where model_version = '{training['model_version']}' "
            "and split = 'test' and segment = 'all'",
        )
    )
    for name in ("roc_auc", "pr_auc", "brier", "precision_at_threshold", "recall_at_threshold", "f1_at_threshold",
                 "lift_top_decile", "share_flagged"):
        assert name in metrics
    assert metrics["roc_auc"] == pytest.approx(training["test"]["roc_auc"])
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


def test_registered_splits_keep_the_embargo(pipeline_run):
    settings, _ = pipeline_run
    rows = query(
        settings,
        "select fit_end, validation_start, validation_end, test_start, horizon_days from ml.model_registry where is_active",
    )
    assert len(rows) == 2
    for fit_end, validation_start, validation_end, test_start, horizon in rows:
        assert fit_end + timedelta(days=horizon) <= validation_start
        assert validation_end + timedelta(days=horizon) <= test_start


def test_one_churn_score_per_active_customer_with_an_intervention(pipeline_run):
    settings, _ = pipeline_run
    active = query(
        settings,
        "select count(*) from marts.fct_customer_features "
        "where as_of_date = (select max(as_of_date) from marts.fct_customer_features)",
    )[0][0]
    rows, distinct, p_min, p_max, tiers, without_action = query(
        settings,
        "select count(*), count(distinct account_id), min(churn_probability), max(churn_probability), "
        "list(distinct risk_tier order by risk_tier), count(*) filter (where recommended_intervention is null) "
        "from scores.customer_churn_scores",
    )[0]
    assert rows == distinct == active > 50
    assert 0.0 <= p_min <= p_max <= 1.0
    assert set(tiers) == {"high", "elevated", "moderate", "low"}
    assert without_action == 0


def test_at_risk_report_lists_every_customer_over_the_threshold(pipeline_run):
    settings, _ = pipeline_run
    expected = query(settings, "select count(*) from scores.customer_churn_scores where churn_probability >= 0.7")[0][0]
    listed, actions, min_p = query(
        settings,
        "select count(*), count(recommended_intervention), min(churn_probability) from marts.rpt_at_risk_customers",
    )[0]
    assert listed == expected == actions
    assert listed == 0 or min_p >= 0.7


def test_churn_drivers_are_sentences_tied_to_values(pipeline_run):
    settings, _ = pipeline_run
    drivers = [r[0] for r in query(
        settings,
        "select top_drivers from scores.customer_churn_scores where risk_tier = 'high' and top_drivers <> ''",
    )]
    assert drivers
    assert all(1 <= len(d.split(" | ")) <= 3 for d in drivers)
    assert any(char.isdigit() for d in drivers for char in d)


def test_each_leads_top_reasons_are_its_raising_reasons_in_rank_order(pipeline_run):
    settings, _ = pipeline_run
    rows = query(
        settings,
        "select s.lead_id, s.top_reasons, coalesce(string_agg(r.reason, ' | ' order by r.rank), '') "
        "from scores.lead_scores s left join scores.score_reasons r "
        "on r.model_name = 'lead_conversion' and r.entity_id = s.lead_id and r.direction = 'raises' "
        "group by all",
    )
    assert len(rows) > 100
    assert sum(1 for _, text, _ in rows if text.count(" | ") == 2) > len(rows) / 4  # many with three reasons
    assert [(lead, text) for lead, text, expected in rows if text != expected] == []


def test_a_run_with_too_few_customers_scores_its_leads_and_says_why_churn_was_not_trained(tmp_path):
    """800 simulated leads give enough leads to train on but too few customers: the run trains and scores the lead
    model, publishes, and names what the churn model lacked, instead of failing as a whole."""
    from core.publish import published_path
    from scorehouse.pipeline import run_all, summary_text
    from simulator import SimulationConfig
    from tests.conftest import isolated_settings

    settings = isolated_settings(tmp_path)
    said = []
    report = run_all(settings, SimulationConfig(leads=800, seed=5), progress=said.append)
    assert list(report.training) == ["lead_conversion"], report.not_trained
    assert "training needs at least" in report.not_trained["customer_churn"]
    assert report.rows["scores.lead_scores"] > 0 and report.rows["scores.customer_churn_scores"] == 0
    assert any(line.startswith("[score churn] skipped: no customer_churn model") for line in said)
    assert f"Model customer_churn was not trained: {report.not_trained['customer_churn']}" in summary_text(settings, report)
    with duckdb.connect(str(published_path(settings)), read_only=True) as con:
        assert con.execute("select count(*) from scores.lead_scores").fetchone()[0] == report.rows["scores.lead_scores"]
