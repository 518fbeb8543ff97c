{{ config(contract={'enforced': true},
          post_hook="{{ refresh_pending_labels(ref('int_lead_labels'), 'lead_id', 'label_converted') }}",
          **scorehouse.incremental_config('as_of_date', online='view')) }}
{#-
  The lead feature mart: one row per lead per weekly as-of date, every column computable at as_of_at,
  plus the censored conversion label. This is what training reads and what scoring scores.
  Incremental runs add the new as-of dates (features of built rows never change) and then refresh the labels
  of the rows whose label window had not been observed yet (labels look forward): on DuckDB by updating those
  rows (post-hook), on Spark, which cannot update, by rebuilding their as-of dates' partitions whole.
-#}
{%- set since = scorehouse.mart_rebuild_start() %}
with spine as (
    select * from {{ ref('int_lead_spine') }}
    where {{ as_of_dates_from(since) }}
),

leads as (
    select * from {{ ref('stg_crm__leads') }}
),

engagement as (
    select * from {{ ref('int_lead_engagement_asof') }}
    where {{ as_of_dates_from(since) }}
),

firmographics as (
    select * from {{ ref('int_lead_firmographics_asof') }}
    where {{ as_of_dates_from(since) }}
),

stages as (
    select * from {{ ref('int_lead_stage_asof') }}
    where {{ as_of_dates_from(since) }}
),

journey as (
    select * from {{ ref('int_lead_journey_asof') }}
    where {{ as_of_dates_from(since) }}
),

labels as (
    select * from {{ ref('int_lead_labels') }}
    where {{ as_of_dates_from(since) }}
),

final as (
    select
        spine.lead_id,
        spine.as_of_date,
        spine.as_of_at,
        -- fit: who the lead is
        leads.lead_source,
        {{ seniority_from_title('leads.title') }} as seniority_tier,
        coalesce(leads.country_code, firmographics.country_code) as country_code,
        firmographics.industry,
        firmographics.employee_count,
        {{ employee_band('firmographics.employee_count') }} as employee_band,
        firmographics.revenue_band,
        {{ is_personal_email_domain('leads.company_domain') }} as is_personal_email,
        leads.city,
        -- share of the lead's profile fields (title, company, domain, country, city) that were filled in
        cast((
            case when leads.title is null then 0 else 1 end
            + case when leads.company_name is null then 0 else 1 end
            + case when leads.company_domain is null then 0 else 1 end
            + case when leads.country_code is null then 0 else 1 end
            + case when leads.city is null then 0 else 1 end
        ) / 5.0 as double) as profile_completeness,
        engagement.colleagues_known,
        -- sales state as known at the as-of time
        coalesce(stages.lifecycle_stage, 'new') as lifecycle_stage,
        engagement.has_reached_decision_maker,
        engagement.budget_status,
        cast({{ dbt.datediff('leads.created_at', 'spine.as_of_at', 'day') }} as {{ dbt.type_int() }})
            as days_since_created,
        -- engagement: what the lead did
        engagement.touchpoints_total,
        engagement.days_since_first_touch,
        engagement.days_since_last_touch,
        engagement.emails_opened_7d,
        engagement.emails_opened_30d,
        engagement.emails_opened_90d,
        engagement.emails_clicked_7d,
        engagement.emails_clicked_30d,
        engagement.emails_clicked_90d,
        engagement.calls_30d,
        engagement.calls_90d,
        engagement.meetings_30d,
        engagement.meetings_90d,
        engagement.web_sessions_7d,
        engagement.web_sessions_30d,
        engagement.web_sessions_90d,
        engagement.page_views_30d,
        engagement.page_views_90d,
        engagement.pricing_page_views_7d,
        engagement.pricing_page_views_30d,
        engagement.pricing_page_views_90d,
        engagement.demo_page_views_30d,
        engagement.demo_page_views_90d,
        engagement.free_trial_page_views_30d,
        engagement.free_trial_page_views_90d,
        engagement.form_fills_30d,
        engagement.form_fills_90d,
        engagement.marketing_touches_30d,
        engagement.marketing_touches_90d,
        engagement.last_touch_at,
        -- engagement dynamics
        engagement.engaged_touches_7d,
        engagement.engaged_touches_prev_30d,
        engagement.engagement_trend,
        engagement.engagement_score_decayed,
        engagement.content_downloads_total,
        engagement.days_since_trial_activity,
        engagement.sessions_total,
        engagement.page_views_total,
        engagement.avg_pages_per_session,
        engagement.avg_session_minutes,
        engagement.bounce_rate,
        -- the journey: order, path and where it started
        journey.journey_step_1,
        journey.journey_step_2,
        journey.journey_step_3,
        journey.journey_step_4,
        journey.journey_step_5,
        journey.journey_path,
        engagement.last_journey_step,
        engagement.journey_steps_total,
        engagement.avg_days_between_steps,
        journey.touches_before_first_form_fill,
        journey.viewed_pricing_before_demo,
        journey.viewed_demo_before_pricing,
        engagement.transitions_blog_to_pricing,
        engagement.transitions_docs_to_pricing,
        engagement.transitions_pricing_to_demo,
        engagement.transitions_demo_to_pricing,
        engagement.transitions_pricing_to_free_trial,
        engagement.transitions_webinar_to_demo,
        engagement.transitions_blog_to_pricing_to_demo,
        engagement.transitions_pricing_to_demo_to_free_trial,
        engagement.channels_seen,
        journey.first_touch_channel,
        journey.first_touch_campaign,
        journey.landing_page_path,
        -- content topics: share of the lead's page views in each topic (content.content_topics names them)
        {%- for k in range(var('content_topic_count') | int) %}
            engagement.content_topic_{{ k }}_share,
        {%- endfor %}
        -- label (NULL while the window is not fully observed)
        labels.label_horizon_days,
        labels.label_window_end_at,
        labels.is_label_observed,
        labels.label_converted
    from spine
    inner join leads on spine.lead_id = leads.lead_id
    inner join engagement on spine.lead_id = engagement.lead_id and spine.as_of_date = engagement.as_of_date
    inner join journey on spine.lead_id = journey.lead_id and spine.as_of_date = journey.as_of_date
    inner join labels on spine.lead_id = labels.lead_id and spine.as_of_date = labels.as_of_date
    left join firmographics on spine.lead_id = firmographics.lead_id and spine.as_of_date = firmographics.as_of_date
    left join stages on spine.lead_id = stages.lead_id and spine.as_of_date = stages.as_of_date
)

select * from final
