{#-
  The time rules every feature and label obeys, written once.
  A row is visible at an as-of time when it had happened AND had been loaded by then.
-#}
{% macro visible_at(event_at, loaded_at, as_of_at) -%}
    ({{ event_at }} <= {{ as_of_at }} and {{ loaded_at }} <= {{ as_of_at }})
{%- endmacro %}

{#- Trailing window (as_of - days, as_of]: the lower edge is open, the as-of instant itself is in. -#}
{% macro in_trailing_window(event_at, as_of_at, days) -%}
    ({{ event_at }} > {{ scorehouse.shift_timestamp('day', -1 * days, as_of_at) }} and {{ event_at }} <= {{ as_of_at }})
{%- endmacro %}

{#- Label window (as_of, as_of + horizon]; an outcome counts only if it was recorded by the window's end. -#}
{% macro in_label_window(event_at, loaded_at, as_of_at, horizon_days) -%}
    ({{ event_at }} > {{ as_of_at }}
     and {{ event_at }} <= {{ scorehouse.shift_timestamp('day', horizon_days, as_of_at) }}
     and {{ loaded_at }} <= {{ scorehouse.shift_timestamp('day', horizon_days, as_of_at) }})
{%- endmacro %}

{% macro lead_horizon_days() -%}
    {{ var('lead_horizon_days') | int }}
{%- endmacro %}

{% macro churn_horizon_days() -%}
    {{ var('churn_horizon_days') | int }}
{%- endmacro %}

{#- The first moment a row was both real and in the warehouse: visible_at() holds from here on. -#}
{% macro known_from(event_at, loaded_at) -%}
    case when {{ event_at }} > {{ loaded_at }} then {{ event_at }} else {{ loaded_at }} end
{%- endmacro %}

{#-
  The as-of spine shared by every mart: one row per entity per period start (`week` = Mondays, `month` = the 1st,
  at 00:00) from the first period start at or after the entity became known, while it was not yet known to be
  closed, up to the high-water mark. `entities` names a CTE with (<entity_key>, known_at, closed_known_at);
  `observed` names a one-row CTE with observed_through. `since` (a literal), when given, keeps the period starts
  from it on: an incremental spine adds only those, since a row once built never changes (whether an entity was
  known, and known to be closed, at a period start depends only on rows loaded by then).
-#}
{% macro as_of_spine(entities, entity_key, period, observed, since=none) -%}
    {%- if is_online() %}
    -- online: the requested entities at the requested instant, if known and not yet known to be closed by then
    select
        {{ entities }}.{{ entity_key }},
        cast({{ online_as_of_at() }} as date) as as_of_date,
        {{ online_as_of_at() }} as as_of_at
    from {{ entities }}
    inner join __online__request as request on {{ entities }}.{{ entity_key }} = request.{{ entity_key }}
    where {{ entities }}.known_at <= {{ online_as_of_at() }}
        and ({{ entities }}.closed_known_at is null or {{ online_as_of_at() }} < {{ entities }}.closed_known_at)
    {%- else %}
    select
        {{ entities }}.{{ entity_key }},
        cast(periods.as_of_at as date) as as_of_date,
        cast(periods.as_of_at as timestamp) as as_of_at
    from {{ entities }}
    inner join (
        select {{ scorehouse.shift_timestamp(period, 'numbers.n', 'first_period.period_start') }} as as_of_at
        from ({{ integers_to_9999() }}) as numbers
        cross join (
            select {{ dbt.date_trunc(period, 'min(known_at)') }} as period_start from {{ entities }}
        ) as first_period
        cross join {{ observed }}
        where {{ scorehouse.shift_timestamp(period, 'numbers.n', 'first_period.period_start') }} <= {{ observed }}.observed_through
    ) as periods
        on periods.as_of_at >= {{ entities }}.known_at
    where {{ entities }}.known_at is not null
        and ({{ entities }}.closed_known_at is null or periods.as_of_at < {{ entities }}.closed_known_at)
        {%- if since is not none %}
        and periods.as_of_at >= {{ since }}
        {%- endif %}
    {%- endif %}
{%- endmacro %}

{#-
  The first as-of date (a period start at 00:00) at or after a timestamp. A row known at `ts` is visible
  from this as-of on; an event at `ts` leaves a trailing window of `days` from the first as-of at or after
  ts + days. Features built from these two dates are exact cumulative sums over the weekly spine.
-#}
{% macro first_as_of_at_or_after(ts, period='week') -%}
    {%- if is_online() -%}
    {#- online the grid is the one requested instant: visible at it, or (the day after it) never -#}
    cast(case when {{ ts }} <= {{ online_as_of_at() }} then {{ online_as_of_at() }}
              else {{ scorehouse.shift_timestamp('day', 1, online_as_of_at()) }} end as date)
    {%- else -%}
    cast(case when {{ ts }} = {{ dbt.date_trunc(period, ts) }} then {{ dbt.date_trunc(period, ts) }}
              else {{ scorehouse.shift_timestamp(period, 1, dbt.date_trunc(period, ts)) }} end as date)
    {%- endif -%}
{%- endmacro %}

{% macro first_as_of_outside_window(event_at, days, period='week') -%}
    {{ first_as_of_at_or_after(scorehouse.shift_timestamp('day', days, event_at), period) }}
{%- endmacro %}

{#- The high-water mark of a set of sources: the latest `_loaded_at` any of them holds, or the `observed_through`
    var when a run is told the data ends earlier. An expression (one scalar). -#}
{% macro high_water_mark(relations) -%}
    {%- if var('observed_through') -%}
    cast('{{ var("observed_through") }}' as timestamp)
    {%- else -%}
    (
        select max(loads.loaded_through) from (
            {%- for relation in relations %}
            select max(_loaded_at) as loaded_through from {{ relation }}
            {%- if not loop.last %}
            union all
            {%- endif %}
            {%- endfor %}
        ) as loads
    )
    {%- endif -%}
{%- endmacro %}
