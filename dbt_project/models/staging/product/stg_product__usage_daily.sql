with checked as (
    {{ checked_source('product_usage_daily') }}
),

renamed as (
    select
        cast(account_id as {{ dbt.type_string() }}) as account_id,
        cast(usage_date as date) as usage_date,
        cast(logins as integer) as logins,
        cast(active_users as integer) as active_users,
        cast(feature_usage_index as double) as feature_usage_index,
        -- a day's usage is complete, and so knowable, only when the day is over
        {{ scorehouse.shift_timestamp('day', 1, 'cast(cast(usage_date as date) as timestamp)') }} as usage_complete_at,
        cast(_loaded_at as timestamp) as _loaded_at
    from checked
    where _reject_reason is null
),

deduplicated as (
    {{ first_loaded('renamed', 'account_id, usage_date', 'logins') }}
),

final as (
    select
        account_id,
        usage_date,
        logins,
        active_users,
        feature_usage_index,
        usage_complete_at,
        _loaded_at
    from deduplicated
)

select * from final
