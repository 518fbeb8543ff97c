{#- A lead source: it only grows by rows loaded later (ingest/incremental.py checks), so runs append. -#}
{{ config(**scorehouse.append_config()) }}
with checked as (
    {{ checked_source('enrichment_firmographics') }}
),

renamed as (
    select
        cast(enrichment_id as {{ dbt.type_string() }}) as enrichment_id,
        lower(trim(company_domain)) as company_domain,
        {{ normalize_label('industry') }} as industry,
        cast(employee_count as integer) as employee_count,
        nullif(trim(revenue_band), '') as revenue_band,
        nullif(upper(trim(country)), '') as country_code,
        cast(enriched_at as timestamp) as enriched_at,
        cast(_loaded_at as timestamp) as _loaded_at
    from checked
    where _reject_reason is null
),

deduplicated as (
    {{ first_loaded('renamed', 'enrichment_id', 'enriched_at') }}
),

final as (
    select
        enrichment_id,
        company_domain,
        industry,
        employee_count,
        revenue_band,
        country_code,
        enriched_at,
        _loaded_at
    from deduplicated
)

select * from final
