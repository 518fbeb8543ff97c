{#- A lead source: it only grows by rows loaded later (ingest/incremental.py checks), so runs append. -#}
{{ config(**scorehouse.append_config()) }}
with checked as (
    {{ checked_source('marketing_touches') }}
),

renamed as (
    select
        cast(touch_id as {{ dbt.type_string() }}) as touch_id,
        cast(lead_id as {{ dbt.type_string() }}) as lead_id,
        {{ normalize_label('channel') }} as channel,
        {{ normalize_label('campaign') }} as campaign,
        cast(cost as double) as cost,
        cast(touched_at as timestamp) as touched_at,
        cast(_loaded_at as timestamp) as _loaded_at
    from checked
    where _reject_reason is null
),

deduplicated as (
    {{ first_loaded('renamed', 'touch_id', 'touched_at') }}
),

final as (
    select
        touch_id,
        lead_id,
        channel,
        campaign,
        cost,
        touched_at,
        _loaded_at
    from deduplicated
)

select * from final
