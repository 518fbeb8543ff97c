"""Intervention playbooks: explicit, ordered rules over features. The first rule that matches is the
recommendation; every matching rule is listed. Documented in README ("Churn interventions")."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from scoring.sentences import STEADY_DECIMALS


@dataclass(frozen=True)
class Rule:
    action: str
    when: str  # the condition in words
    test: Callable[[pd.DataFrame], pd.Series]


def _flag(frame: pd.DataFrame, column: str) -> pd.Series:
    return frame[column].fillna(False).astype(bool)


def _num(frame: pd.DataFrame, column: str, missing: float) -> pd.Series:
    return pd.to_numeric(frame[column], errors="coerce").fillna(missing).round(STEADY_DECIMALS)


CHURN_PLAYBOOK: tuple[Rule, ...] = (
    Rule("NPS follow-up call", "the latest NPS answer is a detractor (0-6)",
         lambda f: f["nps_category"].eq("detractor")),
    Rule("Re-engagement campaign", "no login for 30 days or more",
         lambda f: _num(f, "days_since_last_login", 365) >= 30),
    Rule("Assign a CSM", "a high-value account (annual value 50,000 or more) has no CSM",
         lambda f: _flag(f, "is_high_value") & ~_flag(f, "has_csm")),
    Rule("Value-realisation workshop", "feature usage index below 40 over the last 30 days",
         lambda f: _num(f, "feature_usage_30d", 0) < 40),
    Rule("Support escalation review", "2+ high-priority tickets in 90 days, or 3+ tickets in 30 days",
         lambda f: (_num(f, "high_priority_tickets_90d", 0) >= 2) | (_num(f, "tickets_30d", 0) >= 3)),
    Rule("Usage-drop check-in", "logins down 30% or more on the previous 30 days",
         lambda f: _num(f, "login_trend_ratio", 1) <= 0.7),
    Rule("Offer an annual plan", "a monthly contract after 6 months as a customer",
         lambda f: f["contract_type"].eq("monthly") & (_num(f, "tenure_days", 0) >= 180)),
)
CHURN_DEFAULT_ACTION = "Regular check-in"


def recommend(frame: pd.DataFrame, rules: tuple[Rule, ...], default: str) -> tuple[np.ndarray, np.ndarray]:
    """(first matching action, all matching actions joined by '; ') per row."""
    matches = np.column_stack([rule.test(frame).to_numpy(dtype=bool) for rule in rules]) if len(frame) else \
        np.zeros((0, len(rules)), bool)
    actions = np.asarray([rule.action for rule in rules], dtype=object)
    first = np.where(matches.any(axis=1), actions[np.argmax(matches, axis=1)] if len(frame) else [], default)
    every = np.asarray(["; ".join(actions[row]) or default for row in matches], dtype=object)
    return first.astype(object), every


LEAD_PLAYBOOK: tuple[Rule, ...] = (
    Rule("Leverage referral relationship", "the lead came in through a referral",
         lambda f: f["lead_source"].eq("referral")),
    Rule("Fast-track — lead ageing", "the lead is 60+ days old and still open",
         lambda f: _num(f, "days_since_created", 0) >= 60),
    Rule("Schedule executive meeting", "no decision maker reached yet",
         lambda f: ~_flag(f, "has_reached_decision_maker")),
    Rule("Discuss budget & ROI", "budget not discussed yet",
         lambda f: f["budget_status"].eq("unknown")),
    Rule("Send pricing follow-up", "visited the pricing page in the last 7 days",
         lambda f: _num(f, "pricing_page_views_7d", 0) > 0),
    Rule("Book a demo", "viewed demo pages in the last 30 days but no meeting in 90 days",
         lambda f: (_num(f, "demo_page_views_30d", 0) > 0) & (_num(f, "meetings_90d", 0) == 0)),
    Rule("Re-engage with fresh content", "no activity for 30 days or more",
         lambda f: _num(f, "days_since_last_touch", 999) >= 30),
)
LEAD_DEFAULT_ACTION = "Qualify by phone or email"
