"""The score tables' shape, owned here so dbt can build reports over them before the first scoring run."""

from __future__ import annotations

from scorehouse.config import Settings
from scorehouse.warehouse import connect

LEAD_SCORE_COLUMNS = """
    lead_id varchar not null,
    as_of_date date not null,
    scored_at timestamp not null,
    model_version varchar not null,
    conversion_probability double not null,
    score integer not null,
    tier varchar not null,
    is_above_threshold boolean not null
"""

CHURN_SCORE_COLUMNS = """
    account_id varchar not null,
    as_of_date date not null,
    scored_at timestamp not null,
    model_version varchar not null,
    churn_probability double not null,
    score integer not null,
    risk_tier varchar not null,
    is_above_threshold boolean not null,
    top_drivers varchar,
    recommended_intervention varchar not null,
    interventions varchar not null
"""

SCORE_TABLES_DDL = f"""
create schema if not exists scores;
create table if not exists scores.lead_scores ({LEAD_SCORE_COLUMNS});
create table if not exists scores.lead_score_history ({LEAD_SCORE_COLUMNS});
create table if not exists scores.customer_churn_scores ({CHURN_SCORE_COLUMNS});
create table if not exists scores.customer_churn_score_history ({CHURN_SCORE_COLUMNS});
"""


def ensure_score_tables(settings: Settings) -> None:
    with connect(settings) as con:
        con.execute(SCORE_TABLES_DDL)
