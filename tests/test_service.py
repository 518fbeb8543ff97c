"""The scoring service and the Python API on the shared 4,000-lead run: fresh scores equal the mart and the batch,
every error path answers with its status and names the problem, and nothing personal reaches the log."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from datetime import timedelta

import duckdb
import numpy as np
import pandas as pd
import pytest
from fastapi.encoders import jsonable_encoder
from fastapi.testclient import TestClient
from sklearn.base import is_classifier

from core.publish import published_path
from scorehouse.api import NotFound, Scorehouse
from scorehouse.cli import main
from scorehouse.service import FreshBatcher, Limits, create_app

pytestmark = pytest.mark.slow

TOKEN = "t" * 24
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BODY_LIMIT = 400_000
LABEL_COLUMNS = {"label_horizon_days", "label_window_end_at", "is_label_observed", "label_converted"}


@pytest.fixture(scope="module")
def house(pipeline_run):
    settings, _ = pipeline_run
    house = Scorehouse(settings=settings)
    house.prepare()
    yield house
    house.close()


@pytest.fixture(scope="module")
def client(house):
    # the body limit sits well above the largest lead's raw rows, which the tests send in full
    return TestClient(create_app(house, TOKEN, Limits(max_body_bytes=BODY_LIMIT, max_leads=20)))


@pytest.fixture(scope="module")
def mart(house):
    return house._current().cursor().execute(
        "select * from marts.fct_lead_features order by lead_id, as_of_at").df()  # an order, so samples repeat


def _same(expected, got) -> bool:
    if pd.isna(expected):
        return got is None or pd.isna(got)
    if isinstance(expected, (float, np.floating)):
        return got is not None and abs(float(expected) - float(got)) <= 1e-9
    if isinstance(expected, pd.Timestamp):
        return pd.Timestamp(got) == expected
    if hasattr(expected, "isoformat") and isinstance(got, str):
        return pd.Timestamp(got) == pd.Timestamp(expected)
    return expected == got


def test_fresh_features_and_probabilities_equal_the_mart_row_and_the_batch_score(house, client, mart):
    model = house.model()
    sample = mart.sample(30, random_state=5)
    for as_of_at, rows in sample.groupby("as_of_at"):
        response = client.post("/leads/score", headers=AUTH, json={
            "lead_ids": list(rows.lead_id), "as_of": as_of_at.isoformat(), "include_features": True})
        assert response.status_code == 200, response.text
        fresh = {score["lead_id"]: score for score in response.json()["scores"]}
        assert set(fresh) == set(rows.lead_id)
        batch = model.predict_proba(rows)[:, 1]
        for (_, row), batch_probability in zip(rows.iterrows(), batch):
            got = fresh[row.lead_id]
            different = [c for c in mart.columns if c not in LABEL_COLUMNS and not _same(row[c], got["features"][c])]
            assert not different, (row.lead_id, as_of_at, different)
            assert abs(got["conversion_probability"] - batch_probability) <= 1e-9


def test_concurrent_requests_for_now_share_queries_and_get_their_own_scores(house):
    batcher = FreshBatcher(house, Limits(max_leads=20))
    leads = list(house.leads().lead_id.sample(12, random_state=4))

    async def together():
        return await asyncio.gather(*(batcher.score([lead]) for lead in leads), return_exceptions=True)

    answers = asyncio.run(together())
    assert batcher.queries < len(leads)  # the first query takes one request, the next ones the rest
    for lead, answer in zip(leads, answers):
        if isinstance(answer, NotFound):  # closed after the stored run: no row as of now
            continue
        assert list(answer.scores.lead_id) == [lead] and set(answer.reasons.entity_id) == {lead}
        alone = house.score_lead(lead, as_of=answer.scores.as_of_at.iloc[0].to_pydatetime())
        assert abs(alone.scores.conversion_probability.iloc[0] - answer.scores.conversion_probability.iloc[0]) <= 1e-9
        together, single = answer.features.iloc[0], alone.features.iloc[0]
        assert not [c for c in single.index if not _same(single[c], together[c])]


def test_fresh_scores_at_the_stored_as_of_equal_the_stored_scores(house, client):
    stored = house.leads().sample(10, random_state=3)
    as_of = pd.Timestamp(stored.as_of_date.iloc[0]).isoformat()
    response = client.post("/leads/score", headers=AUTH, json={"lead_ids": list(stored.lead_id), "as_of": as_of})
    assert response.status_code == 200, response.text
    fresh = {s["lead_id"]: s for s in response.json()["scores"]}
    for row in stored.itertuples():
        got = fresh[row.lead_id]
        assert abs(got["conversion_probability"] - row.conversion_probability) <= 1e-9
        assert (got["score"], got["tier"], got["top_reasons"], got["next_action"]) == \
            (row.score, row.tier, row.top_reasons, row.next_action)
        assert got["model_version"] == row.model_version
    one = client.get(f"/leads/{stored.lead_id.iloc[0]}/score", headers=AUTH).json()
    assert abs(one["conversion_probability"] - stored.conversion_probability.iloc[0]) <= 1e-9
    assert {"tier", "top_reasons", "next_action", "model_version", "as_of_date", "scored_at"} <= set(one)


def _raw_rows_of(house, lead_id: str) -> dict[str, list[dict]]:
    """A lead's rows as a body: what a form or a CRM webhook would send for it."""
    cursor = house._current().cursor()

    def rows(sql: str) -> list[dict]:
        result = cursor.execute(sql, [lead_id])
        names = [d[0] for d in result.description]
        return [{k: v for k, v in zip(names, r) if not k.startswith("_") or k == "_loaded_at"}
                for r in result.fetchall()]

    visitors = "select anonymous_id from raw.web_identifies where user_id = $1"
    body = {table: rows(f"select * from raw.{table} where lead_id = $1")
            for table in ("crm_lead_status_history", "crm_activities", "marketing_touches")}
    body["web_identifies"] = rows(f"select * from raw.web_identifies where anonymous_id in ({visitors})")
    for table in ("web_pages", "web_tracks"):
        body[table] = rows(f"select * from raw.{table} where user_id = $1 or anonymous_id in ({visitors})")
    lead = rows("select * from raw.crm_leads where lead_id = $1")
    assert len(lead) == 1
    return {"lead": lead[0], **{t: r for t, r in body.items() if r}}


