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
  as_of + h <= the data's high-water mark;
- journey steps are the visible touches except emails sent, in the order they could be seen:
  by max(event_at, _loaded_at), then event time, then id.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import pairwise

import duckdb
import pandas as pd

from core.config import CONTENT_TOPIC_COUNT

TERMINAL = {"converted", "disqualified"}
PERSONAL_DOMAINS = {"gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com", "aol.com"}
DECAY_WEIGHT = {"form_fill": 5.0, "meeting": 4.0, "call": 2.0, "email_clicked": 1.0, "email_opened": 0.5,
                "marketing_touch": 0.5}
HALF_LIFE_DAYS = 14


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
    touch_id: str = ""
    channel: str | None = None
    form_name: str | None = None
    url: str | None = None

    @property
    def known_at(self) -> datetime:
        return max(self.event_at, self.loaded_at)

    @property
    def order(self) -> tuple:
        return (self.known_at, self.event_at, self.touch_id)

    @property
    def step(self) -> str | None:
        if self.kind == "marketing_touch":
            return self.channel or "unknown_channel"
        if self.kind == "page_view":
            return f"{self.page_type}_page"
        return None if self.kind == "email_sent" else self.kind

    @property
    def decay_weight(self) -> float:
        if self.kind == "page_view":
            return 3.0 if self.page_type in ("pricing", "demo", "free_trial") else 1.0
        return DECAY_WEIGHT.get(self.kind, 0.0)


def _path_of(url: str) -> str:
    path = url.lower().split("://", 1)[-1]
    path = path[path.index("/"):] if "/" in path else ""
    return path.split("?", 1)[0].split("#", 1)[0]


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
                touch_id=r["activity_id"],
            ))
        for r in pages:
            lead, loaded = web_owner(r)
            if lead is not None:
                self.touches[lead].append(Touch("page_view", r["timestamp"], loaded, page_type=_page_type(r["url"]),
                                                session_id=r.get("session_id"), touch_id=r["message_id"], url=r["url"]))
        for r in tracks:
            lead, loaded = web_owner(r)
            if lead is not None:
                self.touches[lead].append(Touch("form_fill", r["timestamp"], loaded, touch_id=r["message_id"],
                                                form_name=_norm(r.get("form_name"))))
        for r in touches:
            self.touches[r["lead_id"]].append(Touch("marketing_touch", r["touched_at"], r["_loaded_at"],
                                                    touch_id=r["touch_id"], channel=_norm(r["channel"])))

        # the fitted page -> topic map is an input of the build, like a seed
        self.topic_of = dict(con.execute("select url, topic_id from content.page_topics").fetchall())
        self.topic_count = CONTENT_TOPIC_COUNT

        # leads by company domain, for colleagues_known
        self.domain_leads = defaultdict(list)
        for r in leads:
            domain = str(r.get("company_domain") or "").strip().lower()
            if domain and domain not in PERSONAL_DOMAINS:
                self.domain_leads[domain].append((r["lead_id"], max(r["created_at"], r["_loaded_at"])))

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
        return {**self.journey(lead_id, as_of, visible), 
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
            "label_converted": (1 if converted else 0) if observed else None
        }

    def journey(self, lead_id: str, as_of: datetime, visible: list[Touch]) -> dict:
        """The journey and engagement-dynamics columns, literally from the visible touches."""
        steps = sorted((t for t in visible if t.step is not None), key=lambda t: t.order)
        names = [t.step for t in steps]
        pages = sorted((t for t in visible if t.kind == "page_view"), key=lambda t: t.order)
        page_types = [t.page_type for t in pages]

        def in_window(t: Touch, newer: int, older: int) -> bool:  # (as_of - older, as_of - newer]
            return as_of - timedelta(days=older) < t.event_at <= as_of - timedelta(days=newer)

        sessions: dict[str, list[Touch]] = defaultdict(list)
        for t in pages:
            if t.session_id is not None:
                sessions[t.session_id].append(t)
        session_minutes = [
            (max(v.event_at for v in views) - min(v.event_at for v in views)).total_seconds() / 60 for views in sessions.values()
        ]

        def first_index(test) -> int | None:
            return next((i for i, t in enumerate(steps) if test(t)), None)

        pricing = first_index(lambda t: t.kind == "page_view" and t.page_type == "pricing")
        demo = first_index(lambda t: t.kind == "page_view" and t.page_type == "demo")
        form = first_index(lambda t: t.kind == "form_fill")
        marketing = [t for t in steps if t.kind == "marketing_touch"]
        lead = self.leads[lead_id]
        domain = str(lead.get("company_domain") or "").strip().lower()
        decayed = sum(t.decay_weight * 0.5 ** ((as_of - t.event_at).total_seconds() / 86400 / HALF_LIFE_DAYS)
                      for t in visible)
        topics = [self.topic_of.get(t.url) for t in pages]
        row = {
            "web_sessions_7d": len({t.session_id for t in pages if t.session_id and in_window(t, 0, 7)}),
            "web_sessions_90d": len({t.session_id for t in pages if t.session_id and in_window(t, 0, 90)}),
            "engaged_touches_7d": sum(1 for t in steps if in_window(t, 0, 7)),
            "engaged_touches_prev_30d": sum(1 for t in steps if in_window(t, 7, 37)),
            "engagement_score_decayed": decayed,
            "content_downloads_total": sum(1 for t in visible if t.kind == "form_fill" and t.form_name == "ebook_download"),
            "sessions_total": len(sessions),
            "page_views_total": len(pages),
            "avg_pages_per_session": len(pages) / len(sessions) if sessions else None,
            "avg_session_minutes": sum(session_minutes) / len(sessions) if sessions else None,
            "bounce_rate": sum(1 for v in sessions.values() if len(v) == 1) / len(sessions) if sessions else None,
            "journey_path": " > ".join(names[:5]),
            "last_journey_step": names[-1] if names else None,
            "journey_steps_total": len(names),
            "avg_days_between_steps": (
                (max(t.event_at for t in steps) - min(t.event_at for t in steps)).total_seconds() / 86400 / (len(steps) - 1)
                if len(steps) > 1 else None),
            "touches_before_first_form_fill": form,
            "viewed_pricing_before_demo": pricing is not None and demo is not None and pricing < demo,
            "viewed_demo_before_pricing": pricing is not None and demo is not None and demo < pricing,
            "transitions_pricing_to_demo": sum(1 for a, b in pairwise(page_types) if (a, b) == ("pricing", "demo")),
            "transitions_blog_to_pricing_to_demo": sum(
                1 for a, b, c in zip(page_types, page_types[1:], page_types[2:]) if (a, b, c) == ("blog", "pricing", "demo")),
            "channels_seen": len({t.channel for t in marketing}),
            "first_touch_channel": marketing[0].channel if marketing else None,
            "landing_page_path": _path_of(pages[0].url) if pages else None,
            "colleagues_known": sum(1 for other, known in self.domain_leads.get(domain, [])
                                    if other != lead_id and known <= as_of),
        }
        for i in range(5):
            row[f"journey_step_{i + 1}"] = names[i] if i < len(names) else None
        for k in range(self.topic_count):
            row[f"content_topic_{k}_share"] = sum(1 for x in topics if x == k) / len(topics) if topics else None
        return row


