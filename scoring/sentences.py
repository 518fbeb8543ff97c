"""Factors in words, tied to the row's own values."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from ml.features import CONTENT_TOPIC_SHARES

# Every factor's sentence and the columns it reads (rows equal on them get the same sentence;
# tests/test_explanations_and_routing.py checks each sentence against its columns). Filled by @sentence.
SENTENCES: dict[str, Callable] = {}
SENTENCE_COLUMNS: dict[str, tuple[str, ...]] = {}


def sentence(factor: str, *columns: str) -> Callable[[Callable], Callable]:
    """Register a function as `factor`'s sentence, reading only `columns` of a row."""
    def register(function: Callable) -> Callable:
        SENTENCES[factor], SENTENCE_COLUMNS[factor] = function, tuple(columns)
        return function
    return register



# Words and playbook rules read features to this many decimals: DuckDB sums doubles in parallel in no fixed order,
# so a feature can differ by about 1e-14 between two builds of the same data, and 49.5 must not print as 49 in one
# and 50 in the other (nor a ratio of exactly 0.7 fall on either side of a rule's threshold).
STEADY_DECIMALS = 9


def _num(value, default: float = 0.0) -> float:
    return default if value is None or pd.isna(value) else round(float(value), STEADY_DECIMALS)


@sentence('nps', 'nps_category', 'latest_nps_score')
def _nps(r) -> str:
    if r["nps_category"] == "none" or pd.isna(r["latest_nps_score"]):
        return "No NPS answer on record"
    return f"Latest NPS answer {int(r['latest_nps_score'])} ({r['nps_category']})"


@sentence('login_recency', 'days_since_last_login')
def _login_recency(r) -> str:
    days = int(_num(r["days_since_last_login"], 365))
    return "No login in the last year" if days >= 365 else f"Last login {days} day{'s' if days != 1 else ''} ago"


@sentence('usage_volume', 'logins_30d', 'active_users_30d')
def _usage_volume(r) -> str:
    users = _num(r["active_users_30d"])
    return f"{int(_num(r['logins_30d'])):,} logins by about {users:.0f} active users in the last 30 days"


@sentence('usage_trend', 'login_trend_ratio')
def _usage_trend(r) -> str:
    ratio = _num(r["login_trend_ratio"], 1.0)
    change = (ratio - 1.0) * 100
    if abs(change) < 5:
        return "Logins flat on the previous 30 days"
    return f"Logins {'down' if change < 0 else 'up'} {abs(change):.0f}% on the previous 30 days"


@sentence('feature_usage', 'feature_usage_30d', 'feature_usage_prev_30d')
def _feature_usage(r) -> str:
    if pd.isna(r["feature_usage_30d"]):
        return "No feature usage in the last 30 days"
    text = f"Feature usage index {_num(r['feature_usage_30d']):.0f} of 100"
    if not pd.isna(r["feature_usage_prev_30d"]):
        text += f" (was {_num(r['feature_usage_prev_30d']):.0f})"
    return text


@sentence('support', 'tickets_90d', 'high_priority_tickets_90d')
def _support(r) -> str:
    tickets, urgent = int(_num(r["tickets_90d"])), int(_num(r["high_priority_tickets_90d"]))
    if tickets == 0:
        return "No support tickets in 90 days"
    return f"{tickets} support ticket{'s' if tickets != 1 else ''} in 90 days" + (f", {urgent} high priority" if urgent else "")


@sentence('contract', 'contract_type', 'days_to_renewal')
def _contract(r) -> str:
    kind = str(r["contract_type"] or "unknown").replace("_", "-")
    if pd.isna(r["days_to_renewal"]):
        return f"{kind.capitalize()} contract"
    return f"{kind.capitalize()} contract renewing in {int(r['days_to_renewal'])} days"


@sentence('tenure', 'tenure_days')
def _tenure(r) -> str:
    months = _num(r["tenure_days"]) / 30.4
    return f"Customer for {months:.0f} month{'s' if round(months) != 1 else ''}"


