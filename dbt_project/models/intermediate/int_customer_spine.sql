{#-
  The customer as-of spine: one row per customer per month (the 1st at 00:00), from the first month start
  at which a signed contract was known, while no cancellation was known, up to the high-water mark.
-#}
with contract_events as (
    select * from {{ ref('stg_crm__contract_events') }}
),

observed as (
    select customer_observed_through as observed_through from {{ ref('int_observed_through') }}
),

numbers as (
    {{ integers_to_9999() }}
),

customers as (
    select
        account_id,
        min(case when event_type = 'signed' then
            case when event_at > _loaded_at then event_at else _loaded_at end end) as known_at,
        min(case when event_type = 'cancelled' then
            case when event_at > _loaded_at then event_at else _loaded_at end end) as churn_known_at
    from contract_events
    group by account_id
),

months as (
    select {{ dbt.dateadd('month', 'numbers.n', 'first_month.month_start') }} as as_of_at
    from numbers
    cross join (
        select {{ dbt.date_trunc('month', 'min(known_at)') }} as month_start from customers
    ) as first_month
    cross join observed
    where {{ dbt.dateadd('month', 'numbers.n', 'first_month.month_start') }} <= observed.observed_through
),

final as (
    select
        customers.account_id,
        cast(months.as_of_at as date) as as_of_date,
        cast(months.as_of_at as timestamp) as as_of_at
    from customers
    inner join months
        on months.as_of_at >= customers.known_at
    where customers.known_at is not null
        and (customers.churn_known_at is null or months.as_of_at < customers.churn_known_at)
)

select * from final
