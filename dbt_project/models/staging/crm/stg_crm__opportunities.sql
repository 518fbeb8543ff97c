with checked as (
    {{ checked_source('crm_opportunities') }}
),

renamed as (
    select
        cast(opportunity_id as {{ dbt.type_string() }}) as opportunity_id,
        cast(lead_id as {{ dbt.type_string() }}) as lead_id,
        cast(account_id as {{ dbt.type_string() }}) as account_id,
        cast(amount as double) as amount,
        {{ normalize_label('stage') }} as stage,
        cast(is_won as boolean) as is_won,
        cast(close_date as date) as close_date,
        cast(created_at as timestamp) as created_at,
        cast(_loaded_at as timestamp) as _loaded_at
    from checked
    where _reject_reason is null
),

deduplicated as (
    {{ first_loaded('renamed', 'opportunity_id', 'created_at') }}
),

final as (
    select
        opportunity_id,
        lead_id,
        account_id,
        amount,
        stage,
        is_won,
        close_date,
        created_at,
        _loaded_at
    from deduplicated
)

select * from final
