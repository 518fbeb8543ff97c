{#- A label exists exactly when its whole window lies at or before the data's high-water mark. -#}
with features as (
    select * from {{ ref('fct_lead_features') }}
),

observed as (
    select lead_observed_through as observed_through from {{ ref('int_observed_through') }}
)

select features.lead_id, features.as_of_date, features.label_window_end_at, features.is_label_observed,
       features.label_converted, observed.observed_through
from features
cross join observed
where (features.label_converted is not null and not features.is_label_observed)
    or (features.label_converted is null and features.is_label_observed)
    or (features.is_label_observed and features.label_window_end_at > observed.observed_through)
    or (not features.is_label_observed and features.label_window_end_at <= observed.observed_through)
