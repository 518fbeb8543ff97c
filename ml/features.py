"""Which mart columns a model may use, and which it must never use."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelSpec:
    """Everything that ties a model to its mart: the table, the keys, the label and the feature columns."""

    name: str
    mart: str
    entity_key: str
    label: str
    numeric: tuple[str, ...]
    categorical: tuple[str, ...]
    boolean: tuple[str, ...] = ()
    date_column: str = "as_of_date"
    observed_flag: str = "is_label_observed"
    # Where scores go: the current table, its history and the probability column's name.
    score_table: str = "lead_scores"
    history_table: str = "lead_score_history"
    probability_column: str = "conversion_probability"

    @property
    def features(self) -> tuple[str, ...]:
        return self.numeric + self.categorical + self.boolean


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
    ),
    categorical=(*LEAD_FIT_CATEGORICAL, "lifecycle_stage", "budget_status"),
    boolean=("is_personal_email", "has_reached_decision_maker"),
)

MODELS = {"lead": LEAD_CONVERSION}
