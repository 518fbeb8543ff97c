{{ config(contract={'enforced': true}) }}
{#-
  The call list: open leads whose latest score is tier A or at least `high_priority_min_probability`,
  with the context a rep needs, ranked by probability. Reads scores.lead_scores live (a view).
-#}
with scores as (
    select * from {{ ref('stg_scores__lead_scores') }}
),

leads as (
    select * from {{ ref('stg_crm__leads') }}
),

features as (
    select * from {{ ref('fct_lead_features') }}
),

final as (
    select
        scores.lead_id,
        cast(
            row_number() over (order by scores.conversion_probability desc, scores.lead_id asc) as integer
        ) as priority_rank,
        leads.owner_id,
        leads.company_name,
        leads.title,
        features.country_code,
        features.industry,
        features.lead_source,
        features.lifecycle_stage,
        scores.conversion_probability,
        scores.score,
        scores.tier,
        features.days_since_last_touch,
        features.pricing_page_views_30d,
        features.demo_page_views_30d,
        features.meetings_90d,
        features.has_reached_decision_maker,
        features.budget_status,
        leads.is_do_not_call,
        leads.is_do_not_email,
        scores.as_of_date,
        scores.model_version,
        scores.scored_at
    from scores
    inner join leads on scores.lead_id = leads.lead_id
    left join features on scores.lead_id = features.lead_id and scores.as_of_date = features.as_of_date
    where
        scores.tier = 'A'
        or scores.conversion_probability >= {{ var('high_priority_min_probability') }}
)

select * from final
