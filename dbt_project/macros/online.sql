{#-
  Online features: the same lead models, compiled for a few leads at one instant instead of for every lead on
  the weekly grid (scoring/online.py runs the compiled query per request). `dbt compile --vars
  '{online_features: true}'` makes every model of the chain ephemeral, so the mart compiles to one query, and
  switches four things, all here or in the macros that call these:
  - raw tables are read from `__online__<table>` relations, which the caller defines as the requested leads'
    rows (of the warehouse or of a request's body);
  - the spine is one row per requested lead (`__online__request`) at the instant `$as_of_at`;
  - the as-of grid has that one instant: a row known at or before it is visible at it, a later one never;
  - what is known is what had been loaded by that instant (observed_through_relation).
  The feature definitions themselves are not repeated anywhere.
-#}
{% macro is_online() -%}
    {%- do return(var('online_features', false) in [true, 'true', 'True']) -%}
{%- endmacro %}

{#- The requested instant: a query parameter bound per request. -#}
{% macro online_as_of_at() -%}
    cast($as_of_at as timestamp)
{%- endmacro %}

{#- A relation holding the high-water mark `column` names: the lead sources' own model for
    `lead_observed_through` (a lead build does not wait for the customer sources), else int_observed_through.
    Online both marks are the instant scored: what had been loaded by then is what is known, so every label of a
    fresh row is still censored. -#}
{% macro observed_through_relation(column) -%}
    {%- if is_online() -%}
    (select {{ online_as_of_at() }} as lead_observed_through, {{ online_as_of_at() }} as customer_observed_through)
    {%- elif column == 'lead_observed_through' -%}
    {{ ref('int_lead_observed_through') }}
    {%- else -%}
    {{ ref('int_observed_through') }}
    {%- endif -%}
{%- endmacro %}

{#- The relation holding the requested leads' rows of a raw table. -#}
{% macro online_relation(table_name) -%}
    __online__{{ table_name }}
{%- endmacro %}

{#- A model's config: `batch` normally; online, ephemeral (a public mart, which cannot be, a view: it is
    only compiled, never built). -#}
{% macro online_or(batch, online='ephemeral') -%}
    {%- if is_online() -%}{%- do return({'materialized': online}) -%}{%- endif -%}
    {%- do return(batch) -%}
{%- endmacro %}

{#- Config of a raw table's staging model: it only grows by rows loaded later (ingest/incremental.py checks), so
    batch runs append. -#}
{% macro append_config() -%}
    {%- do return(online_or({'materialized': 'incremental', 'incremental_strategy': 'append',
                              'on_schema_change': 'fail'})) -%}
{%- endmacro %}
