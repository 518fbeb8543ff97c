"""A slow, obvious reference for the customer mart, straight from the raw tables (see
reference_features.py for the rules). Shares no code with the dbt models."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta

import duckdb
import pandas as pd

from tests.reference_features import _first_loaded, _norm, _plain, _valid, compare_rows


def _month_starts_from(moment: datetime):
    first = datetime(moment.year, moment.month, 1)
    if first < moment:
        first = datetime(first.year + (first.month == 12), first.month % 12 + 1, 1)
    while True:
        yield first
        first = datetime(first.year + (first.month == 12), first.month % 12 + 1, 1)


class ReferenceCustomerMart:
    def __init__(self, con: duckdb.DuckDBPyConnection, horizon_days: int) -> None:
        self.horizon = timedelta(days=horizon_days)

        def rows(table: str) -> list[dict]:
            frame = con.execute(f"select * from raw.{table}").df()
            return [{k: _plain(v) for k, v in r.items()} for r in frame.to_dict("records")]

        contracts = _first_loaded(
            _valid(rows("crm_contracts"), ["contract_id", "account_id", "contract_type", "start_date", "_loaded_at"]),
            "contract_id", "start_date",
        )
        events = _first_loaded(
            _valid(rows("crm_contract_events"), ["contract_event_id", "account_id", "event_type", "event_at", "_loaded_at"]),
            "contract_event_id", "event_at",
        )
        usage_rows = _valid(rows("product_usage_daily"), ["account_id", "usage_date", "_loaded_at"])
        for r in usage_rows:
            r["usage_key"] = (r["account_id"], pd.Timestamp(r["usage_date"]).date())
        usage = _first_loaded(usage_rows, "usage_key", "logins")
        tickets = _first_loaded(
            _valid(rows("support_tickets"), ["ticket_id", "account_id", "opened_at", "_loaded_at"]), "ticket_id", "opened_at"
        )
        nps = _first_loaded(
            _valid(rows("nps_responses"), ["response_id", "account_id", "score", "responded_at", "_loaded_at"]),
            "response_id", "responded_at",
        )
        csm = _first_loaded(
            _valid(rows("csm_assignments"), ["assignment_id", "account_id", "assigned_at", "_loaded_at"]),
            "assignment_id", "assigned_at",
        )
        self.observed_through = max(
            max((r["_loaded_at"] for r in group), default=datetime.min) for group in (events, usage, tickets, nps)
        )
        self.by_account: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
        for name, group in (("contracts", contracts), ("events", events), ("usage", usage), ("tickets", tickets),
                            ("nps", nps), ("csm", csm)):
            for r in group:
                self.by_account[r["account_id"]][name].append(r)

    def as_of_dates(self, account_id: str) -> list[datetime]:
        events = self.by_account[account_id]["events"]
        signed = [max(e["event_at"], e["_loaded_at"]) for e in events if _norm(e["event_type"]) == "signed"]
        cancelled = [max(e["event_at"], e["_loaded_at"]) for e in events if _norm(e["event_type"]) == "cancelled"]
        if not signed:
            return []
        churn_known = min(cancelled) if cancelled else None
        out = []
        for month in _month_starts_from(min(signed)):
            if month > self.observed_through or (churn_known is not None and month >= churn_known):
                return out
            out.append(month)

    def row(self, account_id: str, as_of: datetime) -> dict:
        data = self.by_account[account_id]

        def seen(r, time_key):
            return r[time_key] <= as_of and r["_loaded_at"] <= as_of

        contracts = [dict(c, started_at=datetime.combine(pd.Timestamp(c["start_date"]).date(), datetime.min.time()))
                     for c in data["contracts"]]
        contracts = [c for c in contracts if seen(c, "started_at")]
        contracts.sort(key=lambda c: (c["started_at"], c["_loaded_at"], c["contract_id"]))
        usage = []
        for u in data["usage"]:
            day = pd.Timestamp(u["usage_date"]).date()
            complete = datetime.combine(day, datetime.min.time()) + timedelta(days=1)
            if complete <= as_of and u["_loaded_at"] <= as_of:
                usage.append((day, complete, u))

        def logins(lo_days, hi_days):
            lo, hi = as_of - timedelta(days=lo_days), as_of - timedelta(days=hi_days)
            return sum(int(u["logins"] or 0) for _, complete, u in usage if lo < complete <= hi)

        login_days = [day for day, complete, u in usage if (u["logins"] or 0) > 0 and complete > as_of - timedelta(days=365)]
        tickets = [t for t in data["tickets"] if seen(t, "opened_at") and t["opened_at"] > as_of - timedelta(days=30)]
        answers = sorted((n for n in data["nps"] if seen(n, "responded_at")),
                         key=lambda n: (n["responded_at"], n["_loaded_at"], n["response_id"]))
        assignments = sorted((a for a in data["csm"] if seen(a, "assigned_at")),
                             key=lambda a: (a["assigned_at"], a["_loaded_at"], a["assignment_id"]))
        window_end = as_of + self.horizon
        observed = window_end <= self.observed_through
        churned = any(
            _norm(e["event_type"]) == "cancelled" and as_of < e["event_at"] <= window_end and e["_loaded_at"] <= window_end
            for e in data["events"]
        )
        return {
            "tenure_days": (as_of.date() - contracts[0]["started_at"].date()).days if contracts else None,
            "contract_type": _norm(contracts[-1]["contract_type"]) if contracts else None,
            "logins_30d": logins(30, 0),
            "logins_prev_30d": logins(60, 30),
            "days_since_last_login": (as_of.date() - max(login_days)).days if login_days else 365,
            "tickets_30d": len(tickets),
            "latest_nps_score": int(answers[-1]["score"]) if answers else None,
            "has_csm": bool(assignments) and assignments[-1]["csm_id"] is not None,
            "is_label_observed": observed,
            "label_churned": (1 if churned else 0) if observed else None,
        }


CUSTOMER_REFERENCE_COLUMNS = (
    "tenure_days", "contract_type", "logins_30d", "logins_prev_30d", "days_since_last_login", "tickets_30d",
    "latest_nps_score", "has_csm", "is_label_observed", "label_churned",
)


def compare_customers_with_mart(con: duckdb.DuckDBPyConnection, horizon_days: int, account_ids: list[str]) -> list[str]:
    """Every difference between fct_customer_features and the reference for the given accounts."""
    reference = ReferenceCustomerMart(con, horizon_days)
    con.register("wanted_accounts", pd.DataFrame({"account_id": account_ids}))
    mart = con.execute(
        f"select account_id, as_of_at, {', '.join(CUSTOMER_REFERENCE_COLUMNS)} from marts.fct_customer_features "
        "where account_id in (select account_id from wanted_accounts) order by account_id, as_of_at"
    ).df()
    return compare_rows(mart, "account_id", account_ids, CUSTOMER_REFERENCE_COLUMNS, reference.as_of_dates, reference.row)
