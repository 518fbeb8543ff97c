{#- A lead source: it only grows by rows loaded later (ingest/incremental.py checks), so runs append. -#}
{{ config(**scorehouse.append_config()) }}
with checked as (
    {{ checked_source('crm_leads') }}
),

renamed as (
    select
        cast(lead_id as {{ dbt.type_string() }}) as lead_id,
        cast(owner_id as {{ dbt.type_string() }}) as owner_id,
        nullif(trim(title), '') as title,
        nullif(trim(company), '') as company_name,
        lower(trim(company_domain)) as company_domain,
        nullif(upper(trim(country)), '') as country_code,
        nullif(trim(city), '') as city,
        {{ normalize_label('lead_source') }} as lead_source,
        coalesce(cast(do_not_email as boolean), false) as is_do_not_email,
        coalesce(cast(do_not_call as boolean), false) as is_do_not_call,
        cast(created_at as timestamp) as created_at,
        cast(_loaded_at as timestamp) as _loaded_at
    from checked
    where _reject_reason is null
),

deduplicated as (
    {{ first_loaded('renamed', 'lead_id', 'created_at') }}
),

final as (
    select
        lead_id,
        owner_id,
        title,
        company_name,
        company_domain,
        country_code,
        city,
        lead_source,
        is_do_not_email,
        is_do_not_call,
        created_at,
        _loaded_at
    from deduplicated
)

select * from final
