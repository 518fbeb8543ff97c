"""The leakage audit flags identifiers, near-perfect single predictors and post-outcome names."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd

from ml.leakage import audit


def test_audit_flags_what_it_should_and_nothing_else():
    rng = np.random.default_rng(0)
    n = 2_000
    y = (rng.random(n) < 0.3).astype(int)
    frame = pd.DataFrame({
        "row_id": np.arange(n),
        "outcome_copy": np.where(y == 1, "won", "lost"),
        "lead_quality": rng.choice(["high", "low"], n),
        "pages_viewed": rng.poisson(3 + 2 * y),
        "country": rng.choice(["US", "DE", "IN"], n),
    })
    report = audit(frame, y, list(frame.columns), check_names=True).set_index("column_name")
    assert "identifier" in report.at["row_id", "flagged_reason"]
    assert "near-perfect" in report.at["outcome_copy", "flagged_reason"]
    assert "after the outcome" in report.at["lead_quality", "flagged_reason"]
    assert pd.isna(report.at["pages_viewed", "flagged_reason"]) and report.at["pages_viewed", "single_column_auc"] > 0.6
    assert pd.isna(report.at["country", "flagged_reason"])
    names_off = audit(frame, y, ["lead_quality"], check_names=False)
    assert names_off.flagged_reason.isna().all()


def test_mart_models_are_audited_before_training(pipeline_run):
    settings, _ = pipeline_run
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        rows = dict(con.execute(
            "select model_name, count(*) from ml.leakage_audit group by 1").fetchall())
        excluded = con.execute("select count(*) from ml.leakage_audit where is_excluded").fetchall()[0][0]
    assert rows.get("lead_conversion", 0) > 40 and rows.get("customer_churn", 0) > 15
    assert excluded == 0  # point-in-time features of the simulator are not leaks
