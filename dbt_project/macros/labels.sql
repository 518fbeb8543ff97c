{#-
  The censored label, written once for every mart: did an outcome happen in (as_of, as_of + horizon] and get
  recorded by the window's end? Emitted only when the whole window lies at or before the high-water mark;
  otherwise NULL. `outcomes` must yield (<entity_key>, event_at, _loaded_at); `observed_column` names the
  high-water mark (observed_through_relation).
-#}
{% macro censored_label(spine, outcomes, entity_key, horizon_days, observed_column, label_name) %}
with spine as (
    select * from {{ spine }}
),

outcomes as (
    {{ outcomes }}
),

observed as (
    select {{ observed_column }} as observed_through from {{ observed_through_relation(observed_column) }}
),

in_window as (
    select
        spine.{{ entity_key }},
        spine.as_of_date,
        max(case when outcomes.{{ entity_key }} is not null then 1 else 0 end) as happened
    from spine
    left join outcomes
        on spine.{{ entity_key }} = outcomes.{{ entity_key }}
        and {{ in_label_window('outcomes.event_at', 'outcomes._loaded_at', 'spine.as_of_at', horizon_days) }}
    group by spine.{{ entity_key }}, spine.as_of_date
),

final as (
    select
        spine.{{ entity_key }},
        spine.as_of_date,
        {{ horizon_days }} as label_horizon_days,
        {{ scorehouse.shift_timestamp('day', horizon_days, 'spine.as_of_at') }} as label_window_end_at,
        {{ scorehouse.shift_timestamp('day', horizon_days, 'spine.as_of_at') }} <= observed.observed_through as is_label_observed,
        case
            when {{ scorehouse.shift_timestamp('day', horizon_days, 'spine.as_of_at') }} <= observed.observed_through
                then in_window.happened
        end as {{ label_name }}
    from spine
    inner join in_window on spine.{{ entity_key }} = in_window.{{ entity_key }} and spine.as_of_date = in_window.as_of_date
    cross join observed
)

select * from final
{% endmacro %}
