{#-
  Incremental runs of the lead models. Every feature row is computable at its as-of time from rows that had
  been loaded by then, so rows already built never change when newer data arrives; an incremental run only
  adds what is new. It relies on one property of the raw data: appended rows carry load times (_loaded_at)
  later than everything the previous build saw (ingest/incremental.py checks this before a run; a
  backfill with older load times needs a full refresh).

  These macros return SQL literals computed from the existing table, or none on a full build.
-#}

{#- The latest as_of_date in `relation` plus `days`, as a date literal; none when the relation is empty. -#}
{% macro latest_as_of_literal(relation, days=0) -%}
    {%- set latest = run_query('select max(as_of_date) from ' ~ relation).columns[0].values()[0] -%}
    {%- if latest is none -%}{%- do return(none) -%}{%- endif -%}
    {%- do return("date '" ~ (latest + modules.datetime.timedelta(days=days)).isoformat() ~ "'") -%}
{%- endmacro %}

{#- The first weekly as-of date not built yet: the week after the latest one in this model. -#}
{% macro incremental_as_of_start() -%}
    {%- if not execute or this is none or not is_incremental() -%}{%- do return(none) -%}{%- endif -%}
    {%- do return(latest_as_of_literal(this, 7)) -%}
{%- endmacro %}

{#- The last as-of date this run builds: the latest on the spine, which is built before the models that read
    it. A literal filters as cheaply as a constant (and lets DuckDB skip row groups). -#}
{% macro incremental_as_of_end(spine) -%}
    {%- if not execute or this is none or not is_incremental() -%}{%- do return(none) -%}{%- endif -%}
    {%- do return(latest_as_of_literal(spine)) -%}
{%- endmacro %}

{#- The first as-of date whose label may still change: the earliest row whose label window was not yet
    observed (labels look forward, so their rows are rebuilt until the window has passed). -#}
{% macro incremental_label_start() -%}
    {%- if not execute or this is none or not is_incremental() -%}{%- do return(none) -%}{%- endif -%}
    {%- set pending = run_query('select min(as_of_date) from ' ~ this ~ ' where not is_label_observed').columns[0].values()[0] -%}
    {%- if pending is none -%}{%- do return(incremental_as_of_start()) -%}{%- endif -%}
    {%- do return("date '" ~ pending.isoformat() ~ "'") -%}
{%- endmacro %}

{#- The latest load time the previous build saw, for append-only streams keyed on _loaded_at. -#}
{% macro incremental_loaded_after(column='_loaded_at') -%}
    {%- if not execute or this is none or not is_incremental() -%}{%- do return(none) -%}{%- endif -%}
    {%- set seen = run_query('select max(' ~ column ~ ') from ' ~ this).columns[0].values()[0] -%}
    {%- if seen is none -%}{%- do return(none) -%}{%- endif -%}
    {%- do return("timestamp '" ~ seen.isoformat(sep=' ') ~ "'") -%}
{%- endmacro %}

{#- `where`/`and` clause restricting a spine CTE to the as-of dates this run builds. -#}
{% macro as_of_dates_from(start, column='as_of_date') -%}
    {%- if start is not none %}{{ column }} >= {{ start }}{% else %}true{% endif -%}
{%- endmacro %}

{#- Post-hook of an incremental mart: copy the labels of rows whose window was still open at the previous
    build, where they changed, from the (incrementally refreshed) labels model. A no-op on full builds. Both
    sides are read from the earliest open row on: rows are appended week by week, so the older row groups are
    skipped. -#}
{% macro refresh_pending_labels(labels, entity_key, label_name) -%}
    {{- adapter.dispatch('refresh_pending_labels', 'scorehouse')(labels, entity_key, label_name) -}}
{%- endmacro %}

{#- Spark rebuilt the pending rows' partitions instead (mart_rebuild_start): nothing to update. -#}
{% macro spark__refresh_pending_labels(labels, entity_key, label_name) -%}{%- endmacro %}

{% macro default__refresh_pending_labels(labels, entity_key, label_name) -%}
    {%- if execute and this is not none and is_incremental() -%}
    {%- set pending_from = incremental_label_start() %}
    update {{ this }} as mart
    set label_window_end_at = labels.label_window_end_at,
        is_label_observed = labels.is_label_observed,
        {{ label_name }} = labels.{{ label_name }}
    from {{ labels }} as labels
    where mart.{{ entity_key }} = labels.{{ entity_key }}
        and mart.as_of_date = labels.as_of_date
        and not mart.is_label_observed
        -- only rows whose label changed: most open windows are still open, and rewriting them is wasted work
        and (mart.is_label_observed is distinct from labels.is_label_observed
            or mart.label_window_end_at is distinct from labels.label_window_end_at
            or mart.{{ label_name }} is distinct from labels.{{ label_name }})
        {%- if pending_from %}
        and mart.as_of_date >= {{ pending_from }}
        and labels.as_of_date >= {{ pending_from }}
        {%- endif %}
    {%- endif -%}
{%- endmacro %}

{#- How an incremental model replaces the rows it rebuilds, keyed on `unique_key` (as_of_date, or an entity id).
    DuckDB deletes the keys and inserts. Spark's built-in tables cannot delete: a model keyed on as_of_date is
    partitioned by it and overwrites the partitions it rebuilds; one keyed on an entity is rebuilt whole. -#}
{% macro incremental_config(unique_key, online='ephemeral') -%}
    {%- do return(online_or(adapter.dispatch('incremental_config', 'scorehouse')(unique_key), online)) -%}
{%- endmacro %}

{% macro default__incremental_config(unique_key) -%}
    {%- do return({'materialized': 'incremental', 'incremental_strategy': 'delete+insert', 'unique_key': unique_key,
                   'on_schema_change': 'fail'}) -%}
{%- endmacro %}

{% macro spark__incremental_config(unique_key) -%}
    {%- if unique_key == 'as_of_date' -%}
        {%- do return({'materialized': 'incremental', 'incremental_strategy': 'insert_overwrite',
                       'partition_by': ['as_of_date'], 'file_format': 'parquet', 'on_schema_change': 'fail'}) -%}
    {%- endif -%}
    {%- do return({'materialized': 'table', 'file_format': 'parquet'}) -%}
{%- endmacro %}

{#- The first as-of date an incremental run of a labelled mart rebuilds. DuckDB: the first new one (pending labels
    are updated in place by refresh_pending_labels). Spark: the first whose label may still change, so the
    partitions holding pending labels are overwritten with their current labels. -#}
{% macro mart_rebuild_start() -%}
    {%- do return(adapter.dispatch('mart_rebuild_start', 'scorehouse')()) -%}
{%- endmacro %}

{% macro default__mart_rebuild_start() -%}{%- do return(incremental_as_of_start()) -%}{%- endmacro %}

{% macro spark__mart_rebuild_start() -%}{%- do return(incremental_label_start()) -%}{%- endmacro %}
