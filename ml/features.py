"""Which mart columns a model may use, how they group into explainable factors, and where scores go."""

from __future__ import annotations

from dataclasses import dataclass, replace

from core.config import CONTENT_TOPIC_COUNT


@dataclass(frozen=True)
class ModelSpec:
    """Everything that ties a model to its mart: table, keys, label, feature columns, and its score tables."""

    name: str
    mart: str
    entity_key: str
    label: str
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    boolean: tuple[str, ...] = ()
    # High-cardinality categoricals: target-encoded out of fold (one-hot would explode; see ml/pipeline.py).
    target_encoded: tuple[str, ...] = ()
    horizon_setting: str = "lead_horizon_days"  # the Settings field (and dbt var) holding the label horizon
    date_column: str = "as_of_date"
    observed_flag: str = "is_label_observed"
    # Explainable factors: each group of columns is switched off together to measure its effect.
    reason_groups: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # Where scores go: the current table, its history, the probability column and tier names (best first).
    score_table: str = "lead_scores"
    history_table: str = "lead_score_history"
    probability_column: str = "conversion_probability"
    tier_column: str = "tier"
    tier_labels: tuple[str, str, str, str] = ("A", "B", "C", "D")
    # Evaluation only (never features): columns to cut metrics by, and SQL giving a money value per entity
    # (entity key, row_value) for "value captured in the top deciles".
    segments: tuple[str, ...] = ()
    value_sql: str | None = None
    value_column: str | None = None

    @property
    def features(self) -> tuple[str, ...]:
        return self.numeric + self.categorical + self.boolean + self.target_encoded

    def restricted_to(self, allowed: set[str]) -> "ModelSpec":
        """The same spec with only the allowed feature columns (reason groups left without columns are dropped)."""
        keep = lambda columns: tuple(c for c in columns if c in allowed)  # noqa: E731
        return replace(self, numeric=keep(self.numeric), categorical=keep(self.categorical), boolean=keep(self.boolean),
                       target_encoded=keep(self.target_encoded),
                       reason_groups=tuple((f, keep(cols)) for f, cols in self.reason_groups if keep(cols)))

    def columns_of(self, factors: tuple[str, ...]) -> tuple[str, ...]:
        groups = dict(self.reason_groups)
        return tuple(column for factor in factors for column in groups[factor])


# Lead factors split into who the lead is (fit) and what it did (engagement), for the two sub-scores.
LEAD_FIT_FACTORS = ("seniority", "lead_source", "company_fit", "country", "profile")
LEAD_ENGAGEMENT_FACTORS = ("pricing_interest", "demo_trial_interest", "web_engagement", "email_engagement",
                           "sales_conversations", "form_fills", "marketing_touches", "recency", "journey",
                           "engagement_momentum", "content_interest")


_WINDOWED = {
    "emails_opened": (7, 30, 90),
    "emails_clicked": (7, 30, 90),
    "calls": (30, 90),
    "meetings": (30, 90),
    "web_sessions": (7, 30, 90),
    "page_views": (30, 90),
    "pricing_page_views": (7, 30, 90),
    "demo_page_views": (30, 90),
    "free_trial_page_views": (30, 90),
    "form_fills": (30, 90),
    "marketing_touches": (30, 90),
}

# Feature families, for the ablation benchmark (benchmarks/ablation.py) and the reason groups below.
JOURNEY_TRANSITIONS = (
    "transitions_blog_to_pricing", "transitions_docs_to_pricing", "transitions_pricing_to_demo",
    "transitions_demo_to_pricing", "transitions_pricing_to_free_trial", "transitions_webinar_to_demo",
    "transitions_blog_to_pricing_to_demo", "transitions_pricing_to_demo_to_free_trial",
)
JOURNEY_NUMERIC = ("journey_steps_total", "avg_days_between_steps", "touches_before_first_form_fill", "channels_seen",
                   *JOURNEY_TRANSITIONS)
JOURNEY_CATEGORICAL = ("journey_step_1", "journey_step_2", "journey_step_3", "journey_step_4", "journey_step_5",
                       "last_journey_step", "first_touch_channel")
JOURNEY_BOOLEAN = ("viewed_pricing_before_demo", "viewed_demo_before_pricing")
DYNAMICS_NUMERIC = ("engaged_touches_7d", "engaged_touches_prev_30d", "engagement_trend", "engagement_score_decayed",
                    "sessions_total", "page_views_total", "avg_pages_per_session", "avg_session_minutes", "bounce_rate",
                    "days_since_trial_activity")
CONTENT_TOPIC_SHARES = tuple(f"content_topic_{k}_share" for k in range(CONTENT_TOPIC_COUNT))
CONTENT_NUMERIC = ("content_downloads_total", *CONTENT_TOPIC_SHARES)
ENCODED_NUMERIC = ("colleagues_known", "profile_completeness")
# URLs reach the model through their content topics, not as raw paths: target-encoding landing_page_path
# (~1,000 values) cost 0.007 out-of-time ROC-AUC in the ablation, where topics did not.
ENCODED_HIGH_CARDINALITY = ("city", "first_touch_campaign")

