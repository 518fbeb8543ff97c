"""The HTTP scoring service (`scorehouse serve`): stored and fresh scores over the Python API, read-only.

    GET  /health                      is the service up, and which published run it reads (no token needed)
    GET  /models                      the active models and their test metrics
    GET  /leads/{lead_id}/score       the stored score of the published run
    GET  /customers/{account_id}/score
    POST /leads/score                 fresh scores computed now, from the warehouse's rows or the body's
    GET  /docs, /openapi.json         the API's documentation

Every route but /health needs `Authorization: Bearer <token>`. Bodies are limited in bytes and leads; errors
are JSON naming the field, never a stack trace; the log holds method, route, status and time, never an id or
a body. A run that publishes while the service runs is picked up on the next request (scorehouse.api).
"""

# no `from __future__ import annotations`: FastAPI reads the route functions' annotations at run time
import asyncio
import hmac
import logging
import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator
from starlette.concurrency import run_in_threadpool

from core.contract import BY_NAME, LEAD_FEATURE_SOURCES
from ml.features import CUSTOMER_CHURN, LEAD_CONVERSION
from scorehouse.api import FreshScore, NotFound, Scorehouse, not_scorable, scoring_instant

log = logging.getLogger("scorehouse.service")
_bearer = HTTPBearer(auto_error=False)


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 1_000_000
    max_leads: int = 100  # leads per POST /leads/score
    max_rows: int = 5_000  # raw rows per body table
    timeout_seconds: float = 10.0  # per fresh-score request


# -- request bodies, from the raw-source contract (one definition of every raw column and its type) ------------
_PYTHON_TYPES = {"varchar": str, "timestamp": datetime, "date": date, "boolean": bool, "integer": int,
                 "double": float}


def _row_model(table: str) -> type[BaseModel]:
    fields: dict[str, Any] = {}
    for column in BY_NAME[table].columns:
        kind = _PYTHON_TYPES[column.type]
        required = column.required and column.name != "_loaded_at"  # the instant scored, when absent
        # pydantic keeps names starting with "_" private: such a column is a field under another name
        fields[column.name.lstrip("_")] = (kind if required else kind | None,
                                           Field(... if required else None, alias=column.name))
    return create_model(f"{table}_row", __config__=ConfigDict(extra="forbid"), **fields)


# the raw tables a body may give: those the lead features read (customer tables never reach a lead)
BODY_TABLES = tuple(t for t in LEAD_FEATURE_SOURCES if t != "crm_leads")
LeadRow = _row_model("crm_leads")
_BODY_FIELDS: dict[str, Any] = {table: (list[_row_model(table)] | None, None) for table in BODY_TABLES}


class _ScoreRequestBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    as_of: datetime | None = Field(None, description="The instant to score as of (ISO 8601); default now. "
                                                     "A time without a zone is UTC.")
    lead_ids: list[str] | None = Field(None, description="Leads whose rows are in the warehouse.")
    lead: LeadRow | None = Field(None, description="A lead given in full: its crm_leads row; its other rows in "
                                                   "the raw tables' fields below (docs/source_contract.md).")
    include_features: bool = Field(False, description="Return each lead's feature row too.")

    @model_validator(mode="after")
    def _one_way(self):
        if (self.lead_ids is None) == (self.lead is None):
            raise ValueError("give either lead_ids (leads in the warehouse) or lead (a lead and its rows)")
        if self.lead_ids is not None and not self.lead_ids:
            raise ValueError("lead_ids is empty")
        if self.lead is None and any(getattr(self, t) for t in BODY_TABLES):
            raise ValueError("raw rows come with a lead: give lead as well")
        return self


ScoreRequest = create_model("ScoreRequest", __base__=_ScoreRequestBase, **_BODY_FIELDS)


class Reason(BaseModel):
    direction: Literal["raises", "lowers"]
    rank: int
    factor: str
    reason: str
    contribution: float


class FreshLeadScore(BaseModel):
    lead_id: str
    as_of_at: datetime
    model_version: str
    conversion_probability: float
    score: int
    tier: str
    is_above_threshold: bool
    fit_score: int
    engagement_score: int
    top_reasons: str
    next_action: str
    reasons: list[Reason]
    features: dict[str, Any] | None = None


class FreshScores(BaseModel):
    scores: list[FreshLeadScore]


# -- helpers -----------------------------------------------------------------------------------------------------
def _plain(value: Any) -> Any:
    """A value JSON can carry (numpy and pandas scalars, NaN and NaT as null)."""
    if isinstance(value, np.generic):
        value = value.item()
    try:
        if pd.isna(value):
            return None
    except (TypeError, ValueError):  # a list or an array: not a missing value
        pass
    return value.to_pydatetime() if isinstance(value, pd.Timestamp) else value


def _record(row: dict) -> dict:
    return {key: _plain(value) for key, value in row.items()}


