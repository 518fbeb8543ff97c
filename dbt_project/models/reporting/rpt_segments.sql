{{ config(contract={'enforced': true}) }}
{#- Lead segments of the latest scoring run, in plain words, with their historical conversion rate. -#}
with segments as (
    select * from {{ ref('stg_scores__lead_segments') }}
),

final as (
    select
        cast(segment_id as integer) as segment_id,
        cast(leads as bigint) as leads,
        share_of_leads,
        historical_conversion_rate,
        cast(historical_rows as bigint) as historical_rows,
        description,
        cast(k as integer) as segments_in_run,
        silhouette,
        scored_at,
        model_version
    from segments
)

select * from final