def _assert_same_features(got: dict, expected: dict) -> None:
    """Equal, numbers within 1e-9 (sums over the same rows may add in another order)."""
    assert got.keys() == expected.keys()
    different = [name for name in expected if not (
        got[name] == expected[name] or (isinstance(expected[name], float) and isinstance(got[name], float)
                                        and abs(got[name] - expected[name]) <= 1e-9))]
    assert not different, {name: (got[name], expected[name]) for name in different}


def _features(client, body: dict, as_of) -> dict:
    response = client.post("/leads/score", headers=AUTH, json=jsonable_encoder(
        {**body, "as_of": pd.Timestamp(as_of).isoformat(), "include_features": True}))
    assert response.status_code == 200, response.text
    return response.json()["scores"][0]


def test_a_lead_sent_in_the_body_scores_as_the_same_lead_in_the_warehouse(house, client, mart):
    busy = mart[mart.touchpoints_total > 5].sample(3, random_state=1)
    for row in busy.itertuples():
        body = _raw_rows_of(house, row.lead_id)
        from_body = _features(client, {"lead": body["lead"], **{k: v for k, v in body.items() if k != "lead"}},
                              row.as_of_at)
        from_warehouse = _features(client, {"lead_ids": [row.lead_id]}, row.as_of_at)
        _assert_same_features(from_body["features"], from_warehouse["features"])
        assert abs(from_body["conversion_probability"] - from_warehouse["conversion_probability"]) <= 1e-9