def _error(status: int, detail: Any) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": detail})


class _RequestLog:
    """One log line per request: method, the route's template (never the path: ids stay out of the log),
    status and time. An unexpected error becomes a 500 with an incident number here, and only its type is
    logged: it goes no further, so no server prints its traceback (which could quote a request's values)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), [None]

        async def noting_send(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, noting_send)
        except Exception as error:  # noqa: BLE001 - every unexpected error, answered and logged the same way
            incident = uuid.uuid4().hex[:12]
            log.error("incident %s: %s", incident, type(error).__name__)
            if status[0] is None:
                response = _error(500, f"internal error (incident {incident})")
                await noting_send({"type": "http.response.start", "status": 500, "headers": response.raw_headers})
                await send({"type": "http.response.body", "body": response.body})
        finally:
            log.info("%s %s %s %.1f ms", scope["method"], getattr(scope.get("route"), "path", "(no route)"),
                     status[0], (time.perf_counter() - started) * 1000)


class _BodyLimit:
    """Refuses a body over `limit` bytes with 413: by its declared length before reading it, or, for a body sent
    without one, as soon as it passes the limit (the app then sees the client gone)."""

    def __init__(self, app, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            return await self._refuse(send)
        seen, refused = 0, False

        async def limited_receive():
            nonlocal seen, refused
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit and not refused:
                refused = True
                await self._refuse(send)
                return {"type": "http.disconnect"}
            return message

        async def guarded_send(message):
            if not refused:  # after a 413 the app's own response is dropped
                await send(message)

        await self.app(scope, limited_receive, guarded_send)

    async def _refuse(self, send):
        response = _error(413, f"request body over {self.limit:,} bytes")
        await send({"type": "http.response.start", "status": 413, "headers": response.raw_headers})
        await send({"type": "http.response.body", "body": response.body})


class FreshBatcher:
    """Scores "now" for leads in the warehouse, for concurrent requests together: the requests waiting when a
    query starts go into the next one, up to `max_leads` leads. Planning the feature query is most of a fresh
    score's time and does not grow with the leads in it, so under load the service answers several requests for
    the price of one; a lone request waits for nobody. At most `parallel` queries run at once (one per core:
    DuckDB plans a query on one thread)."""

    def __init__(self, house: Scorehouse, limits: Limits, parallel: int = 2) -> None:
        self.house, self.limits, self.parallel = house, limits, parallel
        self.waiting: list[tuple[list[str], asyncio.Future]] = []
        self.running = 0
        self.queries = 0  # for tests and curiosity: how many feature queries answered the requests

    async def score(self, lead_ids: list[str]):
        future = asyncio.get_running_loop().create_future()
        # a request that timed out never reads its answer: mark it read, so asyncio does not log it (with its ids)
        future.add_done_callback(lambda done: done.cancelled() or done.exception())
        self.waiting.append((list(dict.fromkeys(lead_ids)), future))
        if self.running < self.parallel:
            self.running += 1
            asyncio.get_running_loop().create_task(self._drain())
        return await asyncio.shield(future)

    def _next_batch(self) -> list[tuple[list[str], asyncio.Future]]:
        batch, leads = [], 0
        while self.waiting and (not batch or leads + len(self.waiting[0][0]) <= self.limits.max_leads):
            request = self.waiting.pop(0)
            batch.append(request)
            leads += len(request[0])
        return batch

    async def _drain(self) -> None:
        try:
            while batch := self._next_batch():
                ids = list(dict.fromkeys(lead for lead_ids, _ in batch for lead in lead_ids))
                as_of = scoring_instant(None)
                self.queries += 1
                try:
                    result = await run_in_threadpool(self.house.score_leads, ids, as_of, None,
                                                     self.limits.timeout_seconds, True)
                except Exception as error:  # noqa: BLE001 - every request of the batch gets the same answer
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(error)
                    continue
                for lead_ids, future in batch:
                    if not future.done():
                        _settle(future, result, lead_ids, as_of)
        finally:
            self.running -= 1


def _settle(future: asyncio.Future, result, lead_ids: list[str], as_of: datetime) -> None:
    """One request's part of a batch's scores, or NotFound naming its leads without a row."""
    scored = set(result.scores["lead_id"]) if len(result.scores) else set()
    missing = [lead for lead in lead_ids if lead not in scored]
    if missing:
        future.set_exception(NotFound(not_scorable(missing, as_of)))
        return
    mine = set(lead_ids)
    reasons = result.reasons
    future.set_result(FreshScore(
        result.scores[result.scores["lead_id"].isin(mine)].reset_index(drop=True),
        result.features[result.features["lead_id"].isin(mine)].reset_index(drop=True),
        reasons[reasons["entity_id"].isin(mine)].reset_index(drop=True) if len(reasons) else reasons))


def create_app(house: Scorehouse, token: str | None, limits: Limits = Limits()) -> FastAPI:
    """The service's app. `token` None means no authentication (only for `--insecure-local`)."""
    app = FastAPI(title="scorehouse", version="0.1.0",
                  description="Lead conversion and customer churn scores: stored by the batch, or fresh.")
    batcher = FreshBatcher(house, limits)
    app.add_middleware(_BodyLimit, limit=limits.max_body_bytes)
    app.add_middleware(_RequestLog)  # outermost: it logs the 413s too

    def authenticated(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> None:
        if token is None:
            return
        if credentials is None or not hmac.compare_digest(credentials.credentials.encode(), token.encode()):
            raise HTTPException(401, "missing or wrong token (send `Authorization: Bearer <token>`)",
                                headers={"WWW-Authenticate": "Bearer"})

    @app.exception_handler(RequestValidationError)
    async def invalid(_request: Request, error: RequestValidationError):
        # the field and the problem; not the value sent
        problems = [{"field": ".".join(str(part) for part in e["loc"] if part != "body") or "body",
                     "problem": e["msg"]} for e in error.errors()]
        return _error(422, problems)

    @app.get("/health")
    def health() -> dict:
        return {"status": "ok", **house.published_run()}

    @app.get("/models", dependencies=[Depends(authenticated)])
    def models() -> dict:
        return {"models": [_record(r) for r in house.models().to_dict("records")]}

    def stored(model_name: str, entity_id: str) -> dict:
        try:
            return _record(house.stored_score(model_name, entity_id))
        except NotFound as missing:
            raise HTTPException(404, str(missing)) from None

    @app.get("/leads/{lead_id}/score", dependencies=[Depends(authenticated)])
    def lead_score(lead_id: str) -> dict:
        """The published run's score of a lead: probability, score, tier, reasons, next action, model version,
        as-of date and scored time."""
        return stored(LEAD_CONVERSION.name, lead_id)

    @app.get("/customers/{account_id}/score", dependencies=[Depends(authenticated)])
    def customer_score(account_id: str) -> dict:
        """The published run's churn score of a customer, its drivers and the recommended intervention."""
        return stored(CUSTOMER_CHURN.name, account_id)

    @app.post("/leads/score", dependencies=[Depends(authenticated)], response_model=FreshScores)
    async def fresh_score(request: ScoreRequest) -> FreshScores:  # type: ignore[valid-type]
        """Fresh scores computed now with the lead mart's own feature SQL: for leads in the warehouse
        (`lead_ids`), or for one lead given in full (`lead` and its raw rows)."""
        ids = request.lead_ids if request.lead_ids is not None else [request.lead.lead_id]  # type: ignore[attr-defined]
        if len(ids) > limits.max_leads:
            return _error(413, f"lead_ids: {len(ids)} leads, at most {limits.max_leads} per request")
        body = None
        if request.lead is not None:
            body = {"crm_leads": [request.lead.model_dump(by_alias=True)]}
            for table in BODY_TABLES:
                rows = getattr(request, table)
                if rows:
                    if len(rows) > limits.max_rows:
                        return _error(413, f"{table}: {len(rows)} rows, at most {limits.max_rows} per request")
                    body[table] = [row.model_dump(by_alias=True) for row in rows]
        try:
            if body is None and request.as_of is None:  # "now" for leads in the warehouse: shares a query
                result = await asyncio.wait_for(batcher.score(ids), limits.timeout_seconds)
            else:
                result = await asyncio.wait_for(run_in_threadpool(
                    house.score_leads, ids, request.as_of, body, limits.timeout_seconds), limits.timeout_seconds)
        except NotFound as missing:
            return _error(404, str(missing))
        except (TimeoutError, asyncio.TimeoutError):
            return _error(503, f"scoring took longer than {limits.timeout_seconds:g} s; try fewer leads")
        return FreshScores(scores=_fresh_rows(result, request.include_features))

    return app


def _fresh_rows(result, include_features: bool) -> list[FreshLeadScore]:
    reasons = result.reasons
    by_lead = {lead: group for lead, group in reasons.groupby("entity_id")} if len(reasons) else {}
    features = {row["lead_id"]: row for row in result.features.to_dict("records")} if include_features else None
    rows = []
    for record in result.scores.to_dict("records"):
        lead = record["lead_id"]
        lead_reasons = by_lead.get(lead, pd.DataFrame(columns=["direction", "rank", "factor", "reason",
                                                               "contribution"]))
        rows.append(FreshLeadScore(
            **{k: _plain(v) for k, v in record.items() if k in FreshLeadScore.model_fields},
            reasons=[Reason(**_record(r)) for r in lead_reasons[["direction", "rank", "factor", "reason",
                                                                  "contribution"]].to_dict("records")],
            features=jsonable_encoder(_record(features[lead])) if features is not None else None,
        ))
    return rows
