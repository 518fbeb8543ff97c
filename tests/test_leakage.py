"""The leakage audit on evidence: planted leaks of each kind are caught, honest strong columns are not."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml.dataset import load_labelled
from ml.features import LEAD_CONVERSION
from ml.flat import FlatExport, run_flat
from ml.leakage import EXCLUDED, WARNED, audit, decide, warn_dominant
from ml.train import _quick_auc
from simulator import SimulationConfig, simulate
from tests.conftest import isolated_settings, read
from tests.time_harness import build_feature_mart, land

N = 3_000


def _honest(seed: int = 0) -> tuple[pd.DataFrame, np.ndarray, np.random.Generator]:
    """Leads with three honest, moderately strong signals and some noise."""
    rng = np.random.default_rng(seed)
    intent = rng.normal(0, 1, N)
    y = (rng.random(N) < 1 / (1 + np.exp(-(-0.8 + 1.0 * intent)))).astype(int)
    frame = pd.DataFrame({
        "lead_ref": [f"L{i:05d}" for i in range(N)],
        "web_visits": rng.poisson(np.exp(0.8 + 0.35 * intent)).astype(float),
        "source": np.where(intent + rng.normal(0, 1.5, N) > 0.5, "referral", rng.choice(["ads", "organic"], N)),
        "seniority": rng.choice(["manager", "director", "analyst"], N),
        "country": rng.choice(["US", "DE", "IN", "BR"], N),
        "emails_opened": rng.poisson(np.exp(0.5 + 0.3 * intent)).astype(float),
    })
    return frame, y, rng


def _plant(kind: str, y: np.ndarray, rng: np.random.Generator) -> pd.Series:
    n = len(y)
    if kind == "during_outcome":  # how long the deciding call lasted: strong, not perfect
        return pd.Series(np.round(rng.gamma(2.0, 2.0 + 4.5 * y), 1))
    if kind == "same_session":  # a value computed from the session's own purchases
        return pd.Series(np.where(y == 1, rng.exponential(40, n), 0) * (rng.random(n) < 0.75)
                         + rng.exponential(1.0, n) * (rng.random(n) < 0.3))
    if kind == "positives_only":  # filled in by sales for won deals only
        return pd.Series(np.where((y == 1) & (rng.random(n) < 0.9), rng.choice(["budget ok", "champion", "fit"], n), None))
    if kind == "perfect":
        return pd.Series(np.where(y == 1, rng.uniform(1_000, 9_000, n), 0.0))
    if kind == "identifier":
        return pd.Series(rng.permutation(n) + 10_000)
    raise ValueError(kind)


PLANTED = [("during_outcome", WARNED), ("same_session", WARNED), ("positives_only", EXCLUDED), ("perfect", EXCLUDED),
           ("identifier", EXCLUDED)]


def _write_flat(path: Path, frame: pd.DataFrame, y: np.ndarray) -> Path:
    frame.assign(outcome=np.where(y == 1, "yes", "no")).to_csv(path, index=False)
    return path


@pytest.mark.parametrize("kind,level", PLANTED, ids=[k for k, _ in PLANTED])
def test_a_planted_leak_in_a_flat_file_is_caught(tmp_path, kind, level):
    frame, y, rng = _honest()
    frame["planted"] = _plant(kind, y, rng)
    settings = isolated_settings(tmp_path)
    result = run_flat(settings, FlatExport(_write_flat(tmp_path / "leads.csv", frame, y), "lead_ref", "outcome", "t"))
    report = result.audit.set_index("column_name")
    assert report.at["planted", "level"] == level, report.at["planted", "flagged_reason"]
    honest = ["web_visits", "source", "seniority", "country", "emails_opened"]
    assert report.loc[honest, "level"].isna().all(), report.loc[honest, "flagged_reason"].dropna().to_dict()
    if level == WARNED:  # kept, with the model's test figures with and without it beside the reason
        assert "planted" not in result.excluded and result.warned == ["planted"]
        assert report.at["planted", "auc_with"] - report.at["planted", "auc_without"] > 0.05
        assert any("planted" in line and "--drop-column" in line for line in result.audit_lines())
        dropped = run_flat(isolated_settings(tmp_path / "again"),
                           FlatExport(tmp_path / "leads.csv", "lead_ref", "outcome", "t", drop_columns=("planted",)))
        assert "planted" in dropped.excluded and not dropped.warned
        assert dropped.metrics[dropped.winner]["roc_auc"] < result.metrics[result.winner]["roc_auc"] - 0.03
    else:
        assert "planted" in result.excluded
        leaky = result.metrics_with_flagged["roc_auc"]
        honest_auc = result.metrics[result.winner]["roc_auc"]
        note = result.leak_note()
        assert (f"{leaky:.3f}" in note) and (("leakage, not skill" in note) == (leaky - honest_auc >= 0.005))
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        stored = con.execute("select level, fill_auc, auc_with, is_excluded from ml.leakage_audit "
                             "where model_name = 'flat_t' and column_name = 'planted'").fetchall()
    assert stored and stored[0][0] == level and stored[0][3] == (level == EXCLUDED)


def test_a_declared_after_outcome_column_is_never_used_and_names_still_count(tmp_path):
    frame, y, rng = _honest(1)
    frame["reviewed_by"] = rng.choice(["ann", "bo"], N)  # harmless on its face, declared post-outcome
    frame["lead_quality"] = rng.choice(["high", "low"], N)
    result = run_flat(isolated_settings(tmp_path), FlatExport(_write_flat(tmp_path / "f.csv", frame, y), "lead_ref",
                                                              "outcome", "d", after_outcome=("reviewed_by",)))
    report = result.audit.set_index("column_name")
    assert "declared known only after the outcome" in report.at["reviewed_by", "flagged_reason"]
    assert {"reviewed_by", "lead_quality"} <= set(result.excluded)
    with pytest.raises(ValueError, match="no column 'nope' to leave out"):
        run_flat(isolated_settings(tmp_path / "x"), FlatExport(tmp_path / "f.csv", "lead_ref", "outcome", "d",
                                                                drop_columns=("nope",)))


def test_a_field_filled_only_once_the_outcome_is_known_is_excluded(tmp_path):
    """Open rows (no outcome yet) show it: a field blank on every open row and filled on the closed ones is
    written at closing, whatever it looks like on the closed rows alone (here it is filled for both classes)."""
    frame, y, rng = _honest(2)
    state = np.where(rng.random(N) < 0.25, "open", np.where(y == 1, "yes", "no"))
    frame["closing_note"] = np.where(state == "open", None, rng.choice(["call done", "emailed", "met"], N))
    frame.assign(outcome=state).to_csv(tmp_path / "f.csv", index=False)
    result = run_flat(isolated_settings(tmp_path), FlatExport(tmp_path / "f.csv", "lead_ref", "outcome", "o",
                                                              open_labels=("open",)))
    report = result.audit.set_index("column_name")
    assert result.rows_open == (state == "open").sum() and "closing_note" in result.excluded
    assert "filled only once the outcome is known" in report.at["closing_note", "flagged_reason"]
    assert report.drop(index="closing_note").level.isna().all()


def test_one_class_values_need_evidence_not_just_purity():
    """A value seen only with one class is a leak when the base rate says the other class should have shown up
    many times; a rare or merely strong value is not."""
    rng = np.random.default_rng(3)
    y = (rng.random(N) < 0.3).astype(int)
    tag = np.where((y == 1) & (rng.random(N) < 0.2), "closed by partner", rng.choice(["a", "b", "c"], N))
    rare = np.where(rng.random(N) < 0.004, "rare", "common")  # ~12 rows: too few to tell
    strong = np.where(rng.random(N) < np.where(y == 1, 0.5, 0.1), "referral", "other")  # 5x, not one class
    frame = pd.DataFrame({"tag": tag, "rare": rare, "strong": strong})
    report = audit(frame, y, list(frame.columns), check_names=False).set_index("column_name")
    assert report.at["tag", "level"] == EXCLUDED and report.at["tag", "one_class_value"] == "closed by partner"
    assert pd.isna(report.at["rare", "level"]) and pd.isna(report.at["strong", "level"])


@pytest.mark.parametrize("kind,level", PLANTED, ids=[k for k, _ in PLANTED])
def test_a_planted_leak_in_the_simulated_lead_mart_is_caught(pipeline_run, kind, level):
    """The same kinds of leak, planted in the simulator's labelled mart rows beside its honest features (which
    must stay unflagged), through the training audit's quick out-of-time model."""
    settings, _ = pipeline_run
    spec = LEAD_CONVERSION
    # every labelled row, in date order (a sample would differ from run to run: DuckDB samples in parallel)
    rows = read(settings, load_labelled, replace(spec, value_sql=None)).frame()
    y = rows[spec.label].astype(int).to_numpy()
    rows["planted"] = _plant(kind, y, np.random.default_rng(5)).to_numpy()
    role = "categorical" if kind == "positives_only" else "numeric"
    planted = replace(spec, **{role: getattr(spec, role) + ("planted",)})
    report = audit(rows, y, list(planted.features), check_names=False)
    report = decide(warn_dominant(report, _quick_auc(settings, planted, rows)), set(), set()).set_index("column_name")
    assert report.at["planted", "level"] == level, report.at["planted", "flagged_reason"]
    others = report.drop(index="planted")
    assert (others.level == EXCLUDED).sum() == 0, others.flagged_reason.dropna().to_dict()


