{#-
  The churn label: was a cancellation recorded in (as_of, as_of + horizon] by the window's end?
  Emitted only when the whole window lies at or before the customer high-water mark; otherwise NULL.
-#}
with spine as (
    select * from {{ ref('int_customer_spine') }}
),

cancellations as (
    select account_id, event_at, _loaded_at
    from {{ ref('stg_crm__contract_events') }}
    where event_type = 'cancelled'
),

observed as (
    select customer_observed_through as observed_through from {{ ref('int_observed_through') }}
),

outcomes as (
    select
        spine.account_id,
        spine.as_of_date,
        max(case when cancellations.account_id is not null then 1 else 0 end) as churned_in_window
    from spine
    left join cancellations
        on spine.account_id = cancellations.account_id
        and {{ in_label_window('cancellations.event_at', 'cancellations._loaded_at', 'spine.as_of_at', churn_horizon_days()) }}
    group by spine.account_id, spine.as_of_date
),

final as (
    select
        spine.account_id,
        spine.as_of_date,
        {{ churn_horizon_days() }} as label_horizon_days,
        {{ dbt.dateadd('day', churn_horizon_days(), 'spine.as_of_at') }} as label_window_end_at,
        {{ dbt.dateadd('day', churn_horizon_days(), 'spine.as_of_at') }} <= observed.observed_through as is_label_observed,
        case
            when {{ dbt.dateadd('day', churn_horizon_days(), 'spine.as_of_at') }} <= observed.observed_through
                then outcomes.churned_in_window
        end as label_churned
    from spine
    inner join outcomes on spine.account_id = outcomes.account_id and spine.as_of_date = outcomes.as_of_date
    cross join observed
)

select * from final
