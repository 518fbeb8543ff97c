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

customers as (
    select
        account_id,
        min(case when event_type = 'signed' then {{ known_from('event_at', '_loaded_at') }} end) as known_at,
        min(case when event_type = 'cancelled' then {{ known_from('event_at', '_loaded_at') }} end) as closed_known_at
    from contract_events
    group by account_id
),

final as (
    {{ as_of_spine('customers', 'account_id', 'month', 'observed') }}
)

select * from final
