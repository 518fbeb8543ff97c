with checked as (
    {{ checked_source('nps_responses') }}
),

renamed as (
    select
        cast(response_id as {{ dbt.type_string() }}) as response_id,
        cast(account_id as {{ dbt.type_string() }}) as account_id,
        cast(score as integer) as nps_score,
        cast(responded_at as timestamp) as responded_at,
        cast(_loaded_at as timestamp) as _loaded_at
    from checked
    where _reject_reason is null
),

deduplicated as (
    {{ first_loaded('renamed', 'response_id', 'responded_at') }}
),

final as (
    select
        response_id,
        account_id,
        nps_score,
        responded_at,
        _loaded_at
    from deduplicated
)

select * from final
