"""A slow, obvious reference for the lead mart, computed straight from the raw tables.

It follows the time rules literally, one lead and one as-of instant at a time, with plain
Python loops, and shares no code with the dbt models. Tests compare it with
`marts.fct_lead_features` row by row and value by value.

Rules (from DESIGN.md):
- a row is visible at as_of when event_at <= as_of and _loaded_at <= as_of;
- windows are (as_of - w, as_of];
- status and enrichment are read as of the date from history; ties: latest event time, then
  latest load, then the highest id;
- the label counts conversions in (as_of, as_of + h] recorded by as_of + h, and exists only when
  as_of + h <= the data's high-water mark.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

import duckdb
import pandas as pd

TERMINAL = {"converted", "disqualified"}


def _norm(value) -> str | None:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    text = str(value).strip().lower().replace(" ", "_").replace("-", "_")
    return text or None


def _flag(value) -> bool:
    """True only for a real true value (NULL, NA and NaN are not true)."""
    if value is None or value is pd.NA or (isinstance(value, float) and pd.isna(value)):
        return False
    return bool(value)


def _plain(value):
    """A pandas cell as a plain Python value: every kind of missing becomes None."""
    if value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and pd.isna(value)):
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    return value


def _ts(value) -> datetime | None:
    if value is None or pd.isna(value):
        return None
    return pd.Timestamp(value).to_pydatetime()


def _page_type(url: str) -> str:
    u = url.lower()
    for needle, kind in (("/pricing", "pricing"), ("/demo", "demo"), ("/free-trial", "free_trial"), ("/trial", "free_trial")):
        if needle in u:
            return kind
    if "/docs/" in u or "/resources/" in u:
        return "docs"
    if "/webinar" in u:
        return "webinar"
    if "/blog/" in u:
        return "blog"
    return "other"


def _first_loaded(rows: list[dict], key: str, tiebreak: str) -> list[dict]:
    """Keep the earliest-loaded copy of each key (re-exports are duplicates)."""
    best: dict = {}
    for row in rows:
        k = row[key]
        if k not in best or (row["_loaded_at"], row[tiebreak]) < (best[k]["_loaded_at"], best[k][tiebreak]):
            best[k] = row
    return list(best.values())


def _valid(rows: list[dict], required: list[str]) -> list[dict]:
    return [r for r in rows if all(r.get(c) is not None and not (isinstance(r.get(c), float) and pd.isna(r.get(c))) for c in required)]


@dataclass
class Touch:
    kind: str
    event_at: datetime
    loaded_at: datetime
    page_type: str | None = None
    session_id: str | None = None
    decision_maker: bool | None = None
    budget: str | None = None


class ReferenceLeadMart:
    def __init__(self, con: duckdb.DuckDBPyConnection, horizon_days: int) -> None:
        self.horizon = timedelta(days=horizon_days)

        def rows(table: str) -> list[dict]:
            frame = con.execute(f"select * from raw.{table}").df()
            return [{k: _plain(v) for k, v in r.items()} for r in frame.to_dict("records")]

        leads = _first_loaded(_valid(rows("crm_leads"), ["lead_id", "created_at", "_loaded_at"]), "lead_id", "created_at")
        self.leads = {r["lead_id"]: r for r in leads}
        statuses = _first_loaded(
            _valid(rows("crm_lead_status_history"), ["status_change_id", "lead_id", "status", "changed_at", "_loaded_at"]),
            "status_change_id", "changed_at",
        )
        activities = _first_loaded(
            _valid(rows("crm_activities"), ["activity_id", "lead_id", "activity_type", "occurred_at", "_loaded_at"]),
            "activity_id", "occurred_at",
        )
        pages = _first_loaded(
            _valid(rows("web_pages"), ["message_id", "anonymous_id", "url", "timestamp", "_loaded_at"]),
            "message_id", "timestamp",
        )
        tracks = _first_loaded(
            [r for r in _valid(rows("web_tracks"), ["message_id", "anonymous_id", "event", "timestamp", "_loaded_at"])
             if _norm(r["event"]) == "form_submitted"],
            "message_id", "timestamp",
        )
        identifies = _first_loaded(
            _valid(rows("web_identifies"), ["message_id", "anonymous_id", "user_id", "timestamp", "_loaded_at"]),
            "message_id", "timestamp",
        )
        touches = _first_loaded(
            _valid(rows("marketing_touches"), ["touch_id", "lead_id", "channel", "touched_at", "_loaded_at"]),
            "touch_id", "touched_at",
        )
        enrichment = _first_loaded(
            _valid(rows("enrichment_firmographics"), ["enrichment_id", "company_domain", "enriched_at", "_loaded_at"]),
            "enrichment_id", "enriched_at",
        )

        self.observed_through = max(
            max((r["_loaded_at"] for r in group), default=datetime.min)
            for group in (leads, statuses, activities, pages, touches)
        )

        self.statuses = defaultdict(list)
        for r in statuses:
            self.statuses[r["lead_id"]].append(r)

        # identity: the first link of an anonymous visitor, by when it became knowable
        links: dict[str, tuple[datetime, str, str]] = {}
        for r in identifies:
            known = max(r["timestamp"], r["_loaded_at"])
            candidate = (known, r["message_id"], r["user_id"])
            if r["anonymous_id"] not in links or candidate < links[r["anonymous_id"]]:
                links[r["anonymous_id"]] = candidate

        def web_owner(r) -> tuple[str | None, datetime]:
            if r.get("user_id") is not None:
                return r["user_id"], r["_loaded_at"]
            link = links.get(r["anonymous_id"])
            if link is None:
                return None, r["_loaded_at"]
            return link[2], max(r["_loaded_at"], link[0])

        self.touches = defaultdict(list)
        for r in activities:
            self.touches[r["lead_id"]].append(Touch(
                _norm(r["activity_type"]), r["occurred_at"], r["_loaded_at"],
                decision_maker=_flag(r.get("decision_maker_reached")), budget=_norm(r.get("budget_status")),
            ))
        for r in pages:
            lead, loaded = web_owner(r)
            if lead is not None:
                self.touches[lead].append(Touch("page_view", r["timestamp"], loaded, page_type=_page_type(r["url"]),
                                                session_id=r.get("session_id")))
        for r in tracks:
            lead, loaded = web_owner(r)
            if lead is not None:
                self.touches[lead].append(Touch("form_fill", r["timestamp"], loaded))
        for r in touches:
            self.touches[r["lead_id"]].append(Touch("marketing_touch", r["touched_at"], r["_loaded_at"]))

        self.enrichment = defaultdict(list)
        for r in enrichment:
            self.enrichment[str(r["company_domain"]).strip().lower()].append(r)

    # -- the spine -------------------------------------------------------------------------------
    def as_of_dates(self, lead_id: str) -> list[datetime]:
        lead = self.leads[lead_id]
        known = max(lead["created_at"], lead["_loaded_at"])
        closed = [max(s["changed_at"], s["_loaded_at"]) for s in self.statuses[lead_id] if _norm(s["status"]) in TERMINAL]
        closed_known = min(closed) if closed else None
        monday = datetime(known.year, known.month, known.day) - timedelta(days=known.weekday())
        if monday < known:
            monday += timedelta(days=7)
        out = []
        while monday <= self.observed_through:
            if closed_known is not None and monday >= closed_known:
                break
            out.append(monday)
            monday += timedelta(days=7)
        return out

    # -- one row -----------------------------------------------------------------------------------
    def row(self, lead_id: str, as_of: datetime) -> dict:
        visible = [t for t in self.touches[lead_id] if t.event_at <= as_of and t.loaded_at <= as_of]

        def count(days: int, test) -> int:
            start = as_of - timedelta(days=days)
            return sum(1 for t in visible if start < t.event_at <= as_of and test(t))

        def sessions(days: int) -> int:
            start = as_of - timedelta(days=days)
            return len({t.session_id for t in visible if t.kind == "page_view" and start < t.event_at <= as_of
                        and t.session_id is not None})

        last = max((t.event_at for t in visible), default=None)
        budget = {t.budget for t in visible if t.budget}
        stage_rows = [s for s in self.statuses[lead_id] if s["changed_at"] <= as_of and s["_loaded_at"] <= as_of]
        stage_rows.sort(key=lambda s: (s["changed_at"], s["_loaded_at"], s["status_change_id"]))
        lead = self.leads[lead_id]
        domain = str(lead.get("company_domain") or "").strip().lower()
        firmo = [e for e in self.enrichment.get(domain, []) if e["enriched_at"] <= as_of and e["_loaded_at"] <= as_of]
        firmo.sort(key=lambda e: (e["enriched_at"], e["_loaded_at"], e["enrichment_id"]))
        latest = firmo[-1] if firmo else None

        window_end = as_of + self.horizon
        observed = window_end <= self.observed_through
        converted = any(
            _norm(s["status"]) == "converted" and as_of < s["changed_at"] <= window_end and s["_loaded_at"] <= window_end
            for s in self.statuses[lead_id]
        )
        employees = latest.get("employee_count") if latest else None
        return {
            "touchpoints_total": len(visible),
            "emails_opened_7d": count(7, lambda t: t.kind == "email_opened"),
            "emails_opened_30d": count(30, lambda t: t.kind == "email_opened"),
            "pricing_page_views_30d": count(30, lambda t: t.kind == "page_view" and t.page_type == "pricing"),
            "meetings_90d": count(90, lambda t: t.kind == "meeting"),
            "form_fills_90d": count(90, lambda t: t.kind == "form_fill"),
            "web_sessions_30d": sessions(30),
            "days_since_last_touch": None if last is None else (as_of.date() - last.date()).days,
            "days_since_created": (as_of.date() - lead["created_at"].date()).days,
            "has_reached_decision_maker": any(t.decision_maker for t in visible),
            "budget_status": "confirmed" if "confirmed" in budget else ("no_budget" if "no_budget" in budget else "unknown"),
            "lifecycle_stage": _norm(stage_rows[-1]["status"]) if stage_rows else "new",
            "industry": _norm(latest.get("industry")) if latest else None,
            "employee_count": None if employees is None or pd.isna(employees) else int(employees),
            "is_label_observed": observed,
            "label_converted": (1 if converted else 0) if observed else None,
        }


REFERENCE_COLUMNS = (
    "touchpoints_total", "emails_opened_7d", "emails_opened_30d", "pricing_page_views_30d", "meetings_90d",
    "form_fills_90d", "web_sessions_30d", "days_since_last_touch", "days_since_created", "has_reached_decision_maker",
    "budget_status", "lifecycle_stage", "industry", "employee_count", "is_label_observed", "label_converted",
)


def _same(a, b) -> bool:
    a_missing = a is None or (isinstance(a, float) and pd.isna(a)) or a is pd.NA
    b_missing = b is None or (isinstance(b, float) and pd.isna(b)) or b is pd.NA
    if a_missing or b_missing:
        return a_missing and b_missing
    return a == b


def compare_rows(mart: pd.DataFrame, key: str, ids: list[str], columns: tuple[str, ...], as_of_dates, row) -> list[str]:
    """Every difference between mart rows and a reference: the spine first, then each value of each row."""
    problems: list[str] = []
    by_id = {entity: group for entity, group in mart.groupby(key)}
    for entity in ids:
        expected = as_of_dates(entity)
        rows = by_id.get(entity)
        actual = [] if rows is None else [pd.Timestamp(t).to_pydatetime() for t in rows["as_of_at"]]
        if actual != expected:
            problems.append(f"{entity}: spine {len(actual)} rows, reference {len(expected)}")
            continue
        for record in ([] if rows is None else rows.to_dict("records")):
            as_of = pd.Timestamp(record["as_of_at"]).to_pydatetime()
            want = row(entity, as_of)
            for column in columns:
                got = record[column]
                got = got.item() if hasattr(got, "item") else got
                if not _same(got, want[column]):
                    problems.append(f"{entity} @ {as_of:%Y-%m-%d}: {column} mart={got!r} reference={want[column]!r}")
    return problems


def compare_with_mart(con: duckdb.DuckDBPyConnection, horizon_days: int, lead_ids: list[str]) -> list[str]:
    """Every difference between the mart and the reference for the given leads, in words (empty = identical)."""
    reference = ReferenceLeadMart(con, horizon_days)
    con.register("wanted_leads", pd.DataFrame({"lead_id": lead_ids}))
    mart = con.execute(
        f"select lead_id, as_of_at, {', '.join(REFERENCE_COLUMNS)} from marts.fct_lead_features "
        "where lead_id in (select lead_id from wanted_leads) order by lead_id, as_of_at"
    ).df()
    return compare_rows(
        mart, "lead_id", lead_ids, REFERENCE_COLUMNS,
        lambda lead: reference.as_of_dates(lead) if lead in reference.leads else [], reference.row,
    )
