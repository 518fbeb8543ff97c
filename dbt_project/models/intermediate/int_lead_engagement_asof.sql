{#-
  Engagement as of each spine row, computed without joining the spine to the touchpoints.

  A touchpoint counts at as-of M from `visible_from` (the first as-of at which it had happened and been
  loaded) and, for a trailing window of d days (M - d, M], until the first as-of at or after event + d.
  So every windowed count is a running sum of +1 at the first date and -1 at the second, and every
  "so far" figure is a running sum, min or max over the weeks. Scanning the touchpoints once, grouping
  them by lead and week, and taking running sums over the weeks gives exactly what a join of each as-of
  date to every touchpoint visible then would give (tests/reference_features.py checks this row by row).
  Incremental runs add the new as-of dates, continuing each lead's sums from its last built row; the
  columns at the end are that running state where the features above do not already carry it.
-#}
{{ config(**scorehouse.incremental_config('as_of_date')) }}
{%- set spec = lead_engagement_spec() -%}
{%- set windowed_counts = spec['windowed_counts'] -%}
{%- set transitions = spec['transitions'] -%}
{%- set three_step_transitions = spec['three_step_transitions'] -%}
{%- set decay_reference = spec['decay_reference'] -%}
{%- set half_life_microseconds = spec['half_life_microseconds'] -%}
{%- set topic_count = spec['topic_count'] -%}
{#- Incremental runs: the first new as-of date and the last one, as literals; full builds pass none and the
    macros read the last one from the spine. -#}
{%- set since = incremental_as_of_start() -%}
{%- set last_as_of = incremental_as_of_end(ref('int_lead_spine')) -%}
with {{ lead_engagement_sources(since, last_as_of) }},

-- Every running column per spine row (macros/lead_engagement.sql).
running as (
    select * from (
        {{ lead_engagement_running(since, last_as_of) }}
    ) as running_rows
),

final as (
    select
        spine.lead_id,
        spine.as_of_date,
        spine.as_of_at,
        cast(running.touchpoints_total as {{ dbt.type_bigint() }}) as touchpoints_total,
        running.first_touch_at,
        running.last_touch_at,
        cast({{ dbt.datediff('running.first_touch_at', 'spine.as_of_at', 'day') }} as {{ dbt.type_int() }})
            as days_since_first_touch,
        cast({{ dbt.datediff('running.last_touch_at', 'spine.as_of_at', 'day') }} as {{ dbt.type_int() }})
            as days_since_last_touch,
        {%- for name, condition, windows in windowed_counts %}
            {%- for days in windows %}
                cast(running.{{ name }}_{{ days }}d as {{ dbt.type_bigint() }}) as {{ name }}_{{ days }}d,
            {%- endfor %}
        {%- endfor %}
        {%- for days in [7, 30, 90] %}
            cast(running.web_sessions_{{ days }}d as {{ dbt.type_bigint() }}) as web_sessions_{{ days }}d,
        {%- endfor %}
        coalesce(running.decision_maker_flag, 0) = 1 as has_reached_decision_maker,
        case
            when running.budget_confirmed_flag = 1 then 'confirmed'
            when running.no_budget_flag = 1 then 'no_budget'
            else 'unknown'
        end as budget_status,
        -- engagement dynamics
        cast(running.engaged_touches_prev_30d as {{ dbt.type_bigint() }}) as engaged_touches_prev_30d,
        cast(
            (running.engaged_touches_7d + 1.0) / (running.engaged_touches_prev_30d * 7.0 / 30.0 + 1.0)
            as double
        ) as engagement_trend,
        cast(running.decay_mass * exp(
            ln(2) * {{ scorehouse.microseconds_between(decay_reference, 'spine.as_of_at') }}
            / {{ -1 * half_life_microseconds }}
        ) as double) as engagement_score_decayed,
        cast(running.content_downloads_total as {{ dbt.type_bigint() }}) as content_downloads_total,
        cast({{ dbt.datediff('running.last_trial_activity_at', 'spine.as_of_at', 'day') }} as {{ dbt.type_int() }})
            as days_since_trial_activity,
        cast(running.sessions_total as {{ dbt.type_bigint() }}) as sessions_total,
        cast(running.page_views_total as {{ dbt.type_bigint() }}) as page_views_total,
        cast(running.page_views_total * 1.0 / nullif(running.sessions_total, 0) as double)
            as avg_pages_per_session,
        cast(running.session_seconds / 60.0 / nullif(running.sessions_total, 0) as double)
            as avg_session_minutes,
        cast(running.bounce_sessions * 1.0 / nullif(running.sessions_total, 0) as double)
            as bounce_rate,
        -- the journey so far
        cast(running.journey_steps_total as {{ dbt.type_bigint() }}) as journey_steps_total,
        cast(
            {{ scorehouse.microseconds_between('running.first_step_at', 'running.last_step_at') }} / 86400e6
            / nullif(running.journey_steps_total - 1, 0) as double
        ) as avg_days_between_steps,
        running.last_step as last_journey_step,
        cast(running.channels_seen as {{ dbt.type_bigint() }}) as channels_seen,
        cast(running.colleagues_known as {{ dbt.type_bigint() }}) as colleagues_known,
        {%- for a, b in transitions %}
            cast(running.transitions_{{ a }}_to_{{ b }} as {{ dbt.type_bigint() }}) as transitions_{{ a }}_to_{{ b }},
        {%- endfor %}
        {%- for a, b, c in three_step_transitions %}
            cast(running.transitions_{{ a }}_to_{{ b }}_to_{{ c }} as {{ dbt.type_bigint() }})
                as transitions_{{ a }}_to_{{ b }}_to_{{ c }},
        {%- endfor %}
        {%- for k in range(topic_count) %}
            cast(running.topic_{{ k }}_views * 1.0 / nullif(running.page_views_total, 0) as double)
                as content_topic_{{ k }}_share,
        {%- endfor %}
        -- running state for incremental runs
        {%- for k in range(topic_count) %}
            running.topic_{{ k }}_views,
        {%- endfor %}
        running.decay_mass,
        running.bounce_sessions,
        running.session_seconds,
        running.first_step_at,
        running.last_step_at,
        running.last_trial_activity_at,
        running.decision_maker_flag,
        running.budget_confirmed_flag,
        running.no_budget_flag
    from spine
    inner join running on spine.lead_id = running.lead_id and spine.as_of_date = running.as_of_date
)

select * from final
