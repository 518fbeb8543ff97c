"""Which mart columns a model may use, how they group into explainable factors, and where scores go.

Each feature is declared once, in the mart's dbt YAML (dbt_project/models/marts/_marts__models.yml): a column
with `config: {meta: {feature: <role>, factor: <factor>}}` is a model input of that role (numeric, categorical,
boolean, target_encoded, frequent_values), explained as part of that factor. Adding a feature is its SQL and its YAML entry;
the factors' order and their sentences live here and in scoring/sentences.py.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cache

import numpy as np
import pandas as pd
import yaml

from core.config import CONTENT_TOPIC_COUNT, PROJECT_ROOT

MARTS_YAML = PROJECT_ROOT / "dbt_project" / "models" / "marts" / "_marts__models.yml"
ROLES = ("numeric", "categorical", "boolean", "target_encoded", "frequent_values")


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
    # Identities with many values and no words to group them by (a landing page, a URL): the frequent values
    # are one-hot encoded and the rest pooled into one column (ml/pipeline.py).
    frequent_values: tuple[str, ...] = ()
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
        return self.numeric + self.categorical + self.boolean + self.target_encoded + self.frequent_values

    def model_input(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The feature columns in the types the fitted pipeline was trained on, whatever produced the frame:
        numbers as floats (a nullable integer's NA as NaN), text as objects with NaN where missing. scikit-learn's
        imputer does not take None for missing, and DuckDB returns None in a text column that has no value at
        all (a one-row frame) where it returns NaN in a larger one: without this the same row could score
        differently alone and in a batch."""
        text = self.categorical + self.target_encoded + self.frequent_values
        numbers = self.numeric + self.boolean
        words = frame[list(text)].astype(object)
        try:  # whole-frame casts: per column they cost more than the model itself on a single row
            values = frame[list(numbers)].astype("float64")
        except (TypeError, ValueError):
            values = frame[list(numbers)].apply(lambda column: pd.to_numeric(column, errors="coerce")).astype("float64")
        return pd.concat([values, words.where(words.notna(), np.nan)], axis=1)[list(self.features)]

    def restricted_to(self, allowed: set[str]) -> ModelSpec:
        """The same spec with only the allowed feature columns (reason groups left without columns are dropped)."""
        keep = lambda columns: tuple(c for c in columns if c in allowed)
        return replace(self, numeric=keep(self.numeric), categorical=keep(self.categorical), boolean=keep(self.boolean),
                       target_encoded=keep(self.target_encoded), frequent_values=keep(self.frequent_values),
                       reason_groups=tuple((f, keep(cols)) for f, cols in self.reason_groups if keep(cols)))

    def columns_of(self, factors: tuple[str, ...]) -> tuple[str, ...]:
        groups = dict(self.reason_groups)
        return tuple(column for factor in factors for column in groups[factor])


@cache
def mart_columns(model: str) -> tuple[tuple[str, dict], ...]:
    """(column, meta) for every column of a mart, in its declared order."""
    models = yaml.safe_load(MARTS_YAML.read_text(encoding="utf-8"))["models"]
    declared = next((m for m in models if m["name"] == model), None)
    if declared is None:
        raise LookupError(f"{MARTS_YAML}: no model {model}")
    return tuple((c["name"], dict((c.get("config") or {}).get("meta") or {})) for c in declared["columns"])


def declared_features(model: str, factors: tuple[str, ...]) -> dict[str, tuple]:
    """The ModelSpec fields a mart's YAML declares: feature columns by role (in the mart's order) and the reason
    groups (factor -> its columns, in the order of `factors`)."""
    columns = mart_columns(model)
    for name, meta in columns:
        if meta.get("feature") is not None and meta["feature"] not in ROLES:
            raise ValueError(f"{MARTS_YAML}: {model}.{name} has feature role {meta['feature']!r}; use one of {ROLES}")
        if meta.get("factor") is not None and meta["factor"] not in factors:
            raise ValueError(f"{MARTS_YAML}: {model}.{name} names factor {meta['factor']!r}, which is not one of "
                             f"{', '.join(factors)} (ml/features.py)")
        if meta.get("factor") is not None and meta.get("feature") is None:
            raise ValueError(f"{MARTS_YAML}: {model}.{name} has a factor but no feature role")
    fields = {role: tuple(name for name, meta in columns if meta.get("feature") == role) for role in ROLES}
    groups = tuple((factor, tuple(name for name, meta in columns if meta.get("factor") == factor)) for factor in factors)
    fields["reason_groups"] = tuple((factor, cols) for factor, cols in groups if cols)
    return fields


# Lead factors in the order explanations rank ties; fit (who the lead is) and engagement (what it did) make the
# two sub-scores.
LEAD_FACTORS = ("pricing_interest", "demo_trial_interest", "web_engagement", "email_engagement", "sales_conversations",
                "form_fills", "marketing_touches", "recency", "lead_age", "seniority", "decision_maker", "budget",
                "lead_source", "journey", "engagement_momentum", "content_interest", "profile", "stage", "company_fit",
                "country")
LEAD_FIT_FACTORS = ("seniority", "lead_source", "company_fit", "country", "profile")
LEAD_ENGAGEMENT_FACTORS = ("pricing_interest", "demo_trial_interest", "web_engagement", "email_engagement",
                           "sales_conversations", "form_fills", "marketing_touches", "recency", "journey",
                           "engagement_momentum", "content_interest")
CHURN_FACTORS = ("nps", "login_recency", "usage_volume", "usage_trend", "feature_usage", "support", "contract", "tenure",
                 "csm")
CONTENT_TOPIC_SHARES = tuple(f"content_topic_{k}_share" for k in range(CONTENT_TOPIC_COUNT))

LEAD_CONVERSION = ModelSpec(
    name="lead_conversion",
    mart="marts.fct_lead_features",
    entity_key="lead_id",
    label="label_converted",
    **declared_features("fct_lead_features", LEAD_FACTORS),
    segments=("industry", "employee_band", "lead_source"),
    value_sql="select lead_id, sum(amount) as row_value from staging.stg_crm__opportunities group by lead_id",
)

CUSTOMER_CHURN = ModelSpec(
    name="customer_churn",
    mart="marts.fct_customer_features",
    entity_key="account_id",
    label="label_churned",
    horizon_setting="churn_horizon_days",
    **declared_features("fct_customer_features", CHURN_FACTORS),
    score_table="customer_churn_scores",
    history_table="customer_churn_score_history",
    probability_column="churn_probability",
    tier_column="risk_tier",
    tier_labels=("high", "elevated", "moderate", "low"),
    segments=("contract_type", "nps_category"),
    value_column="annual_contract_value",
)

MODELS = {"lead": LEAD_CONVERSION, "churn": CUSTOMER_CHURN}
