{#- The tables Python jobs write (sources tagged python_output in models/outputs/_outputs__sources.yml) are created
    here, empty, when they are missing: a plain `dbt build` on a warehouse holding only raw data then builds the
    reports over them. core/outputs.py creates them from the same file, the same way. Each description becomes a
    comment in the warehouse. -#}
{% macro create_python_outputs() %}
  {%- if execute -%}
    {%- for node in graph.sources.values() | sort(attribute='unique_id') if 'python_output' in node.tags -%}
      {%- for statement in adapter.dispatch('python_output_ddl', 'scorehouse')(node) -%}
        {%- do run_query(statement) -%}
      {%- endfor -%}
    {%- endfor -%}
  {%- endif -%}
  select 1
{% endmacro %}


{#- The statements that create one table (DuckDB takes them as one batch). -#}
{% macro default__python_output_ddl(node) -%}
  {%- set columns = node.columns.values() | list -%}
  {%- set relation = node.schema ~ '.' ~ node.name -%}
  {%- set ddl -%}
  create schema if not exists {{ node.schema }};
  create table if not exists {{ relation }} (
    {%- for column in columns %}
    {{ column.name }} {{ column.data_type }}{{ scorehouse.python_output_constraints(column) }}{{ ',' if not loop.last }}
    {%- endfor %}
  );
  {%- for column in columns %}
  alter table {{ relation }} add column if not exists {{ column.name }} {{ column.data_type }};
  {%- endfor %}
  comment on table {{ relation }} is {{ scorehouse.python_output_literal(node.description) }};
  {%- for column in columns %}
  comment on column {{ relation }}.{{ column.name }} is {{ scorehouse.python_output_literal(column.description) }};
  {%- endfor %}
  {%- endset -%}
  {%- do return([ddl]) -%}
{%- endmacro %}


{#- Spark runs one statement at a time, has no column constraints on its built-in tables (not-null stays a data
    test) and takes the comments inside the create. Columns added to the file later are added by the Python jobs
    (core/spark.py: ensure_table), not by this hook. -#}
{% macro spark__python_output_ddl(node) -%}
  {%- set columns = node.columns.values() | list -%}
  {%- set relation = node.schema ~ '.' ~ node.name -%}
  {%- set statements = ['create database if not exists ' ~ node.schema] -%}
  {%- set create -%}
  create table if not exists {{ relation }} (
    {%- for column in columns %}
    {{ column.name }} {{ scorehouse.portable_type(column.data_type) }}
      comment {{ scorehouse.python_output_literal(column.description) }}{{ ',' if not loop.last }}
    {%- endfor %}
  ) using parquet comment {{ scorehouse.python_output_literal(node.description) }}
  {%- endset -%}
  {%- do statements.append(create) -%}
  {%- do return(statements) -%}
{%- endmacro %}


{% macro python_output_constraints(column) -%}
  {%- set kinds = column.constraints | map(attribute='type') | map('string') | list -%}
  {{- ' not null' if 'not_null' in kinds or 'ConstraintType.not_null' in kinds -}}
  {{- ' primary key' if 'primary_key' in kinds or 'ConstraintType.primary_key' in kinds -}}
{%- endmacro %}


{#- Descriptions as SQL string literals, whitespace folded as core/outputs.py folds it. -#}
{% macro python_output_literal(text) -%}
  {{- scorehouse.string_literal(text.split() | join(' ')) -}}
{%- endmacro %}
