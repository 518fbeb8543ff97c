{#-
  The shape of a lead's journey as of each spine row: its first steps in order, where it came from, when it
  first filled a form, and in which order it looked at pricing and the demo. Steps are numbered in the order
  they could be seen (int_lead_touch_events), so a step shown at one as-of date stays the same step later:
  each milestone is a per-lead fact (int_lead_journey_milestones) that holds from its visible_from date on.
-#}
{%- set path_length = 5 -%}  {#- the steps int_lead_journey_milestones keeps -#}
{{ config(**scorehouse.incremental_config('as_of_date')) }}
{%- set since = incremental_as_of_start() %}
with spine as (
    select * from {{ ref('int_lead_spine') }}
    where {{ as_of_dates_from(since) }}
),

milestones as (
    select * from {{ ref('int_lead_journey_milestones') }}
),

final as (
    select
        spine.lead_id,
        spine.as_of_date,
        {%- for i in range(1, path_length + 1) %}
            case
                when milestones.step_{{ i }}_from <= spine.as_of_date then milestones.step_{{ i }}
            end as journey_step_{{ i }},
        {%- endfor %}
        concat_ws(
            ' > '
            {%- for i in range(1, path_length + 1) %}
                ,
                case when milestones.step_{{ i }}_from <= spine.as_of_date then milestones.step_{{ i }} end
            
            {%- endfor %}
        ) as journey_path,
        case
            when milestones.first_form_fill_from <= spine.as_of_date
                then cast(milestones.first_form_fill_step - 1 as {{ dbt.type_int() }})
        end as touches_before_first_form_fill,
        coalesce(
            milestones.first_pricing_from <= spine.as_of_date and milestones.first_demo_from <= spine.as_of_date
            and milestones.first_pricing_step < milestones.first_demo_step, false
        ) as viewed_pricing_before_demo,
        coalesce(
            milestones.first_pricing_from <= spine.as_of_date and milestones.first_demo_from <= spine.as_of_date
            and milestones.first_demo_step < milestones.first_pricing_step, false
        ) as viewed_demo_before_pricing,
        case when milestones.first_touch_from <= spine.as_of_date then milestones.first_touch_channel end
            as first_touch_channel,
        case when milestones.first_touch_from <= spine.as_of_date then milestones.first_touch_campaign end
            as first_touch_campaign,
        case when milestones.landing_page_from <= spine.as_of_date then milestones.landing_page_path end
            as landing_page_path
    from spine
    left join milestones on spine.lead_id = milestones.lead_id
)

select * from final
