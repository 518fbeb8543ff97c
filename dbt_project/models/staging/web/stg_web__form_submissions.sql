{#- A lead source: it only grows by rows loaded later (ingest/incremental.py checks), so runs append. -#}
{{ config(**scorehouse.append_config()) }}
with checked as (
    {{ checked_source('web_tracks') }}
),

renamed as (
    select
        cast(message_id as {{ dbt.type_string() }}) as form_submission_id,
        cast(anonymous_id as {{ dbt.type_string() }}) as anonymous_id,
        cast(user_id as {{ dbt.type_string() }}) as lead_id,
        {{ normalize_label('form_name') }} as form_name,
        cast({{ adapter.quote("timestamp") }} as timestamp) as submitted_at,
        cast(_loaded_at as timestamp) as _loaded_at
    from checked
    where
        _reject_reason is null
        and {{ normalize_label('event') }} = 'form_submitted'
),

deduplicated as (
    {{ first_loaded('renamed', 'form_submission_id', 'submitted_at') }}
),

final as (
    select
        form_submission_id,
        anonymous_id,
        lead_id,
        form_name,
        submitted_at,
        _loaded_at
    from deduplicated
)

select * from final
