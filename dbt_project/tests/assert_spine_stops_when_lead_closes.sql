{#- No feature row for a lead that, as known at the as-of time, had already converted or been disqualified,
    and none before the lead existed in the warehouse. -#}
with features as (
    select
        lead_id,
        as_of_at
    from {{ ref('fct_lead_features') }}
),

leads as (
    select
        lead_id,
        created_at,
        _loaded_at
    from {{ ref('stg_crm__leads') }}
),

terminal as (
    select
        lead_id,
        changed_at,
        _loaded_at
    from {{ ref('stg_crm__lead_status_changes') }}
    where is_terminal
)

select
    features.lead_id,
    features.as_of_at,
    'closed before as-of' as problem
from features
inner join terminal
    on
        features.lead_id = terminal.lead_id
        and features.as_of_at >= terminal.changed_at
        and features.as_of_at >= terminal._loaded_at
union all
select
    features.lead_id,
    features.as_of_at,
    'lead not yet known' as problem
from features
inner join leads on features.lead_id = leads.lead_id
where leads.created_at > features.as_of_at or leads._loaded_at > features.as_of_at
