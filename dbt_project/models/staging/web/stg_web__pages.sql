{#- A lead source: it only grows by rows loaded later (ingest/incremental.py checks), so runs append. -#}
{{ config(**scorehouse.append_config()) }}
with checked as (
    {{ checked_source('web_pages') }}
),

renamed as (
    select
        cast(message_id as {{ dbt.type_string() }}) as page_view_id,
        cast(anonymous_id as {{ dbt.type_string() }}) as anonymous_id,
        cast(user_id as {{ dbt.type_string() }}) as lead_id,
        cast(session_id as {{ dbt.type_string() }}) as session_id,
        url,
        {{ page_type_from_url('url') }} as page_type,
        title as page_title,
        cast({{ adapter.quote("timestamp") }} as timestamp) as viewed_at,
        cast(_loaded_at as timestamp) as _loaded_at
    from checked
    where _reject_reason is null
),

deduplicated as (
    {{ first_loaded('renamed', 'page_view_id', 'viewed_at') }}
),

final as (
    select
        page_view_id,
        anonymous_id,
        lead_id,
        session_id,
        url,
        page_type,
        page_title,
        viewed_at,
        _loaded_at
    from deduplicated
)

select * from final
