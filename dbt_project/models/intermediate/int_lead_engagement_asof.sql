{#-
  Engagement as of each spine row: counts over trailing windows (as_of - w, as_of], recency, and what
  sales conversations revealed. Only touchpoints that had happened and were loaded by as_of_at count.
-#}
{%- set windowed_counts = [
    ('emails_opened', "touch_type = 'email_opened'", [7, 30, 90]),
    ('emails_clicked', "touch_type = 'email_clicked'", [7, 30, 90]),
    ('calls', "touch_type = 'call'", [30, 90]),
    ('meetings', "touch_type = 'meeting'", [30, 90]),
    ('page_views', "touch_type = 'page_view'", [30, 90]),
    ('pricing_page_views', "touch_type = 'page_view' and page_type = 'pricing'", [7, 30, 90]),
    ('demo_page_views', "touch_type = 'page_view' and page_type = 'demo'", [30, 90]),
    ('free_trial_page_views', "touch_type = 'page_view' and page_type = 'free_trial'", [30, 90]),
    ('form_fills', "touch_type = 'form_fill'", [30, 90]),
    ('marketing_touches', "touch_type = 'marketing_touch'", [30, 90]),
] -%}
with spine as (
    select * from {{ ref('int_lead_spine') }}
),

touchpoints as (
    select * from {{ ref('int_touchpoints') }}
),

visible as (
    select
        spine.lead_id,
        spine.as_of_date,
        spine.as_of_at,
        touchpoints.touchpoint_id,
        touchpoints.touch_type,
        touchpoints.page_type,
        touchpoints.session_id,
        touchpoints.is_decision_maker_reached,
        touchpoints.budget_status,
        touchpoints.event_at
    from spine
    left join touchpoints
        on spine.lead_id = touchpoints.lead_id
        and {{ visible_at('touchpoints.event_at', 'touchpoints._loaded_at', 'spine.as_of_at') }}
),

aggregated as (
    select
        lead_id,
        as_of_date,
        as_of_at,
        cast(count(touchpoint_id) as {{ dbt.type_bigint() }}) as touchpoints_total,
        min(event_at) as first_touch_at,
        max(event_at) as last_touch_at,
        {%- for name, condition, windows in windowed_counts %}
        {%- for days in windows %}
        cast(sum(case when {{ condition }} and {{ in_trailing_window('event_at', 'as_of_at', days) }} then 1 else 0 end)
            as {{ dbt.type_bigint() }}) as {{ name }}_{{ days }}d,
        {%- endfor %}
        {%- endfor %}
        {%- for days in [7, 30, 90] %}
        cast(count(distinct case when touch_type = 'page_view' and {{ in_trailing_window('event_at', 'as_of_at', days) }}
            then session_id end) as {{ dbt.type_bigint() }}) as web_sessions_{{ days }}d,
        {%- endfor %}
        max(case when is_decision_maker_reached then 1 else 0 end) as decision_maker_reached_flag,
        max(case when budget_status = 'confirmed' then 1 else 0 end) as budget_confirmed_flag,
        max(case when budget_status = 'no_budget' then 1 else 0 end) as no_budget_flag
    from visible
    group by lead_id, as_of_date, as_of_at
),

final as (
    select
        lead_id,
        as_of_date,
        as_of_at,
        touchpoints_total,
        first_touch_at,
        last_touch_at,
        cast({{ dbt.datediff('first_touch_at', 'as_of_at', 'day') }} as {{ dbt.type_int() }}) as days_since_first_touch,
        cast({{ dbt.datediff('last_touch_at', 'as_of_at', 'day') }} as {{ dbt.type_int() }}) as days_since_last_touch,
        {%- for name, condition, windows in windowed_counts %}
        {%- for days in windows %}
        {{ name }}_{{ days }}d,
        {%- endfor %}
        {%- endfor %}
        {%- for days in [7, 30, 90] %}
        web_sessions_{{ days }}d,
        {%- endfor %}
        decision_maker_reached_flag = 1 as has_reached_decision_maker,
        case
            when budget_confirmed_flag = 1 then 'confirmed'
            when no_budget_flag = 1 then 'no_budget'
            else 'unknown'
        end as budget_status
    from aggregated
)

select * from final
