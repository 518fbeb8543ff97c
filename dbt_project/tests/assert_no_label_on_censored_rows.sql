{#- In both marts, a label exists exactly when its whole window lies at or before that mart's high-water mark. -#}
with observed as (
    select
        lead_observed_through,
        customer_observed_through
    from {{ ref('int_observed_through') }}
),

labels as (
    select
        'fct_lead_features' as mart,
        leads.lead_id as entity_id,
        leads.as_of_date,
        leads.label_window_end_at,
        leads.is_label_observed,
        leads.label_converted as label,
        observed.lead_observed_through as observed_through
    from {{ ref('fct_lead_features') }} as leads cross join observed
    union all
    select
        'fct_customer_features' as mart,
        customers.account_id,
        customers.as_of_date,
        customers.label_window_end_at,
        customers.is_label_observed,
        customers.label_churned,
        observed.customer_observed_through
    from {{ ref('fct_customer_features') }} as customers cross join observed
)

select *
from labels
where
    (label is not null and not is_label_observed)
    or (label is null and is_label_observed)
    or (is_label_observed and label_window_end_at > observed_through)
    or (not is_label_observed and label_window_end_at <= observed_through)