LEAD_FIT_CATEGORICAL = (
    "lead_source",
    "seniority_tier",
    "country_code",
    "industry",
    "employee_band",
    "revenue_band",
)

LEAD_CONVERSION = ModelSpec(
    name="lead_conversion",
    mart="marts.fct_lead_features",
    entity_key="lead_id",
    label="label_converted",
    numeric=(
        "employee_count",
        "days_since_created",
        "touchpoints_total",
        "days_since_first_touch",
        "days_since_last_touch",
        *(f"{name}_{days}d" for name, windows in _WINDOWED.items() for days in windows),
        *JOURNEY_NUMERIC,
        *DYNAMICS_NUMERIC,
        *CONTENT_NUMERIC,
        *ENCODED_NUMERIC,
    ),
    categorical=(*LEAD_FIT_CATEGORICAL, "lifecycle_stage", "budget_status", *JOURNEY_CATEGORICAL),
    boolean=("is_personal_email", "has_reached_decision_maker", *JOURNEY_BOOLEAN),
    target_encoded=ENCODED_HIGH_CARDINALITY,
    reason_groups=(
        ("pricing_interest", ("pricing_page_views_7d", "pricing_page_views_30d", "pricing_page_views_90d")),
        ("demo_trial_interest", ("demo_page_views_30d", "demo_page_views_90d", "free_trial_page_views_30d",
                                 "free_trial_page_views_90d", "days_since_trial_activity")),
        ("web_engagement", ("web_sessions_7d", "web_sessions_30d", "web_sessions_90d", "page_views_30d",
                            "page_views_90d", "sessions_total", "page_views_total", "avg_pages_per_session",
                            "avg_session_minutes", "bounce_rate")),
        ("email_engagement", ("emails_opened_7d", "emails_opened_30d", "emails_opened_90d", "emails_clicked_7d",
                              "emails_clicked_30d", "emails_clicked_90d")),
        ("sales_conversations", ("calls_30d", "calls_90d", "meetings_30d", "meetings_90d")),
        ("form_fills", ("form_fills_30d", "form_fills_90d")),
        ("marketing_touches", ("marketing_touches_30d", "marketing_touches_90d")),
        ("recency", ("days_since_last_touch",)),
        ("lead_age", ("days_since_created", "days_since_first_touch", "touchpoints_total")),
        ("seniority", ("seniority_tier",)),
        ("decision_maker", ("has_reached_decision_maker",)),
        ("budget", ("budget_status",)),
        ("lead_source", ("lead_source", "first_touch_campaign")),
        ("journey", (*JOURNEY_NUMERIC, *JOURNEY_CATEGORICAL, *JOURNEY_BOOLEAN)),
        ("engagement_momentum", ("engaged_touches_7d", "engaged_touches_prev_30d", "engagement_trend",
                                 "engagement_score_decayed")),
        ("content_interest", CONTENT_NUMERIC),
        ("profile", ("profile_completeness",)),
        ("stage", ("lifecycle_stage",)),
        ("company_fit", ("industry", "employee_count", "employee_band", "revenue_band", "is_personal_email",
                         "colleagues_known")),
        ("country", ("country_code", "city")),
    ),
    segments=("industry", "employee_band", "lead_source"),
    value_sql="select lead_id, sum(amount) as row_value from staging.stg_crm__opportunities group by lead_id",
)

CUSTOMER_CHURN = ModelSpec(
    name="customer_churn",
    mart="marts.fct_customer_features",
    entity_key="account_id",
    label="label_churned",
    horizon_setting="churn_horizon_days",
    numeric=(
        "tenure_days",
        "annual_contract_value",
        "days_to_renewal",
        "logins_30d",
        "logins_prev_30d",
        "login_trend_ratio",
        "active_users_30d",
        "active_users_prev_30d",
        "feature_usage_30d",
        "feature_usage_prev_30d",
        "days_since_last_login",
        "tickets_30d",
        "tickets_90d",
        "high_priority_tickets_90d",
        "latest_nps_score",
        "days_since_nps",
    ),
    categorical=("contract_type", "nps_category"),
    boolean=("is_high_value", "has_csm"),
    reason_groups=(
        ("nps", ("latest_nps_score", "nps_category", "days_since_nps")),
        ("login_recency", ("days_since_last_login",)),
        ("usage_volume", ("logins_30d", "active_users_30d")),
        ("usage_trend", ("logins_prev_30d", "login_trend_ratio", "active_users_prev_30d")),
        ("feature_usage", ("feature_usage_30d", "feature_usage_prev_30d")),
        ("support", ("tickets_30d", "tickets_90d", "high_priority_tickets_90d")),
        ("contract", ("contract_type", "days_to_renewal")),
        ("tenure", ("tenure_days",)),
        ("csm", ("has_csm",)),
    ),
    score_table="customer_churn_scores",
    history_table="customer_churn_score_history",
    probability_column="churn_probability",
    tier_column="risk_tier",
    tier_labels=("high", "elevated", "moderate", "low"),
    segments=("contract_type", "nps_category"),
    value_column="annual_contract_value",
)

MODELS = {"lead": LEAD_CONVERSION, "churn": CUSTOMER_CHURN}
