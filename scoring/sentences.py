"""Factors in words, tied to the row's own values."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd


def _num(value, default: float = 0.0) -> float:
    return default if value is None or pd.isna(value) else float(value)


def _nps(r) -> str:
    if r["nps_category"] == "none" or pd.isna(r["latest_nps_score"]):
        return "No NPS answer on record"
    return f"Latest NPS answer {int(r['latest_nps_score'])} ({r['nps_category']})"


def _login_recency(r) -> str:
    days = int(_num(r["days_since_last_login"], 365))
    return "No login in the last year" if days >= 365 else f"Last login {days} day{'s' if days != 1 else ''} ago"


def _usage_volume(r) -> str:
    users = _num(r["active_users_30d"])
    return f"{int(_num(r['logins_30d'])):,} logins by about {users:.0f} active users in the last 30 days"


def _usage_trend(r) -> str:
    ratio = _num(r["login_trend_ratio"], 1.0)
    change = (ratio - 1.0) * 100
    if abs(change) < 5:
        return "Logins flat on the previous 30 days"
    return f"Logins {'down' if change < 0 else 'up'} {abs(change):.0f}% on the previous 30 days"


def _feature_usage(r) -> str:
    if pd.isna(r["feature_usage_30d"]):
        return "No feature usage in the last 30 days"
    text = f"Feature usage index {_num(r['feature_usage_30d']):.0f} of 100"
    if not pd.isna(r["feature_usage_prev_30d"]):
        text += f" (was {_num(r['feature_usage_prev_30d']):.0f})"
    return text


def _support(r) -> str:
    tickets, urgent = int(_num(r["tickets_90d"])), int(_num(r["high_priority_tickets_90d"]))
    if tickets == 0:
        return "No support tickets in 90 days"
    return f"{tickets} support ticket{'s' if tickets != 1 else ''} in 90 days" + (f", {urgent} high priority" if urgent else "")


def _contract(r) -> str:
    kind = str(r["contract_type"] or "unknown").replace("_", "-")
    if pd.isna(r["days_to_renewal"]):
        return f"{kind.capitalize()} contract"
    return f"{kind.capitalize()} contract renewing in {int(r['days_to_renewal'])} days"


def _tenure(r) -> str:
    months = _num(r["tenure_days"]) / 30.4
    return f"Customer for {months:.0f} month{'s' if round(months) != 1 else ''}"


def _csm(r) -> str:
    return "A CSM is assigned" if bool(r["has_csm"]) else "No CSM assigned"


SENTENCES: dict[str, Callable] = {
    "nps": _nps,
    "login_recency": _login_recency,
    "usage_volume": _usage_volume,
    "usage_trend": _usage_trend,
    "feature_usage": _feature_usage,
    "support": _support,
    "contract": _contract,
    "tenure": _tenure,
    "csm": _csm,
}


def describe(factor: str, row) -> str:
    return SENTENCES[factor](row)
