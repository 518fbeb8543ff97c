with checked as (
    {{ checked_source('crm_accounts') }}
),

renamed as (
    select
        cast(account_id as {{ dbt.type_string() }}) as account_id,
        nullif(trim(account_name), '') as account_name,
        lower(trim(company_domain)) as company_domain,
        {{ normalize_label('industry') }} as industry,
        cast(created_at as timestamp) as created_at,
        cast(_loaded_at as timestamp) as _loaded_at
    from checked
    where _reject_reason is null
),

deduplicated as (
    {{ first_loaded('renamed', 'account_id', 'created_at') }}
),

final as (
    select
        account_id,
        account_name,
        company_domain,
        industry,
        created_at,
        _loaded_at
    from deduplicated
)

select * from final
