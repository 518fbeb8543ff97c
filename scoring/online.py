"""A lead's feature row as of any instant, computed on request by the lead mart's own SQL.

`dbt compile` with the `online_features` var (dbt_project/macros/online.sql) turns the chain behind
`fct_lead_features` into one query whose spine is the requested leads at the instant `$as_of_at` and whose raw
tables are relations named `__online__<table>`. This module defines those relations for one request, as the
requested leads' rows of the warehouse (or of a request's body), and runs the query. No feature is defined here:
a feature row computed now equals the mart's row for the same lead and instant (tests/test_service.py).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

import duckdb
import pandas as pd

from core.config import Settings
from core.contract import BY_NAME, LEAD_FEATURE_SOURCES, RAW_TABLES
from core.dbt import run_dbt
from core.warehouse import column_types, quote_identifier, quote_string

MART_NODE = "model.scorehouse.fct_lead_features"
ONLINE = "__online__"
# the raw tables a lead's rows come from, with the column holding its id
LEAD_KEYED = {"crm_lead_status_history": "lead_id", "crm_activities": "lead_id", "marketing_touches": "lead_id"}


@dataclass(frozen=True)
class FeatureQuery:
    """The compiled mart query. Its few warehouse relations are qualified with the warehouse file's stem (it is
    compiled against a scratch file of the same name), the catalog core.warehouse.open_published attaches."""

    sql: str

    @property
    def raw_tables(self) -> tuple[str, ...]:
        return tuple(sorted(set(re.findall(ONLINE + r"(\w+)", self.sql)) - {"request"}))


def _project_fingerprint(settings: Settings) -> str:
    """Changes whenever a model, macro, the project file or a dbt var changes: the compiled query is reused
    until then (compiling takes seconds)."""
    digest = hashlib.sha256(json.dumps(settings.dbt_vars(), sort_keys=True, default=str).encode())
    root = settings.project_root
    for path in sorted([root / "dbt_project.yml", *(root / "dbt_project").rglob("*.sql"),
                        *(root / "dbt_project").rglob("*.yml")]):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def compile_feature_query(settings: Settings) -> FeatureQuery:
    """The online mart query, compiled by dbt (against an empty scratch database named like the warehouse, so
    that the working warehouse is never opened) or read from the previous compile of the same project."""
    folder = settings.artifacts_dir / "online"
    cached = folder / f"fct_lead_features-{_project_fingerprint(settings)}.json"
    if cached.exists():
        saved = json.loads(cached.read_text())
        return FeatureQuery(saved["sql"])
    folder.mkdir(parents=True, exist_ok=True)
    scratch = replace(settings, engine="duckdb", warehouse_path=folder / settings.warehouse_path.name)
    target = folder / "dbt_target"
    run_dbt(scratch, "compile", ["--select", "fct_lead_features"], quiet=True,
            extra_vars={"online_features": True}, target_path=target)
    node = json.loads((target / "manifest.json").read_text())["nodes"][MART_NODE]
    query = FeatureQuery(node["compiled_code"])
    for stale in folder.glob("fct_lead_features-*.json"):
        stale.unlink()
    cached.write_text(json.dumps({"sql": query.sql}))
    return query


def _casts(columns, value: str | None = None) -> str:
    """`cast(<column> as <type>) as <column>` for each column (anything with a name and a type); with `value`,
    that value is cast instead (an empty relation's typed nulls)."""
    return ", ".join(f"cast({value or quote_identifier(c.name)} as {c.type}) as {quote_identifier(c.name)}"
                     for c in columns)


def _typed_select(table: str, relation: str) -> str:
    """The rows of `relation` with the raw table's columns cast to their contract types."""
    return f"select {_casts(BY_NAME[table].columns)} from {relation}"


def _raw(table: str) -> str:
    """The raw table's contract columns, in contract order (a body's rows line up with them)."""
    return f"select {', '.join(quote_identifier(c.name) for c in BY_NAME[table].columns)} from raw.{table}"


def _empty(table: str) -> str:
    return f"select {_casts(BY_NAME[table].columns, 'null')} where false"


def _scope(table: str, body: set[str]) -> str:
    """A raw table's rows that can reach the requested leads' features: the leads' own rows, their web visitors'
    rows, and what the models join through the company domain (enrichment, colleagues). Tables given in a
    request's body come from it instead of the warehouse."""
    own = f"{ONLINE}request"
    if table in body:
        given = _typed_select(table, "__body__" + table)
    if table == "crm_leads":
        mine = given if table in body else f"{_raw('crm_leads')} where lead_id in (select lead_id from {own})"
        # colleagues: every row of the other leads that share a company domain with a requested lead
        return f"""select * from ({mine})
            union all
            {_raw('crm_leads')}
            where lead_id not in (select lead_id from {own})
                and lead_id in (select lead_id from raw.crm_leads where lower(trim(company_domain)) in (
                    select lower(trim(company_domain)) from ({mine}) where company_domain is not null))"""
    if table == "enrichment_firmographics":
        warehouse = f"""{_raw(table)} where lower(trim(company_domain)) in (
                    select lower(trim(company_domain)) from __leads_in_scope where company_domain is not null)"""
        return f"{given} union all {warehouse}" if table in body else warehouse
    if table in body:
        return given
    if table in LEAD_KEYED:
        return f"{_raw(table)} where {LEAD_KEYED[table]} in (select lead_id from {own})"
    if table == "web_identifies":
        # every link of a visitor who was ever linked to a requested lead: the first link decides who they are
        return f"""{_raw(table)} where anonymous_id in (
                    select anonymous_id from raw.web_identifies where user_id in (select lead_id from {own}))"""
    if table in ("web_pages", "web_tracks"):
        # the lead's own rows, then its visitors' other rows: two arms whose filters DuckDB pushes into the
        # scans (one `or` would read every row of the table in full)
        return f"""{_raw(table)} where user_id in (select lead_id from {own})
            union all
            {_raw(table)} where anonymous_id in (select anonymous_id from {ONLINE}web_identifies)
                and (user_id is null or user_id not in (select lead_id from {own}))"""
    if table not in LEAD_FEATURE_SOURCES:
        return _empty(table)  # a table that never reaches a lead (the compiled query reads none today)
    raise ValueError(f"online features: no scope for raw table {table}")


def feature_sql(query: FeatureQuery, body_tables: Sequence[str] = ()) -> str:
    """The whole request query: the online relations, then the compiled mart query over them, with its columns
    cast to the mart's types by the caller's select list (see OnlineFeatures)."""
    body = set(body_tables)
    unknown = body - set(RAW_TABLES)
    if unknown:
        raise ValueError(f"unknown raw tables: {', '.join(sorted(unknown))}")
    ctes = [f"{ONLINE}request as (select distinct cast(unnest($lead_ids) as varchar) as lead_id)"]
    order = sorted(query.raw_tables, key=lambda t: (t != "crm_leads", t != "web_identifies", t))
    for table in order:
        ctes.append(f"{ONLINE}{table} as ({_scope(table, body)})")
        if table == "crm_leads":
            ctes.append(f"__leads_in_scope as (select * from {ONLINE}crm_leads where lead_id in "
                        f"(select lead_id from {ONLINE}request))")
    return "with " + ",\n".join(ctes) + f"\nselect * from (\n{query.sql}\n) as feature_rows"


@dataclass(frozen=True)
class MartColumn:
    name: str
    type: str


def body_frames(rows: Mapping[str, Sequence[Mapping[str, object]]], loaded_at: datetime) -> dict[str, pd.DataFrame]:
    """A request body's raw rows as frames with every contract column (absent ones NULL; `_loaded_at` defaults
    to the instant scored, when the rows are known)."""
    frames = {}
    for table, table_rows in rows.items():
        columns = [c.name for c in BY_NAME[table].columns]
        frame = pd.DataFrame([{c: row.get(c) for c in columns} for row in table_rows], columns=columns, dtype=object)
        frame["_loaded_at"] = frame["_loaded_at"].where(frame["_loaded_at"].notna(), loaded_at)
        frames[table] = frame
    return frames


class OnlineFeatures:
    """Feature rows computed now, on a read-only connection to a published warehouse.

    Each connection prepares the query once per set of body tables and then only executes it: the query text is
    about 100 KB, and parsing it took 25 ms of each request. DuckDB still binds and plans a prepared query that
    scans tables on every execution (measured; about 80 ms of the rest)."""

    def __init__(self, query: FeatureQuery, mart_columns: Sequence[MartColumn]) -> None:
        self.query = query
        self.columns = tuple(mart_columns)
        self._select = _casts(self.columns)
        self._sql: dict[tuple[str, ...], str] = {}

    def _statement(self, body_tables: tuple[str, ...]) -> str:
        if body_tables not in self._sql:
            self._sql[body_tables] = f"select {self._select} from ({feature_sql(self.query, body_tables)}) as f " \
                                     "order by lead_id"
        return self._sql[body_tables]

    def _execute(self, con, body_tables: tuple[str, ...], lead_ids: Sequence[str], as_of_at: datetime) -> pd.DataFrame:
        """Execute the connection's prepared query, preparing it on the connection's first request."""
        name = "__".join(["online_features", *body_tables])  # raw table names: plain identifiers
        ids = ", ".join(quote_string(str(i)) for i in lead_ids)
        # EXECUTE takes values, not parameters: the ids and the instant are written as typed literals
        execute = (f"execute {name}(lead_ids := cast([{ids}] as varchar[]), "
                   f"as_of_at := cast({quote_string(as_of_at.isoformat(sep=' '))} as timestamp))")
        try:
            return con.execute(execute).df()
        except duckdb.BinderException as error:
            if "does not exist" not in str(error):
                raise
        con.execute(f"prepare {name} as {self._statement(body_tables)}")
        return con.execute(execute).df()

    def rows(self, con, lead_ids: Sequence[str], as_of_at: datetime,
             body: Mapping[str, Sequence[Mapping[str, object]]] | None = None) -> pd.DataFrame:
        """The leads' feature rows as of `as_of_at` (one per lead known and still open then; others have none).
        `con` must be a connection of its own (a cursor), since a body's frames are registered on it."""
        frames = body_frames(body, as_of_at) if body else {}
        for table, frame in frames.items():
            con.register(f"__body__{table}", frame)
        try:
            return self._execute(con, tuple(sorted(frames)), lead_ids, as_of_at)
        finally:
            for table in frames:
                con.unregister(f"__body__{table}")


def mart_columns(con, mart: str = "marts.fct_lead_features") -> list[MartColumn]:
    """The mart's columns and types, as the warehouse holds them (the query's columns are cast to these)."""
    types = column_types(con, *mart.split("."))
    if not types:
        raise LookupError(f"{mart} is missing: build the warehouse (`scorehouse run`) before scoring online")
    return [MartColumn(name, type_) for name, type_ in types.items()]