@sentence('csm', 'has_csm')
def _csm(r) -> str:
    return "A CSM is assigned" if bool(r["has_csm"]) else "No CSM assigned"




def describe_many(factor: str, frame: pd.DataFrame) -> np.ndarray:
    """The factor's sentence for every row of `frame`, writing each distinct sentence once: rows are grouped by the
    columns the factor's sentence reads (SENTENCE_COLUMNS), which take few distinct values."""
    columns = list(SENTENCE_COLUMNS[factor])
    if frame.empty:
        return np.empty(0, dtype=object)
    groups = frame.groupby(columns, dropna=False, sort=False).ngroup().to_numpy()
    _, first = np.unique(groups, return_index=True)
    records = frame.iloc[first][columns].to_dict("records")
    sentences = np.empty(len(first), dtype=object)
    sentences[groups[first]] = [SENTENCES[factor](record) for record in records]
    return sentences[groups]


# --- lead factors ---------------------------------------------------------------------------------

def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


@sentence('pricing_interest', 'pricing_page_views_7d', 'pricing_page_views_30d', 'pricing_page_views_90d')
def _pricing(r) -> str:
    week, month = int(_num(r["pricing_page_views_7d"])), int(_num(r["pricing_page_views_30d"]))
    if week:
        return f"Visited pricing {_plural(week, 'time')} in the last 7 days"
    if month:
        return f"Visited pricing {_plural(month, 'time')} in the last 30 days"
    return "No pricing page visits in 90 days" if not _num(r["pricing_page_views_90d"]) else \
        f"Visited pricing {_plural(int(_num(r['pricing_page_views_90d'])), 'time')} in 90 days, none lately"


@sentence('demo_trial_interest', 'demo_page_views_30d', 'free_trial_page_views_30d')
def _demo_trial(r) -> str:
    demo, trial = int(_num(r["demo_page_views_30d"])), int(_num(r["free_trial_page_views_30d"]))
    if demo or trial:
        parts = ([_plural(demo, "demo page view")] if demo else []) + ([_plural(trial, "free-trial page view")] if trial else [])
        return " and ".join(parts) + " in the last 30 days"
    return "No demo or free-trial page views in 30 days"


@sentence('web_engagement', 'web_sessions_30d')
def _web(r) -> str:
    return f"{_plural(int(_num(r['web_sessions_30d'])), 'web session')} in the last 30 days"


@sentence('email_engagement', 'emails_opened_30d', 'emails_clicked_30d')
def _email(r) -> str:
    opened, clicked = int(_num(r["emails_opened_30d"])), int(_num(r["emails_clicked_30d"]))
    return f"Opened {_plural(opened, 'email')} and clicked {clicked} in the last 30 days"


@sentence('sales_conversations', 'calls_90d', 'meetings_90d')
def _conversations(r) -> str:
    calls, meetings = int(_num(r["calls_90d"])), int(_num(r["meetings_90d"]))
    if not calls and not meetings:
        return "No calls or meetings in 90 days"
    return f"{_plural(calls, 'call')} and {_plural(meetings, 'meeting')} in the last 90 days"


@sentence('form_fills', 'form_fills_90d')
def _forms(r) -> str:
    fills = int(_num(r["form_fills_90d"]))
    return f"Filled in {_plural(fills, 'form')} in the last 90 days" if fills else "No form fills in 90 days"


@sentence('marketing_touches', 'marketing_touches_90d')
def _marketing(r) -> str:
    return f"{_plural(int(_num(r['marketing_touches_90d'])), 'marketing touch')} in the last 90 days".replace("touchs", "touches")


@sentence('recency', 'days_since_last_touch')
def _recency(r) -> str:
    if pd.isna(r["days_since_last_touch"]):
        return "No recorded activity yet"
    days = int(r["days_since_last_touch"])
    return "Active today" if days == 0 else f"No activity for {_plural(days, 'day')}" if days >= 14 else f"Last active {_plural(days, 'day')} ago"


