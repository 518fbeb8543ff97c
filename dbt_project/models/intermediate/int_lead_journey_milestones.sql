{#-
  A lead's journey milestones from every touch loaded so far: its first steps, its first form fill, pricing
  and demo views, first marketing touch and landing page, each with the as-of date from which it is visible
  (`*_from`). One row per lead; int_lead_journey_asof shows each milestone only from its date on.

  Steps are numbered in the order they could be seen and never renumbered (int_lead_touch_events), so a
  lead's milestones change only when touches of it are loaded. Incremental runs recompute those leads alone,
  from all of their touches; a build in time steps computes every lead once, in its first step.
-#}
{%- set path_length = 5 -%}  {#- as many as int_lead_journey_asof shows -#}
{{ config(**scorehouse.incremental_config('lead_id')) }}
{%- set loaded_after = incremental_loaded_after('touches_loaded_through') %}
with touch_events as (
    select * from {{ ref('int_lead_touch_events') }}
    where step_number is not null
    {%- if loaded_after %}
        and lead_id in (
            select lead_id from {{ ref('int_lead_touch_events') }}
            where _loaded_at > {{ loaded_after }} and step_number is not null)
    {%- endif %}
),

milestones as (
    select
        lead_id,
        {%- for i in range(1, path_length + 1) %}
            max(case when step_number = {{ i }} then journey_step end) as step_{{ i }},
            max(case when step_number = {{ i }} then visible_from end) as step_{{ i }}_from,
        {%- endfor %}
        min(case when touch_type = 'form_fill' then step_number end) as first_form_fill_step,
        min(case when touch_type = 'form_fill' then visible_from end) as first_form_fill_from,
        min(case when touch_type = 'page_view' and page_type = 'pricing' then step_number end) as first_pricing_step,
        min(case when touch_type = 'page_view' and page_type = 'pricing' then visible_from end) as first_pricing_from,
        min(case when touch_type = 'page_view' and page_type = 'demo' then step_number end) as first_demo_step,
        min(case when touch_type = 'page_view' and page_type = 'demo' then visible_from end) as first_demo_from,
        min(case when touch_type = 'marketing_touch' then step_number end) as first_marketing_step,
        min(case when touch_type = 'page_view' then step_number end) as first_page_step,
        max(_loaded_at) as touches_loaded_through
    from touch_events
    group by lead_id
),

-- The first marketing touch and the first page: the lowest step numbers of their kind.
first_touch as (
    select
        touch_events.lead_id,
        touch_events.channel,
        touch_events.campaign,
        touch_events.visible_from
    from milestones
    inner join touch_events
        on milestones.lead_id = touch_events.lead_id and milestones.first_marketing_step = touch_events.step_number
),

landing_page as (
    select
        touch_events.lead_id,
        -- the path only: host, query string and fragment vary without changing the page
        regexp_replace(
            regexp_replace(lower(touch_events.url), '^[a-z]+://[^/]+', ''), '[?#].*$', ''
        ) as landing_page_path,
        touch_events.visible_from
    from milestones
    inner join touch_events
        on milestones.lead_id = touch_events.lead_id and milestones.first_page_step = touch_events.step_number
),

final as (
    select
        milestones.lead_id,
        {%- for i in range(1, path_length + 1) %}
            milestones.step_{{ i }},
            milestones.step_{{ i }}_from,
        {%- endfor %}
        milestones.first_form_fill_step,
        milestones.first_form_fill_from,
        milestones.first_pricing_step,
        milestones.first_pricing_from,
        milestones.first_demo_step,
        milestones.first_demo_from,
        first_touch.channel as first_touch_channel,
        first_touch.campaign as first_touch_campaign,
        first_touch.visible_from as first_touch_from,
        landing_page.landing_page_path,
        landing_page.visible_from as landing_page_from,
        milestones.touches_loaded_through
    from milestones
    left join first_touch on milestones.lead_id = first_touch.lead_id
    left join landing_page on milestones.lead_id = landing_page.lead_id
)

select * from final
