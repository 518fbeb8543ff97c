{#- No customer feature row once a cancellation was known, and none before a signed contract was known. -#}
with features as (
    select
        account_id,
        as_of_at
    from {{ ref('fct_customer_features') }}
),

events as (
    select
        account_id,
        event_type,
        event_at,
        _loaded_at
    from {{ ref('stg_crm__contract_events') }}
)

select
    features.account_id,
    features.as_of_at,
    'cancelled before as-of' as problem
from features
inner join events
    on
        features.account_id = events.account_id
        and events.event_type = 'cancelled'
        and features.as_of_at >= events.event_at
        and features.as_of_at >= events._loaded_at
union all
select
    features.account_id,
    features.as_of_at,
    'no signed contract known' as problem
from features
where not exists (
    select 1 from events
    where
        events.account_id = features.account_id
        and events.event_type = 'signed'
        and events.event_at <= features.as_of_at
        and events._loaded_at <= features.as_of_at
)
