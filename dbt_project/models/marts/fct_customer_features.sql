{{ config(contract={'enforced': true}) }}
{#-
  The customer feature mart: one row per active customer per month start, every column computable at
  as_of_at, plus the censored churn label. Churn training reads the labelled rows; scoring the newest month.
-#}
with spine as (
    select * from {{ ref('int_customer_spine') }}
),

contracts as (
    select * from {{ ref('int_customer_contract_asof') }}
),

usage as (
    select * from {{ ref('int_customer_usage_asof') }}
),

signals as (
    select * from {{ ref('int_customer_signals_asof') }}
),

labels as (
    select * from {{ ref('int_customer_labels') }}
),

final as (
    select
        spine.account_id,
        spine.as_of_date,
        spine.as_of_at,
        -- relationship and contract as known then
        contracts.tenure_days,
        contracts.contract_type,
        contracts.annual_contract_value,
        coalesce(contracts.annual_contract_value, 0) >= 50000 as is_high_value,
        contracts.days_to_renewal,
        -- product usage: last 30 days against the 30 before
        usage.logins_30d,
        usage.logins_prev_30d,
        cast((usage.logins_30d + 1.0) / (usage.logins_prev_30d + 1.0) as double) as login_trend_ratio,
        usage.active_users_30d,
        usage.active_users_prev_30d,
        usage.feature_usage_30d,
        usage.feature_usage_prev_30d,
        usage.days_since_last_login,
        -- customer success signals
        signals.tickets_30d,
        signals.tickets_90d,
        signals.high_priority_tickets_90d,
        signals.latest_nps_score,
        signals.nps_category,
        signals.days_since_nps,
        signals.has_csm,
        -- label (NULL while the window is not fully observed)
        labels.label_horizon_days,
        labels.label_window_end_at,
        labels.is_label_observed,
        labels.label_churned
    from spine
    inner join usage on spine.account_id = usage.account_id and spine.as_of_date = usage.as_of_date
    inner join signals on spine.account_id = signals.account_id and spine.as_of_date = signals.as_of_date
    inner join labels on spine.account_id = labels.account_id and spine.as_of_date = labels.as_of_date
    left join contracts on spine.account_id = contracts.account_id and spine.as_of_date = contracts.as_of_date
)

select * from final
