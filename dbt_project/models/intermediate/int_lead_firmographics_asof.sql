{#-
  Firmographics as the enrichment vendor knew them at each as-of time: the latest enrichment of the
  lead's company domain that had been produced and loaded by then (ties: latest enriched_at, latest
  load, highest id). Before the first enrichment arrives the columns are NULL.
-#}
{{ config(**scorehouse.incremental_config('as_of_date')) }}
{%- set since = incremental_as_of_start() %}
with spine as (
    select * from {{ ref('int_lead_spine') }}
    where {{ as_of_dates_from(since) }}
),

leads as (
    select
        lead_id,
        company_domain
    from {{ ref('stg_crm__leads') }}
),

enrichment as (
    select * from {{ ref('stg_enrichment__firmographics') }}
),

candidates as (
    select
        spine.lead_id,
        spine.as_of_date,
        enrichment.industry,
        enrichment.employee_count,
        enrichment.revenue_band,
        enrichment.country_code,
        enrichment.enriched_at,
        row_number() over (
            partition by spine.lead_id, spine.as_of_date
            order by enrichment.enriched_at desc, enrichment._loaded_at desc, enrichment.enrichment_id desc
        ) as recency_rank
    from spine
    inner join leads on spine.lead_id = leads.lead_id
    inner join enrichment
        on
            leads.company_domain = enrichment.company_domain
            and {{ visible_at('enrichment.enriched_at', 'enrichment._loaded_at', 'spine.as_of_at') }}
),

final as (
    select
        lead_id,
        as_of_date,
        industry,
        employee_count,
        revenue_band,
        country_code,
        enriched_at
    from candidates
    where recency_rank = 1
)

select * from final
