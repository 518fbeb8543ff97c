{#- A lead source: it only grows by rows loaded later (ingest/incremental.py checks), so runs append. -#}
{{ config(**scorehouse.append_config()) }}
with checked as (
    {{ checked_source('crm_lead_status_history') }}
),

renamed as (
    select
        cast(status_change_id as {{ dbt.type_string() }}) as status_change_id,
        cast(lead_id as {{ dbt.type_string() }}) as lead_id,
        {{ normalize_label('status') }} as status,
        cast(changed_at as timestamp) as changed_at,
        cast(_loaded_at as timestamp) as _loaded_at
    from checked
    where _reject_reason is null
),

deduplicated as (
    {{ first_loaded('renamed', 'status_change_id', 'changed_at') }}
),

final as (
    select
        status_change_id,
        lead_id,
        status,
        status in ('{{ var("terminal_lead_statuses") | join("', '") }}') as is_terminal,
        changed_at,
        _loaded_at
    from deduplicated
)

select * from final