# Honest columns the audit may warn about on simulated data, and why that is expected.
EXPECTED_WARNINGS = {
    ("customer_churn", "feature_usage_30d"):
        "a customer's hidden health shows first in feature usage (simulator/customers.py: usage follows health at "
        "once, churn 30 days later), so this one honest column carries most of the churn model",
}


def test_the_simulators_marts_exclude_nothing_and_warn_only_where_expected(pipeline_run):
    """Point-in-time features of the simulator are not leaks: nothing is excluded, and a warning falls only on a
    column named above with its reason."""
    settings, _ = pipeline_run
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        rows = dict(con.execute("select model_name, count(*) from ml.leakage_audit group by 1").fetchall())
        flagged = con.execute("select model_name, column_name, level from ml.leakage_audit "
                              "where model_name in ('lead_conversion', 'customer_churn') and level is not null").fetchall()
    assert rows.get("lead_conversion", 0) > 40 and rows.get("customer_churn", 0) > 15
    assert all(level == WARNED and (model, column) in EXPECTED_WARNINGS for model, column, level in flagged), flagged


def test_a_history_table_with_post_outcome_rows_stamped_early_is_caught(tmp_path):
    """The mart path builds every feature as of its date, so a history row set after the outcome can only leak
    when the export stamps it too early. Plant that: every converted lead's closing call (decision maker reached,
    budget confirmed), stamped an hour after the lead was created. The features it feeds are excluded."""
    raw = tmp_path / "raw"
    simulate(SimulationConfig(leads=1_500, seed=23, chunk_size=1_500), raw)
    with duckdb.connect() as con:
        planted = con.execute(f"""
            select 'PLANT' || l.lead_id as activity_id, l.lead_id, 'Call' as activity_type,
                   true as decision_maker_reached, 'Confirmed' as budget_status,
                   l.created_at + interval 1 hour as occurred_at, l.created_at + interval 2 hour as _loaded_at
            from read_parquet('{raw}/crm_leads/*.parquet') l
            where l.lead_id in (select lead_id from read_parquet('{raw}/crm_lead_status_history/*.parquet')
                                where lower(trim(status)) = 'converted')""").df()
    settings = isolated_settings(tmp_path)
    land(settings, raw, extra_rows={"crm_activities": planted})
    build_feature_mart(settings)
    spec = replace(LEAD_CONVERSION, value_sql=None)  # only the feature mart is built here
    frame = read(settings, load_labelled, spec).frame()
    y = frame[spec.label].astype(int).to_numpy()
    report = decide(warn_dominant(audit(frame, y, list(spec.features), check_names=False),
                                  _quick_auc(settings, spec, frame)), set(), set()).set_index("column_name")
    for column in ("budget_status", "has_reached_decision_maker"):
        assert report.at[column, "level"] == EXCLUDED and "occurs almost only with label 0" in \
            report.at[column, "flagged_reason"], report.at[column, "flagged_reason"]


def test_the_quick_model_gives_no_figure_when_a_period_has_one_class(tmp_path):
    """Sparse early conversions must not crash the audit: without both classes on each side of its time cut the
    quick model measures nothing, and nothing is warned about on its account."""
    rng = np.random.default_rng(4)
    frame = pd.DataFrame({"as_of_date": pd.date_range("2025-01-01", periods=400, freq="D"),
                          "visits": rng.poisson(3, 400).astype(float), "pages": rng.poisson(5, 400).astype(float)})
    frame["label"] = (np.arange(400) >= 380).astype(int)  # every positive is late
    spec = replace(LEAD_CONVERSION, numeric=("visits", "pages"), categorical=(), boolean=(), target_encoded=(),
                   reason_groups=(), label="label")
    settings = isolated_settings(tmp_path)
    quick = _quick_auc(settings, spec, frame)
    assert np.isnan(quick(["visits", "pages"]))
    report = warn_dominant(audit(frame, frame.label.to_numpy(), ["visits", "pages"], check_names=False), quick)
    assert report.level.isna().all()