@sentence('lead_age', 'days_since_created')
def _age(r) -> str:
    return f"Lead created {_plural(int(_num(r['days_since_created'])), 'day')} ago"


@sentence('seniority', 'seniority_tier')
def _seniority(r) -> str:
    return {
        "c_level": "C-level title", "vp": "VP-level title", "director": "Director-level title",
        "manager": "Manager-level title", "individual": "Individual-contributor title", "unknown": "No job title given",
    }.get(str(r["seniority_tier"]), "Job title not recognised")


@sentence('decision_maker', 'has_reached_decision_maker')
def _decision_maker(r) -> str:
    return "Decision maker reached" if bool(r["has_reached_decision_maker"]) else "Decision maker not reached yet"


@sentence('budget', 'budget_status')
def _budget(r) -> str:
    return {"confirmed": "Budget confirmed", "no_budget": "No budget, as of the last conversation"}.get(
        str(r["budget_status"]), "Budget not discussed yet")


@sentence('lead_source', 'lead_source')
def _source(r) -> str:
    return f"Came in through {str(r['lead_source'] or 'an unknown source').replace('_', ' ')}"


@sentence('stage', 'lifecycle_stage')
def _stage(r) -> str:
    return {"mql": "Marketing-qualified (MQL)", "sql": "Sales-qualified (SQL)"}.get(str(r["lifecycle_stage"]), "New lead, not yet qualified")


@sentence('company_fit', 'is_personal_email', 'industry', 'employee_band')
def _company(r) -> str:
    if bool(r["is_personal_email"]):
        return "Personal email address, no company data"
    if pd.isna(r["industry"]):
        return "Company not enriched yet"
    size = f", {r['employee_band']} employees" if isinstance(r["employee_band"], str) else ""
    return f"{str(r['industry']).capitalize()} company{size}"


@sentence('country', 'country_code')
def _country(r) -> str:
    return f"Based in {r['country_code']}" if isinstance(r["country_code"], str) else "Country unknown"


@sentence('journey', *tuple(f"journey_step_{i}" for i in range(1, 6)) + ("viewed_pricing_before_demo", "viewed_demo_before_pricing"))
def _journey(r) -> str:
    steps = [r[f"journey_step_{i}"] for i in range(1, 6)]
    path = " > ".join(str(step) for step in steps if isinstance(step, str)) or None
    if bool(r["viewed_pricing_before_demo"]):
        order = "Looked at pricing, then asked for the demo"
    elif bool(r["viewed_demo_before_pricing"]):
        order = "Saw the demo page before pricing"
    else:
        order = None
    if order and path:
        return f"{order} (path: {path.replace('_', ' ')})"
    return order or (f"Journey so far: {path.replace('_', ' ')}" if path else "No journey steps yet")


@sentence('engagement_momentum', 'engaged_touches_7d', 'engaged_touches_prev_30d', 'engagement_trend')
def _momentum(r) -> str:
    week, before = int(_num(r["engaged_touches_7d"])), int(_num(r["engaged_touches_prev_30d"]))
    trend = _num(r["engagement_trend"], 1.0)
    direction = "rising" if trend > 1.2 else "falling" if trend < 0.8 else "steady"
    return f"Engagement {direction}: {_plural(week, 'touch')} in the last 7 days, {before} in the 30 days before".replace(
        "touchs", "touches")


@sentence('content_interest', *("content_downloads_total", *CONTENT_TOPIC_SHARES))
def _content(r) -> str:
    downloads = int(_num(r["content_downloads_total"]))
    shares = [_num(r[column]) for column in CONTENT_TOPIC_SHARES]
    top = max(range(len(shares)), key=lambda k: shares[k])
    text = f"{shares[top]:.0%} of page views on content topic {top}" if shares[top] > 0 else "No content read yet"
    return text + (f", {_plural(downloads, 'content download')}" if downloads else "")


@sentence('profile', 'profile_completeness')
def _profile(r) -> str:
    return f"Profile {_num(r['profile_completeness']):.0%} complete"
