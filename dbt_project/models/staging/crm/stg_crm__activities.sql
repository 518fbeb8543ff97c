{#- A lead source: it only grows by rows loaded later (ingest/incremental.py checks), so runs append. -#}
{{ config(**scorehouse.append_config()) }}
with checked as (
    {{ checked_source('crm_activities') }}
),

renamed as (
    select
        cast(activity_id as {{ dbt.type_string() }}) as activity_id,
        cast(lead_id as {{ dbt.type_string() }}) as lead_id,
        {{ normalize_label('activity_type') }} as activity_type,
        {{ normalize_label('budget_status') }} as budget_status,
        cast(decision_maker_reached as boolean) as is_decision_maker_reached,
        cast(occurred_at as timestamp) as occurred_at,
        cast(_loaded_at as timestamp) as _loaded_at
    from checked
    where _reject_reason is null
),

deduplicated as (
    {{ first_loaded('renamed', 'activity_id', 'occurred_at') }}
),

final as (
    select
        activity_id,
        lead_id,
        activity_type,
        budget_status,
        is_decision_maker_reached,
        occurred_at,
        _loaded_at
    from deduplicated
)

select * from final
