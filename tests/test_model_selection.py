"""Candidate selection, threshold policies, champion/challenger and the model report."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from sklearn.feature_selection import VarianceThreshold
from sklearn.impute import SimpleImputer
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, TargetEncoder
from threadpoolctl import threadpool_limits

import ml.dataset
import ml.train
from ml.dataset import load_labelled
from ml.features import CUSTOMER_CHURN, LEAD_CONVERSION
from ml.importance import permutation_importances, row_orders
from ml.pipeline import (
    CANDIDATES,
    MISSING,
    CategoryCodes,
    DropNearConstant,
    RowChunkedPipeline,
    in_row_chunks,
    make_pipeline_for,
)
from ml.registry import load_active
from ml.selection import (
    MAX_FOLD_ROWS,
    RUNG_FACTOR,
    CandidateResult,
    _sample,
    _survivors,
    choose_winner,
    evaluate_candidates,
    fit_weighted,
    rolling_folds,
    rung_caps,
)
from ml.thresholds import choose_threshold
from ml.train import train_model
from tests.conftest import copy_of_built_run, read

CHART_COUNT = 7


def query(settings, sql: str):
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_all_five_candidates_are_compared_out_of_time(pipeline_run):
    settings, report = pipeline_run
    for training in report.training.values():
        rows = dict(query(
            settings,
            f"select segment, value from ml.model_metrics where model_version = '{training['model_version']}' "
            "and split = 'cv' and metric = 'pr_auc'",
        ))
        assert set(rows) == {f"candidate:{c.name}" for c in CANDIDATES}
        assert all(0 < v <= 1 for v in rows.values())
        assert training["algorithm"] in {c.name for c in CANDIDATES}


def test_boosting_on_one_thread_fits_the_model_it_fits_on_two():
    """Selection fits gradient boosting on one OpenMP thread below `one_thread_below` training rows (faster there);
    that must not change the model."""
    boosting = next(c for c in CANDIDATES if c.name == "hist_gradient_boosting")
    assert boosting.one_thread_below > 10_000 and all(c.one_thread_below == 0 for c in CANDIDATES if c is not boosting)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3_000, 20))
    y = (x[:, 0] + x[:, 1] * x[:, 2] + rng.normal(size=3_000) > 1.2).astype(int)
    scores = []
    for threads in (1, 2):
        with threadpool_limits(limits=threads, user_api="openmp"):
            model = boosting.build(boosting.grid[0], 7, threads).fit(x, y)
        scores.append(model.predict_proba(x)[:, 1])
    assert model.n_iter_ > 1
    np.testing.assert_array_equal(scores[0], scores[1])


def test_shared_fold_preparation_scores_exactly_like_whole_pipelines(pipeline_run):
    """Selection fits each fold's preparation once per scaling choice; every score must equal the one a whole
    pipeline fitted on the same rows gives."""
    settings, _ = pipeline_run
    spec = LEAD_CONVERSION
    # every third row (all dates still covered): equality does not need the whole mart, and the test stays short
    frame = read(settings, load_labelled, spec).frame().iloc[::3].reset_index(drop=True)
    horizon = int(getattr(settings, spec.horizon_setting))
    chosen = tuple(c for c in CANDIDATES if c.name in ("logistic_l1", "extra_trees"))
    assert {c.scale for c in chosen} == {True, False}
    settled = []
    results = evaluate_candidates(frame, spec, horizon, seed=7, threads=1, candidates=chosen,
                                  baseline_settled=settled.append)
    assert [r.name for r in results] == [c.name for c in chosen]
    rungs = len({s["rows"] for s in results[0].searched})
    # the baseline's grid point is announced once the first rung has chosen it, and it is the one the selection
    # ends with (its final fit may start then); a single rung chooses it at the end, where nothing is gained
    assert rungs > 1 and settled == [results[0].params]
    folds = rolling_folds(frame[spec.date_column], horizon, 3)
    for result, candidate in zip(results, chosen):
        first_rung = min(s["rows"] for s in result.searched)
        assert [s["params"] for s in result.searched if s["rows"] == first_rung] == list(candidate.grid)
        assert len(result.fold_pr_auc) == len(folds)
        for fold, (train, validation) in enumerate(folds):
            whole = fit_weighted(make_pipeline_for(candidate, result.params, spec, 7, 1),
                                 frame.iloc[_sample(train, result.rows, 7 + fold)], spec)
            held = frame[validation]
            p = whole.predict_proba(held[list(spec.features)])[:, 1]
            y = held[spec.label].astype(int)
            assert average_precision_score(y, p) == pytest.approx(result.fold_pr_auc[fold], abs=1e-12)
            assert roc_auc_score(y, p) == pytest.approx(result.fold_roc_auc[fold], abs=1e-12)


@pytest.mark.parametrize("as_enum", [True, False], ids=["text read as enums", "text made categories per chunk"])
def test_training_rows_arrive_with_text_as_categories_and_nothing_else_changed(pipeline_run, monkeypatch, as_enum):
    """Training rows are fetched in chunks with text turned into categories (to bound memory), on DuckDB by
    reading it as ENUMs, or (a column with too many values) chunk by chunk: every value must equal a plain
    fetch's, even when a category first appears in a later chunk; the entity key stays text. Both ways give the
    same frame."""
    settings, _ = pipeline_run
    spec = LEAD_CONVERSION
    monkeypatch.setattr(ml.dataset, "FETCH_VECTORS", 1)  # 2,048-row chunks: many of them on the small run
    if not as_enum:
        monkeypatch.setattr(ml.dataset, "MAX_ENUM_VALUES", 0)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        casts = ml.dataset._enum_casts(con, spec, f"m.{spec.observed_flag}", keep_text=spec.entity_key)
    assert bool(casts) == as_enum
    frame = read(settings, load_labelled, spec).frame()
    if as_enum:
        monkeypatch.setattr(ml.dataset, "MAX_ENUM_VALUES", 0)
        pd.testing.assert_frame_equal(frame, read(settings, load_labelled, spec).frame(), check_exact=True)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        plain = con.execute(f"select {ml.dataset._columns(spec)} from {spec.mart} "
                            f"where {spec.observed_flag} and {spec.label} is not null "
                            f"order by {spec.date_column}, {spec.entity_key}").df()
    assert len(frame) == len(plain) > 5 * 2048
    text = [c for c in plain.columns if pd.api.types.is_string_dtype(plain[c]) and c != spec.entity_key]
    assert set(spec.categorical) <= set(text) and set(spec.target_encoded) <= set(text)
    assert all(isinstance(frame[c].dtype, pd.CategoricalDtype) for c in text)
    assert not isinstance(frame[spec.entity_key].dtype, pd.CategoricalDtype)
    late = [c for c in text if set(plain[c].iloc[2048:].dropna()) - set(plain[c].iloc[:2048].dropna())]
    assert late, "no text value first appears after the first chunk: the union of chunks is not exercised"
    for column in plain.columns:
        mine = frame[column].astype(object) if column in text else frame[column]
        theirs = plain[column].astype(object) if column in text else plain[column]
        pd.testing.assert_series_equal(mine, theirs, check_names=False, check_dtype=column not in text)


def test_models_fitted_on_categories_score_like_models_fitted_on_text(pipeline_run):
    """Scoring reads text, training reads categories: each pipeline must learn the same from either."""
    settings, _ = pipeline_run
    spec = LEAD_CONVERSION
    frame = read(settings, load_labelled, spec).frame().head(6000)
    as_text = frame.copy()
    for column in frame.columns:
        if isinstance(frame[column].dtype, pd.CategoricalDtype):
            as_text[column] = frame[column].astype(object).astype("str")
    assert any(isinstance(frame[c].dtype, pd.CategoricalDtype) for c in spec.features)
    for name in ("logistic_l1", "hist_gradient_boosting"):
        candidate = next(c for c in CANDIDATES if c.name == name)
        on_categories, on_text = (fit_weighted(make_pipeline_for(candidate, candidate.grid[0], spec, 7, 1), rows, spec)
                                  for rows in (frame, as_text))
        np.testing.assert_allclose(on_categories.predict_proba(as_text[list(spec.features)])[:, 1],
                                   on_text.predict_proba(as_text[list(spec.features)])[:, 1], rtol=0, atol=1e-12)


def test_category_codes_give_the_encoders_what_imputed_text_gave_them(pipeline_run):
    """Text columns reach the encoders as integer codes; each encoder must produce the very matrix it produced
    from the text with missing values imputed (fitted on categories as training reads them, applied to text as
    scoring reads it, with values fit never saw)."""
    settings, _ = pipeline_run
    spec = LEAD_CONVERSION
    frame = read(settings, load_labelled, spec).frame()
    fit, later = frame.iloc[:6000], frame.iloc[6000:]
    text_columns = list(spec.categorical + spec.target_encoded + spec.frequent_values)
    unseen = [c for c in text_columns if set(later[c].dropna()) - set(fit[c].dropna())]
    assert unseen, "no value of the later rows is new to the fit rows: unknown values are not exercised"
    as_text = later[text_columns].astype(object).astype("str").where(later[text_columns].notna())
    y = fit[spec.label].astype(int).to_numpy()
    encoders = {
        "one-hot": lambda: OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=20, sparse_output=False),
        "frequent values": lambda: OneHotEncoder(handle_unknown="infrequent_if_exist", min_frequency=0.01,
                                                 max_categories=20, sparse_output=False),
        "target": lambda: TargetEncoder(target_type="binary", smooth=50.0, cv=StratifiedKFold(5)),
    }
    for name, encoder in encoders.items():
        imputed = make_pipeline(SimpleImputer(strategy="constant", fill_value=MISSING), encoder())
        coded = make_pipeline(CategoryCodes(), encoder())
        np.testing.assert_array_equal(coded.fit_transform(fit[text_columns], y),
                                      imputed.fit_transform(fit[text_columns], y), err_msg=name)
        np.testing.assert_array_equal(coded.transform(as_text), imputed.transform(as_text), err_msg=name)


def test_dropping_near_constant_columns_hands_on_the_matrix_when_all_vary_and_drops_like_variance_threshold():
    rng = np.random.default_rng(3)
    varied = rng.normal(size=(200, 5))
    kept_all = DropNearConstant(1e-8).fit(varied)
    assert kept_all.transform(varied) is varied  # no copy
    with_constant = np.column_stack([varied, np.full(200, 2.0), varied[:, :1]])
    mine, theirs = DropNearConstant(1e-8).fit(with_constant), VarianceThreshold(1e-8).fit(with_constant)
    assert mine.transform(with_constant).shape == (200, 6)
    np.testing.assert_array_equal(mine.transform(with_constant), theirs.transform(with_constant))
    np.testing.assert_array_equal(mine.fit_transform(with_constant), theirs.fit_transform(with_constant))


def test_pipelines_predict_large_frames_in_pieces_as_they_would_whole(pipeline_run):
    settings, _ = pipeline_run
    spec = LEAD_CONVERSION
    frame = read(settings, load_labelled, spec).frame()
    baseline = next(c for c in CANDIDATES if c.name == "logistic_l1")
    model = fit_weighted(make_pipeline_for(baseline, baseline.grid[0], spec, 7, 1), frame.head(6000), spec)
    assert isinstance(model, RowChunkedPipeline)
    rows = frame[list(spec.features)]
    whole = super(RowChunkedPipeline, model).predict_proba(rows)
    # equal up to the last bit or two: the matrix products sum in another order on matrices of another height
    np.testing.assert_allclose(in_row_chunks(model.predict_proba, rows, rows=1000), whole, rtol=0, atol=1e-12)
    np.testing.assert_allclose(model.predict_proba(rows), whole, rtol=0, atol=1e-12)
    assert len(rows) > 1000


def test_rolling_folds_keep_the_embargo():
    dates = pd.Series(pd.date_range("2025-01-06", periods=60, freq="7D").repeat(10))
    for train, validation in rolling_folds(dates, horizon_days=90, folds=3):
        assert pd.to_datetime(dates[train]).max() + pd.Timedelta(days=90) <= pd.to_datetime(dates[validation]).min()


def test_winner_rule_prefers_consistent_pr_auc_gains_then_roc_auc():
    base = CandidateResult("logistic_l1", {}, [0.20, 0.20], [0.80, 0.80])
    steady = CandidateResult("steady", {}, [0.30, 0.30], [0.80, 0.80])
    close = CandidateResult("close", {}, [0.297, 0.299], [0.85, 0.85])  # within 0.005 of the best, better ROC-AUC
    lucky = CandidateResult("lucky", {}, [0.10, 0.60], [0.90, 0.90])  # best on average, loses a fold to the baseline
    assert choose_winner([base, steady, close, lucky]).name == "close"
    assert choose_winner([base, lucky]).name == "logistic_l1"
    assert choose_winner([base, steady]).name == "steady"


def test_halving_rungs_end_at_the_rows_the_folds_have():
    ninth, third = MAX_FOLD_ROWS // RUNG_FACTOR ** 2, MAX_FOLD_ROWS // RUNG_FACTOR
    assert rung_caps([ninth - 1, 100]) == [ninth]  # small data: one rung on every row, no halving
    assert rung_caps([third, ninth + 1]) == [ninth, third]
    assert rung_caps([5 * MAX_FOLD_ROWS]) == [ninth, third, MAX_FOLD_ROWS]


def test_halving_keeps_the_best_baseline_point_and_a_third_of_the_rest():
    scored = [CandidateResult("logistic_l1", {"C": c}, [auc], [0.5]) for c, auc in ((1, 0.01), (2, 0.02), (3, 0.02))]
    scored += [CandidateResult(f"challenger_{k}", {}, [k / 10], [0.5]) for k in range(7)]
    kept = _survivors(scored, "logistic_l1")
    # the baseline goes on even when every challenger beats it; of its equal points, the first in grid order
    assert [(t.name, t.params) for t in kept] == [("logistic_l1", {"C": 2}), ("challenger_6", {}),
                                                  ("challenger_5", {}), ("challenger_4", {})]


def test_only_grid_points_measured_on_the_baselines_rows_can_win():
    base = CandidateResult("logistic_l1", {}, [0.20, 0.20], [0.80, 0.80], rows=60_000)
    early = CandidateResult("dropped_early", {}, [0.50, 0.50], [0.90, 0.90], rows=6_666)
    assert choose_winner([base, early]).name == "logistic_l1"


@pytest.fixture(scope="module")
def scored_sample():
    rng = np.random.default_rng(0)
    y = rng.random(5_000) < 0.1
    p = np.clip(0.1 + 0.5 * y + rng.normal(0, 0.2, 5_000), 0, 1)
    dates = pd.Series(pd.date_range("2025-01-06", periods=10, freq="7D").repeat(500))
    return y.astype(int), p, dates


def test_threshold_policies_meet_their_targets(scored_sample):
    y, p, dates = scored_sample
    for policy, check in (
        ("precision:0.6", lambda flagged: y[flagged].mean() >= 0.6),
        ("recall:0.8", lambda flagged: y[flagged].sum() / y.sum() >= 0.8),
        ("capacity:50", lambda flagged: abs(flagged.sum() / 10 - 50) <= 5),
    ):
        threshold = choose_threshold(policy, y, p, dates)
        assert check(p >= threshold), policy
    f1 = choose_threshold("f1", y, p, dates)
    assert 0 < f1 < 1
    with pytest.raises(ValueError, match="unknown threshold policy"):
        choose_threshold("top:5", y, p, dates)


def test_threshold_curve_is_stored(pipeline_run):
    settings, report = pipeline_run
    version = report.training["lead_conversion"]["model_version"]
    rows, low, high = query(
        settings,
        f"select count(*), min(share_flagged), max(share_flagged) from ml.threshold_curve where model_version = '{version}'",
    )[0]
    assert rows > 20 and low < 0.05 and high > 0.95


def test_report_has_every_chart_with_data(pipeline_run):
    _, report = pipeline_run
    for training in report.training.values():
        text = Path(training["report"]).read_text(encoding="utf-8")
        points = [int(n) for n in re.findall(r'data-points="(\d+)"', text)]
        assert len(points) == CHART_COUNT and all(n > 1 for n in points), points
        for name in CANDIDATES:
            assert name.name in text
        assert "http://" not in text.replace("http://www.w3.org/2000/svg", "") and "<script" not in text


def test_report_renders_in_headless_chromium(pipeline_run, tmp_path):
    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if browser is None:
        pytest.skip("Chromium is not installed")
    _, report = pipeline_run
    path = report.training["lead_conversion"]["report"]
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([browser, *flags, "--dump-dom", f"file://{path}"], capture_output=True, text=True, timeout=120,
                         check=False)
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert len(re.findall(r"<svg[^>]*data-points=\"[1-9]", dom.stdout)) == CHART_COUNT
    shot = tmp_path / "report.png"
    subprocess.run([browser, *flags, "--window-size=1360,2400", f"--screenshot={shot}", f"file://{path}"],
                   capture_output=True, timeout=120, check=False)
    assert shot.exists() and shot.stat().st_size > 20_000


def test_a_challenger_that_does_not_beat_the_champion_is_registered_but_not_promoted(pipeline_run, monkeypatch,
                                                                                    tmp_path):
    """Retrained on the same rows, the lead model is the champion again: registered, not promoted. It is retrained
    with the audit's dominance check and the baseline's final fit in a worker process beside the selection (as
    on large data: ml.train._Beside), which must change no metric and no audit figure of the champion's
    in-process training."""
    report = pipeline_run[1]
    settings = copy_of_built_run(pipeline_run[0].warehouse_path.parent, tmp_path / "copy")  # others read the registry
    champion = report.training["lead_conversion"]["model_version"]
    audit_sql = ("select column_name, single_column_auc, auc_with, auc_without, level, flagged_reason, is_excluded "
                 "from ml.leakage_audit where model_name = 'lead_conversion' order by column_name")
    audit_before = query(settings, audit_sql)
    monkeypatch.setattr(ml.train, "BESIDE_MIN_ROWS", 0)
    done_beside = []
    result = ml.train._Beside.result
    monkeypatch.setattr(ml.train._Beside, "result", staticmethod(
        lambda future, fallback, say: done_beside.append(future is not None) or result(future, fallback, say)))
    challenger = train_model(settings.with_overrides(duckdb_threads=2), LEAD_CONVERSION)
    assert done_beside == [True, True]  # the dominance check, then the baseline's fit
    assert not challenger["promoted"] and "not promoted" in challenger["promotion"]
    rows = dict(query(settings, "select model_version, is_active from ml.model_registry "
                                "where model_name = 'lead_conversion'"))
    assert rows[champion] is True and rows[challenger["model_version"]] is False
    metrics = [sorted(query(settings, "select split, segment, metric, value from ml.model_metrics "
                                      f"where model_version = '{version}' and segment <> 'ground_truth'"))
               for version in (champion, challenger["model_version"])]  # the pipeline also scored the simulator's truth
    assert len(metrics[0]) > 50 and metrics[0] == metrics[1]
    audit_after = query(settings, audit_sql)
    assert sum(row[2] is not None for row in audit_before) >= 3  # quick-model figures to compare
    assert audit_after == audit_before


def test_training_refuses_a_mart_built_for_another_horizon(pipeline_run):
    """The mart states the horizon its labels were built for; a model trained for another one would learn the
    wrong question, so training stops before it reads a row."""
    settings, _ = pipeline_run
    with pytest.raises(ValueError, match="built with label_horizon_days 90 but lead_conversion is trained for 60"):
        train_model(settings.with_overrides(lead_horizon_days=60), LEAD_CONVERSION)


@pytest.mark.parametrize("spec", [LEAD_CONVERSION, CUSTOMER_CHURN], ids=lambda s: s.name)
def test_permutation_importance_on_the_prepared_matrix_equals_shuffling_raw_columns(pipeline_run, spec):
    """Importances shuffle each raw column's block of prepared columns instead of re-running the preparation;
    every figure must equal the one from shuffling the raw column and running the whole calibrated pipeline."""
    settings, _ = pipeline_run
    bundle = read(settings, load_active, spec.name)
    rows = read(settings, load_labelled, spec).frame().sample(n=400, random_state=3)
    features, y = list(bundle.spec.features), rows[spec.label].to_numpy()
    orders = row_orders(len(rows), 2, seed=5)
    fast = permutation_importances(bundle.estimator, rows, y, features, orders)
    whole = permutation_importances(bundle.estimator, rows, y, features, orders, whole_pipeline=True)
    assert list(fast.index) == list(whole.index) == features
    np.testing.assert_allclose(fast.to_numpy(), whole.to_numpy(), rtol=0, atol=1e-12)
    assert (whole.abs() > 1e-6).sum() >= 3  # shuffles that move the score: the comparison is not of zeros


def test_work_beside_is_done_here_when_its_worker_process_dies():
    """A worker killed (for memory, say) loses nothing: the work is done in the training process instead, with a
    warning; disabled, nothing is started at all."""
    said = []
    beside = ml.train._Beside(enabled=True)
    try:
        future = beside.submit(os._exit, 3)
        assert beside.result(future, lambda: "done here", said.append) == "done here"
    finally:
        beside.close()
    assert len(said) == 1 and said[0].startswith("warning: work beside the selection failed") and "doing it here" in said[0]
    assert ml.train._Beside(enabled=False).submit(os._exit, 3) is None
