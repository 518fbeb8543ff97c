"""The score tables' shape, owned here so dbt can build reports over them before the first scoring run."""

from __future__ import annotations

from core.warehouse import Connection

LEAD_SCORE_COLUMNS = """
    lead_id varchar not null,
    as_of_date date not null,
    scored_at timestamp not null,
    model_version varchar not null,
    conversion_probability double not null,
    score integer not null,
    tier varchar not null,
    is_above_threshold boolean not null,
    fit_score integer,
    engagement_score integer,
    top_reasons varchar,
    next_action varchar,
    segment_id integer
"""

# Columns added after the first release: existing warehouses get them on the next run.
LEAD_SCORE_ADDITIONS = (
    "fit_score integer", "engagement_score integer", "top_reasons varchar", "next_action varchar",
    "segment_id integer",
)

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
create table if not exists scores.score_reasons (
    model_name varchar not null, entity_id varchar not null, as_of_date date not null, scored_at timestamp not null,
    model_version varchar not null, direction varchar not null, rank integer not null, factor varchar not null,
    reason varchar not null, contribution double not null
);
create table if not exists scores.lead_segments (
    segment_id integer not null, leads bigint not null, share_of_leads double not null, historical_rows bigint,
    historical_conversion_rate double, description varchar not null, k integer not null, silhouette double,
    scored_at timestamp not null, model_version varchar not null
);
create table if not exists scores.score_drift (
    model_name varchar not null, model_version varchar not null, scored_at timestamp not null,
    as_of_date date not null, reference_as_of_date date not null, variable varchar not null, psi double,
    is_alert boolean not null
);
""" + "".join(
    f"alter table scores.{table} add column if not exists {column};\n"
    for table in ("lead_scores", "lead_score_history") for column in LEAD_SCORE_ADDITIONS
)


def ensure_score_tables(con: Connection) -> None:
    con.execute(SCORE_TABLES_DDL)
