{#- A lead source: it only grows by rows loaded later (ingest/incremental.py checks), so runs append. -#}
{{ config(**scorehouse.append_config()) }}
with checked as (
    {{ checked_source('web_identifies') }}
),

renamed as (
    select
        cast(message_id as {{ dbt.type_string() }}) as identify_id,
        cast(anonymous_id as {{ dbt.type_string() }}) as anonymous_id,
        cast(user_id as {{ dbt.type_string() }}) as lead_id,
        cast({{ adapter.quote("timestamp") }} as timestamp) as identified_at,
        cast(_loaded_at as timestamp) as _loaded_at
    from checked
    where _reject_reason is null
),

deduplicated as (
    {{ first_loaded('renamed', 'identify_id', 'identified_at') }}
),

final as (
    select
        identify_id,
        anonymous_id,
        lead_id,
        identified_at,
        _loaded_at
    from deduplicated
)

select * from final
