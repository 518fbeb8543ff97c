{#-
  Product usage as of each customer spine row: the last 30 days (as_of - 30d, as_of] against the 30 before,
  by the time each day's usage was complete and loaded. Login recency looks back at most 365 days.
-#}
with spine as (
    select * from {{ ref('int_customer_spine') }}
),

usage as (
    select * from {{ ref('stg_product__usage_daily') }}
),

visible as (
    select
        spine.account_id,
        spine.as_of_date,
        spine.as_of_at,
        usage.usage_complete_at,
        usage.logins,
        usage.active_users,
        usage.feature_usage_index
    from spine
    inner join usage
        on
            spine.account_id = usage.account_id
            and {{ visible_at('usage.usage_complete_at', 'usage._loaded_at', 'spine.as_of_at') }}
            and {{ in_trailing_window('usage.usage_complete_at', 'spine.as_of_at', 365) }}
),

aggregated as (
    select
        account_id,
        as_of_date,
        as_of_at,
        cast(
            sum(case when {{ in_trailing_window('usage_complete_at', 'as_of_at', 30) }} then logins else 0 end)
            as {{ dbt.type_bigint() }}
        ) as logins_30d,
        cast(sum(case
            when
                {{ in_trailing_window('usage_complete_at', 'as_of_at', 60) }}
                and not {{ in_trailing_window('usage_complete_at', 'as_of_at', 30) }} then logins
            else 0
        end)
        as {{ dbt.type_bigint() }}) as logins_prev_30d,
        avg(case when {{ in_trailing_window('usage_complete_at', 'as_of_at', 30) }} then active_users end)
            as active_users_30d,
        avg(case
            when
                {{ in_trailing_window('usage_complete_at', 'as_of_at', 60) }}
                and not {{ in_trailing_window('usage_complete_at', 'as_of_at', 30) }} then active_users
        end)
            as active_users_prev_30d,
        avg(case when {{ in_trailing_window('usage_complete_at', 'as_of_at', 30) }} then feature_usage_index end)
            as feature_usage_30d,
        avg(case
            when
                {{ in_trailing_window('usage_complete_at', 'as_of_at', 60) }}
                and not {{ in_trailing_window('usage_complete_at', 'as_of_at', 30) }} then feature_usage_index
        end)
            as feature_usage_prev_30d,
        max(case when logins > 0 then usage_complete_at end) as last_login_day_end_at
    from visible
    group by account_id, as_of_date, as_of_at
),

final as (
    select
        spine.account_id,
        spine.as_of_date,
        coalesce(aggregated.logins_30d, 0) as logins_30d,
        coalesce(aggregated.logins_prev_30d, 0) as logins_prev_30d,
        aggregated.active_users_30d,
        aggregated.active_users_prev_30d,
        aggregated.feature_usage_30d,
        aggregated.feature_usage_prev_30d,
        -- days since the last day with a login (a login yesterday = 1); 365 when none in the last year
        cast(
            coalesce({{ dbt.datediff('aggregated.last_login_day_end_at', 'spine.as_of_at', 'day') }} + 1, 365)
            as {{ dbt.type_int() }}
        ) as days_since_last_login
    from spine
    left join aggregated on spine.account_id = aggregated.account_id and spine.as_of_date = aggregated.as_of_date
)

select * from final
