{#-
  The shape of a lead's journey as of each spine row: its first steps in order, where it came from, when it
  first filled a form, and in which order it looked at pricing and the demo. Steps are numbered in the order
  they could be seen (int_lead_touch_events), so a step shown at one as-of date stays the same step later:
  each milestone is a per-lead fact that holds from its visible_from date on.
-#}
{%- set path_length = 5 -%}
{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='as_of_date',
          on_schema_change='fail') }}
{%- set since = incremental_as_of_start() %}
with spine as (
    select * from {{ ref('int_lead_spine') }}
    where {{ as_of_dates_from(since) }}
),

touch_events as (
    select * from {{ ref('int_lead_touch_events') }}
    {%- if since %}
    where lead_id in (select lead_id from spine)
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
        min(case when touch_type = 'page_view' then step_number end) as first_page_step
    from touch_events
    where step_number is not null
    group by lead_id
),

-- The first marketing touch and the first page: the lowest step numbers of their kind.
first_touch as (
    select touch_events.lead_id, touch_events.channel, touch_events.campaign, touch_events.visible_from
    from milestones
    inner join touch_events
        on touch_events.lead_id = milestones.lead_id and touch_events.step_number = milestones.first_marketing_step
),

landing_page as (
    select
        touch_events.lead_id,
        -- the path only: host, query string and fragment vary without changing the page
        regexp_replace(regexp_replace(lower(touch_events.url), '^[a-z]+://[^/]+', ''), '[?#].*$', '') as landing_page_path,
        touch_events.visible_from
    from milestones
    inner join touch_events
        on touch_events.lead_id = milestones.lead_id and touch_events.step_number = milestones.first_page_step
),

final as (
    select
        spine.lead_id,
        spine.as_of_date,
        {%- for i in range(1, path_length + 1) %}
        case when milestones.step_{{ i }}_from <= spine.as_of_date then milestones.step_{{ i }} end as journey_step_{{ i }},
        {%- endfor %}
        concat_ws(' > '
            {%- for i in range(1, path_length + 1) %},
            case when milestones.step_{{ i }}_from <= spine.as_of_date then milestones.step_{{ i }} end
            {%- endfor %}
        ) as journey_path,
        case when milestones.first_form_fill_from <= spine.as_of_date
            then cast(milestones.first_form_fill_step - 1 as {{ dbt.type_int() }}) end as touches_before_first_form_fill,
        coalesce(
            milestones.first_pricing_from <= spine.as_of_date and milestones.first_demo_from <= spine.as_of_date
            and milestones.first_pricing_step < milestones.first_demo_step, false) as viewed_pricing_before_demo,
        coalesce(
            milestones.first_pricing_from <= spine.as_of_date and milestones.first_demo_from <= spine.as_of_date
            and milestones.first_demo_step < milestones.first_pricing_step, false) as viewed_demo_before_pricing,
        case when first_touch.visible_from <= spine.as_of_date then first_touch.channel end as first_touch_channel,
        case when first_touch.visible_from <= spine.as_of_date then first_touch.campaign end as first_touch_campaign,
        case when landing_page.visible_from <= spine.as_of_date then landing_page.landing_page_path end
            as landing_page_path
    from spine
    left join milestones on spine.lead_id = milestones.lead_id
    left join first_touch on spine.lead_id = first_touch.lead_id
    left join landing_page on spine.lead_id = landing_page.lead_id
)

select * from final