def test_rows_loaded_after_the_instant_change_no_feature(house, client, mart):
    row = mart[mart.touchpoints_total > 5].sample(1, random_state=2).iloc[0]
    body = _raw_rows_of(house, row.lead_id)
    before = _features(client, body, row.as_of_at)
    late = row.as_of_at + timedelta(seconds=1)
    touches = body.get("marketing_touches", []) + [
        {"touch_id": f"late-{k}", "lead_id": row.lead_id, "channel": "webinar", "campaign": "late",
         "touched_at": (row.as_of_at - timedelta(days=k)).isoformat(), "_loaded_at": late.isoformat()}
        for k in range(1, 4)]
    after = _features(client, {**body, "marketing_touches": touches}, row.as_of_at)
    _assert_same_features(after["features"], before["features"])
    # the same rows loaded by the instant do count
    counted = [{**t, "_loaded_at": row.as_of_at.isoformat()} if t["touch_id"].startswith("late-") else t
               for t in touches]
    assert _features(client, {**body, "marketing_touches": counted}, row.as_of_at)["features"] != before["features"]


def test_missing_or_wrong_token_is_401_and_health_needs_none(client, house):
    lead = house.leads().lead_id.iloc[0]
    assert client.get(f"/leads/{lead}/score").status_code == 401
    assert client.get(f"/leads/{lead}/score", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.post("/leads/score", json={"lead_ids": [lead]}).status_code == 401
    assert client.get("/models").status_code == 401
    assert client.get("/health").json()["status"] == "ok"


def test_unknown_ids_are_404(client):
    assert client.get("/leads/no-such-lead/score", headers=AUTH).status_code == 404
    assert client.get("/customers/no-such-account/score", headers=AUTH).status_code == 404
    response = client.post("/leads/score", headers=AUTH, json={"lead_ids": ["no-such-lead"]})
    assert response.status_code == 404 and "no-such-lead" in response.json()["detail"]


@pytest.mark.parametrize(("body", "field"), [
    ({"lead_ids": ["a"], "as_of": "not a time"}, "as_of"),
    ({"lead": {"lead_id": "x"}}, "lead.created_at"),
    ({"lead": {"lead_id": "x", "created_at": "2026-01-01T00:00:00"},
      "marketing_touches": [{"touch_id": "t", "lead_id": "x", "channel": "ads", "touched_at": "soon"}]},
     "marketing_touches.0.touched_at"),
    ({"lead_ids": ["a"], "lead_idz": ["b"]}, "lead_idz"),
    ({}, "body"),
])
def test_a_malformed_body_is_422_naming_the_field(client, body, field):
    response = client.post("/leads/score", headers=AUTH, json=body)
    assert response.status_code == 422
    assert field in [problem["field"] for problem in response.json()["detail"]], response.json()


def test_an_oversized_body_or_batch_is_413(client):
    assert client.post("/leads/score", headers=AUTH, json={"lead_ids": ["x" * BODY_LIMIT]}).status_code == 413
    # sent without a length: refused once it passes the limit
    chunks = (b'{"lead_ids": ["' + b"x" * 10_000 for _ in range(BODY_LIMIT // 10_000 + 1))
    assert client.post("/leads/score", headers={**AUTH, "Content-Type": "application/json"},
                       content=chunks).status_code == 413
    assert client.post("/leads/score", headers=AUTH, json={"lead_ids": [f"l{i}" for i in range(21)]}).status_code == 413


def test_a_request_over_the_time_limit_is_503(house):
    hurried = TestClient(create_app(house, TOKEN, Limits(timeout_seconds=0.001)))
    lead = house.leads().lead_id.iloc[0]
    response = hurried.post("/leads/score", headers=AUTH, json={"lead_ids": [lead]})
    assert response.status_code == 503 and "longer than" in response.json()["detail"]


def test_errors_show_no_trace_and_the_log_no_personal_data(house, client, caplog, monkeypatch):
    caplog.set_level(logging.INFO)
    secret_name, secret_company = "Jane Q. Example", "Secretive Holdings"
    lead = {"lead_id": "person-0042", "title": secret_name, "company": secret_company,
            "company_domain": "secretive.example", "created_at": "2026-05-01T08:00:00"}
    assert client.post("/leads/score", headers=AUTH, json={"lead": lead, "as_of": "2026-06-01T00:00:00"}
                       ).status_code == 200
    assert client.get("/leads/person-0042/score", headers=AUTH).status_code == 404
    client.post("/leads/score", headers=AUTH, json={"lead": {**lead, "created_at": "never"}})
    monkeypatch.setattr(house, "models", lambda: (_ for _ in ()).throw(RuntimeError(f"boom {secret_name}")))
    failing = TestClient(create_app(house, TOKEN))  # would raise here if the error escaped the service
    response = failing.get("/models", headers=AUTH)
    assert response.status_code == 500 and "incident" in response.json()["detail"]
    assert "Traceback" not in response.text and secret_name not in response.text
    # the service's log (the test client's own request log, from httpx, is not the service's)
    logged = "\n".join(r.getMessage() for r in caplog.records if not r.name.startswith(("httpx", "httpcore")))
    assert "/leads/{lead_id}/score 404" in logged  # requests are logged, by route
    for personal in ("person-0042", secret_name, secret_company, "secretive"):
        assert personal not in logged


def test_a_newly_published_run_is_served_without_a_restart(pipeline_run, tmp_path):
    settings, _ = pipeline_run
    served = tmp_path / "published.duckdb"
    shutil.copyfile(published_path(settings), served)
    house = Scorehouse(served, settings)
    lead = house.leads().lead_id.iloc[0]
    app = TestClient(create_app(house, TOKEN))
    before = app.get(f"/leads/{lead}/score", headers=AUTH).json()
    newer = tmp_path / "newer.duckdb"
    shutil.copyfile(served, newer)
    with duckdb.connect(str(newer)) as con:
        con.execute("update scores.lead_scores set model_version = 'republished' where lead_id = ?", [lead])
    os.replace(newer, served)  # as core/publish.py does
    after = app.get(f"/leads/{lead}/score", headers=AUTH).json()
    assert before["model_version"] != "republished" and after["model_version"] == "republished"
    house.close()


def test_serve_refuses_to_start_without_a_token(monkeypatch, capsys):
    monkeypatch.delenv("SCOREHOUSE_API_TOKEN", raising=False)
    assert main(["serve"]) == 1
    assert "no API token" in capsys.readouterr().err
    monkeypatch.setenv("SCOREHOUSE_API_TOKEN", "short")
    assert main(["serve"]) == 1
    assert "shorter than 16" in capsys.readouterr().err
    monkeypatch.delenv("SCOREHOUSE_API_TOKEN")
    assert main(["serve", "--insecure-local", "--host", "0.0.0.0"]) == 1
    assert "127.0.0.1 only" in capsys.readouterr().err


def test_the_python_api_returns_frames_and_a_scikit_learn_model(house, mart):
    leads = house.leads()
    assert len(leads) and {"lead_id", "score", "tier", "top_reasons", "next_action"} <= set(leads.columns)
    model = house.model("lead_conversion")
    assert is_classifier(model)
    latest = mart[mart.as_of_date == mart.as_of_date.max()].set_index("lead_id").loc[leads.lead_id]
    probabilities = model.predict_proba(latest)
    assert probabilities.shape == (len(leads), 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0)
    np.testing.assert_allclose(probabilities[:, 1], leads.conversion_probability, atol=1e-9)
    reasons = house.explain(leads.lead_id.iloc[0])
    assert {"raises", "lowers"} & set(reasons.direction) and reasons.reason.str.len().gt(0).all()
    assert set(house.models().model_name) == {"lead_conversion", "customer_churn"}
    fresh = house.score(latest.reset_index().head(5))
    np.testing.assert_allclose(fresh.scores.conversion_probability, leads.conversion_probability.head(5), atol=1e-9)
    with pytest.raises(ValueError, match="lacks mart columns"):
        model.predict_proba(latest[["score"]] if "score" in latest else latest.iloc[:, :2])


def test_the_openapi_document_lists_every_route(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/health", "/models", "/leads/{lead_id}/score", "/customers/{account_id}/score", "/leads/score"} <= set(paths)
    assert "lead_ids" in client.get("/openapi.json").text and client.get("/docs").status_code == 200
