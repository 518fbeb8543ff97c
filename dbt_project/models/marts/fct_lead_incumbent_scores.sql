{{ config(contract={'enforced': true}) }}
{#-
  The incumbent: a rule-based points score like the ones marketing tools ship (source, title, engagement,
  recency), computed for every lead feature row so the model can be compared with it in shadow mode.
-#}
with features as (
    select * from {{ ref('fct_lead_features') }}
),

points as (
    select
        lead_id,
        as_of_date,
        case lead_source
            when 'referral' then 20 when 'webinar' then 15 when 'trade_show' then 12 when 'paid_search' then 8
            when 'organic' then 8 when 'email_campaign' then 5 when 'paid_social' then 5 else 0
        end as source_points,
        case seniority_tier
            when 'c_level' then 25 when 'vp' then 20 when 'director' then 15 when 'manager' then 8 else 0
        end as title_points,
        least(pricing_page_views_30d * 5, 20) + least(demo_page_views_30d * 10, 20) + least(emails_clicked_30d * 3, 15)
        + least(form_fills_90d * 5, 10) + least(meetings_90d * 10, 20) as engagement_points,
        least(floor(coalesce(days_since_last_touch, 90) / 7), 20) as inactivity_penalty
    from features
),

final as (
    select
        lead_id,
        as_of_date,
        cast(
            greatest(0, least(100, source_points + title_points + engagement_points - inactivity_penalty))
            as {{ dbt.type_int() }}
        ) as incumbent_score
    from points
)

select * from final
