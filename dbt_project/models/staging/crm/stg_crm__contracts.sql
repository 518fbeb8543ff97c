with checked as (
    {{ checked_source('crm_contracts') }}
),

renamed as (
    select
        cast(contract_id as {{ dbt.type_string() }}) as contract_id,
        cast(account_id as {{ dbt.type_string() }}) as account_id,
        {{ normalize_label('contract_type') }} as contract_type,
        cast(annual_value as double) as annual_value,
        cast(start_date as date) as start_date,
        cast(renewal_date as date) as renewal_date,
        cast(cast(start_date as date) as timestamp) as started_at,
        cast(_loaded_at as timestamp) as _loaded_at
    from checked
    where _reject_reason is null
),

deduplicated as (
    {{ first_loaded('renamed', 'contract_id', 'started_at') }}
),

final as (
    select
        contract_id,
        account_id,
        contract_type,
        annual_value,
        start_date,
        renewal_date,
        started_at,
        _loaded_at
    from deduplicated
)

select * from final
