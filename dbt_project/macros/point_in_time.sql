{#-
  The time rules every feature and label obeys, written once.
  A row is visible at an as-of time when it had happened AND had been loaded by then.
-#}
{% macro visible_at(event_at, loaded_at, as_of_at) -%}
    ({{ event_at }} <= {{ as_of_at }} and {{ loaded_at }} <= {{ as_of_at }})
{%- endmacro %}

{#- Trailing window (as_of - days, as_of]: the lower edge is open, the as-of instant itself is in. -#}
{% macro in_trailing_window(event_at, as_of_at, days) -%}
    ({{ event_at }} > {{ dbt.dateadd('day', -1 * days, as_of_at) }} and {{ event_at }} <= {{ as_of_at }})
{%- endmacro %}

{#- Label window (as_of, as_of + horizon]; an outcome counts only if it was recorded by the window's end. -#}
{% macro in_label_window(event_at, loaded_at, as_of_at, horizon_days) -%}
    ({{ event_at }} > {{ as_of_at }}
     and {{ event_at }} <= {{ dbt.dateadd('day', horizon_days, as_of_at) }}
     and {{ loaded_at }} <= {{ dbt.dateadd('day', horizon_days, as_of_at) }})
{%- endmacro %}

{% macro lead_horizon_days() -%}
    {{ var('lead_horizon_days') | int }}
{%- endmacro %}

{% macro churn_horizon_days() -%}
    {{ var('churn_horizon_days') | int }}
{%- endmacro %}
