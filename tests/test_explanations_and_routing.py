"""Reasons, sub-scores, next actions, routing with capacity, opt-outs and a control group, segments,
and shadow-mode monitoring over advancing data."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml.registry import load_active
from scorehouse.pipeline import run_all
from scoring.reasons import probability_with_typical
from simulator.leads import SimulationConfig
from tests.conftest import isolated_settings, read


def query(settings, sql: str):
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_every_open_lead_has_reasons_subscores_tier_route_and_action(pipeline_run):
    settings, _ = pipeline_run
    open_leads = query(settings, "select count(*) from scores.lead_scores")[0][0]
    complete = query(
        settings,
        "select count(*) from marts.rpt_lead_worklist where route is not null and tier is not null "
        "and next_action is not null and fit_score between 1 and 99 and engagement_score between 1 and 99",
    )[0][0]
    assert complete == open_leads > 0
    with_reasons = query(
        settings, "select count(distinct entity_id) from scores.score_reasons where model_name = 'lead_conversion'"
    )[0][0]
    assert with_reasons == open_leads
    per_side = query(
        settings,
        "select max(n) from (select entity_id, direction, count(*) n from scores.score_reasons group by all)",
    )[0][0]
    assert per_side <= 3


def test_removing_a_top_factor_moves_the_score_the_stated_way(pipeline_run):
    """Consistency: the factor named as raising the probability does raise it (and lowering lowers it)."""
    settings, _ = pipeline_run
    bundle = read(settings, load_active, "lead_conversion")
    groups = dict(bundle.spec.reason_groups)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        reasons = con.execute(
            "select entity_id, direction, factor from scores.score_reasons "
            "where model_name = 'lead_conversion' and rank = 1 order by entity_id, direction limit 400"
        ).df()
        rows = con.execute(
            "select * from marts.fct_lead_features where as_of_date = (select max(as_of_date) from marts.fct_lead_features)"
        ).df().set_index("lead_id", drop=False)
    assert len(reasons) > 50
    for direction, sign in (("raises", 1), ("lowers", -1)):
        part = reasons[reasons.direction == direction]
        for factor, items in part.groupby("factor"):
            frame = rows.loc[items.entity_id]
            before = bundle.predict_proba(frame)
            after = probability_with_typical(bundle, frame, groups[factor])
            assert np.all(sign * (before - after) > 0), (direction, factor)


def test_worklist_respects_capacity_opt_outs_and_the_control_share(pipeline_run):
    settings, _ = pipeline_run
    over = query(
        settings,
        "select count(*) from (select w.rep_id, count(*) n, max(r.daily_call_capacity) cap "
        "from marts.rpt_lead_worklist w join reference.sales_reps r using (rep_id) where route = 'sales_now' "
        "group by 1 having count(*) > max(r.daily_call_capacity))",
    )[0][0]
    assert over == 0
    assert query(settings, "select count(*) from marts.rpt_lead_worklist where route = 'sales_now' and is_do_not_call")[0][0] == 0
    assert query(settings, "select count(*) from marts.rpt_lead_worklist where route = 'nurture' and is_do_not_email")[0][0] == 0
    controls, queued, capacity = query(
        settings,
        "select count(*) filter (where is_control), count(*) filter (where route = 'sales_now'), "
        "(select sum(daily_call_capacity) from reference.sales_reps) from marts.rpt_lead_worklist",
    )[0]
    assert controls == round(capacity * settings.control_share)
    assert abs(controls / queued - settings.control_share) < 0.03
    low_tier_calls = query(
        settings, "select count(*) from marts.rpt_lead_worklist where route = 'sales_now' and tier in ('C', 'D') and not is_control"
    )[0][0]
    assert low_tier_calls == 0


def test_segments_are_described_with_their_conversion(pipeline_run):
    settings, _ = pipeline_run
    rows = query(settings, "select leads, historical_conversion_rate, description, segments_in_run from marts.rpt_segments")
    assert 3 <= len(rows) <= 6 and rows[0][3] == len(rows)
    assert sum(r[0] for r in rows) == query(settings, "select count(*) from scores.lead_scores")[0][0]
    assert all(r[2] and "on average" in r[2] for r in rows)


@pytest.fixture(scope="module")
def advancing_runs(tmp_path_factory):
    """A run as of 2026-03-15, then the models it trained scoring everything (to 2026-07-01): the features
    rebuilt on all the data, both models scored again, the reports rebuilt, no retraining (monitoring watches a
    model in service)."""
    from ml.features import MODELS
    from scorehouse.pipeline import build_features, build_reports
    from scoring.batch import score_model

    settings = isolated_settings(tmp_path_factory.mktemp("advancing"))
    run_all(settings.with_overrides(observed_through="2026-03-15"), SimulationConfig(leads=3_000, seed=17),
            progress=lambda _m: None)
    build_features(settings)
    for spec in MODELS.values():
        score_model(settings, spec)
    build_reports(settings)
    return settings


def test_monitoring_fills_after_two_runs_on_advancing_data(advancing_runs):
    settings = advancing_runs
    runs = query(settings, "select count(distinct scored_at), min(as_of_date), max(as_of_date) from scores.lead_score_history")[0]
    assert runs[0] == 2 and str(runs[1]) == "2026-03-09" and str(runs[2]) == "2026-06-29"
    deciles = query(
        settings,
        "select decile, leads, model_realised_rate, incumbent_realised_rate from marts.rpt_score_monitoring order by decile",
    )
    # only the March run has matured labels (its 90-day windows end before the data does)
    assert [d[0] for d in deciles] == list(range(1, 11))
    top_model, top_incumbent = deciles[0][2], deciles[0][3]
    assert top_model > np.mean([d[2] for d in deciles])  # the model's top decile converts above average
    assert top_incumbent >= 0
    drift = query(settings, "select count(*), count(*) filter (where variable = 'score') from scores.score_drift")[0]
    assert drift[0] > 10 and drift[1] == 2  # score and features, for both models, against the March run


class _ReadOnly(dict):
    """A row that refuses any column outside the ones a sentence declares."""

    def __init__(self, row: dict, allowed: tuple[str, ...]):
        super().__init__(row)
        self.allowed = set(allowed)

    def __getitem__(self, key):
        assert key in self.allowed, f"reads {key!r}, not declared in SENTENCE_COLUMNS"
        return super().__getitem__(key)


@pytest.mark.parametrize("model", ["lead", "churn"])
def test_sentences_read_only_their_declared_columns_and_dedupe_exactly(pipeline_run, model):
    from ml.dataset import load_labelled_sample, load_latest_snapshot
    from ml.features import MODELS
    from scoring.sentences import SENTENCE_COLUMNS, SENTENCES, describe_many

    settings, _ = pipeline_run
    spec = MODELS[model]
    rows = pd.concat([read(settings, load_latest_snapshot, spec), read(settings, load_labelled_sample, spec, 2_000)],
                     ignore_index=True)
    assert len(rows) > 100
    for factor, _columns in spec.reason_groups:
        one_by_one = [SENTENCES[factor](_ReadOnly(r, SENTENCE_COLUMNS[factor])) for r in rows.to_dict("records")]
        assert list(describe_many(factor, rows)) == one_by_one, factor


@pytest.mark.parametrize("candidate", ["logistic_l1", "random_forest", "extra_trees", "hist_gradient_boosting", "mlp"])
def test_preprocessing_once_per_batch_gives_the_same_explanations(pipeline_run, candidate):
    """scoring/occlusion.py must reproduce plain occlusion for every kind of model training can choose."""
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.frozen import FrozenEstimator

    from ml.dataset import load_labelled_sample
    from ml.features import LEAD_CONVERSION as spec
    from ml.pipeline import CANDIDATES, make_pipeline_for
    from ml.registry import ModelBundle
    from ml.selection import fit_weighted
    from ml.train import baseline_values
    from scoring.occlusion import InputSpaceOcclusion

    settings, _ = pipeline_run
    frame = read(settings, load_labelled_sample, spec, 3_000).sort_values(["as_of_date", "lead_id"])
    fit, held = frame.iloc[:2_000], frame.iloc[2_000:]
    chosen = next(c for c in CANDIDATES if c.name == candidate)
    pipeline = fit_weighted(make_pipeline_for(chosen, chosen.grid[0], spec, 7, 1), fit, spec)
    features = list(spec.features)
    model = CalibratedClassifierCV(FrozenEstimator(pipeline), method="sigmoid").fit(held[features],
                                                                                  held[spec.label].astype(int))
    bundle = ModelBundle("test", spec, model, 0.5, {}, {}, baseline_values(fit, spec))
    occlusion = InputSpaceOcclusion(bundle)
    assert set(occlusion.positions) == set(features)  # every raw column maps to its encoded columns
    assert occlusion.matches(bundle, held, [columns for _, columns in spec.reason_groups])


def test_scoring_in_batches_gives_the_rows_of_one_batch(pipeline_run, monkeypatch):
    """Batch boundaries only bound memory: every score, sub-score, reason and route is the same when the
    snapshot is scored in small uneven batches as in one."""
    import scoring.batch
    import scoring.explain
    from ml.features import LEAD_CONVERSION

    settings, _ = pipeline_run
    monkeypatch.setattr(scoring.explain, "BATCH_ROWS", 10**9)
    whole = read(settings, scoring.batch.score_snapshot, settings, LEAD_CONVERSION)
    monkeypatch.setattr(scoring.explain, "BATCH_ROWS", 333)
    batched = read(settings, scoring.batch.score_snapshot, settings, LEAD_CONVERSION)
    assert len(whole.scores) > 3 * 333  # several batches, the last one partial
    pd.testing.assert_frame_equal(whole.scores.drop(columns="scored_at"), batched.scores.drop(columns="scored_at"))
    # reason rows come batch by batch, each batch's raising ones first: the same rows in another order
    key = ["entity_id", "direction", "rank"]
    pd.testing.assert_frame_equal(whole.reasons.drop(columns="scored_at").sort_values(key, ignore_index=True),
                                  batched.reasons.drop(columns="scored_at").sort_values(key, ignore_index=True))


def test_sentences_do_not_flip_on_the_last_bits_of_a_parallel_sum():
    """Two builds of the same data can differ by about 1e-14 in a summed feature (DuckDB adds doubles in parallel
    in no fixed order); the words must be the same for both."""
    from scoring.sentences import SENTENCES

    for value in (49.5, 12.5, 0.5):
        texts = {SENTENCES["feature_usage"]({"feature_usage_30d": value + noise, "feature_usage_prev_30d": value - noise})
                 for noise in (0.0, 3e-14, -3e-14)}
        assert len(texts) == 1, texts
    assert SENTENCES["feature_usage"]({"feature_usage_30d": 49.6, "feature_usage_prev_30d": 48.4}) == \
        "Feature usage index 50 of 100 (was 48)"