REFERENCE_COLUMNS = (
    "touchpoints_total", "emails_opened_7d", "emails_opened_30d", "pricing_page_views_30d", "meetings_90d",
    "form_fills_90d", "web_sessions_30d", "days_since_last_touch", "days_since_created", "has_reached_decision_maker",
    "budget_status", "lifecycle_stage", "industry", "employee_count", "is_label_observed", "label_converted",
    # journey and engagement dynamics
    "web_sessions_7d", "web_sessions_90d", "engaged_touches_7d", "engaged_touches_prev_30d", "engagement_score_decayed",
    "content_downloads_total", "sessions_total", "page_views_total", "avg_pages_per_session", "avg_session_minutes",
    "bounce_rate", "journey_step_1", "journey_step_2", "journey_step_3", "journey_step_4", "journey_step_5",
    "journey_path", "last_journey_step", "journey_steps_total", "avg_days_between_steps",
    "touches_before_first_form_fill", "viewed_pricing_before_demo", "viewed_demo_before_pricing",
    "transitions_pricing_to_demo", "transitions_blog_to_pricing_to_demo", "channels_seen", "first_touch_channel",
    "landing_page_path", "colleagues_known", *(f"content_topic_{k}_share" for k in range(CONTENT_TOPIC_COUNT)),
)


def _same(a, b) -> bool:
    a_missing = a is None or (isinstance(a, float) and pd.isna(a)) or a is pd.NA
    b_missing = b is None or (isinstance(b, float) and pd.isna(b)) or b is pd.NA
    if a_missing or b_missing:
        return a_missing and b_missing
    if isinstance(a, float) or isinstance(b, float):  # sums of doubles: equal up to rounding
        return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-6)
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
