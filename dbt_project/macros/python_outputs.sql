{#- The tables Python jobs write (sources tagged python_output in models/outputs/_outputs__sources.yml) are created
    here, empty, when they are missing: a plain `dbt build` on a warehouse holding only raw data then builds the
    reports over them. core/outputs.py creates them from the same file, the same way. Each description becomes a
    comment in the warehouse. -#}
{% macro create_python_outputs() %}
  {%- if execute -%}
    {%- for node in graph.sources.values() | sort(attribute='unique_id') if 'python_output' in node.tags -%}
      {%- do run_query(adapter.dispatch('python_output_ddl', 'scorehouse')(node)) -%}
    {%- endfor -%}
  {%- endif -%}
  select 1
{% endmacro %}


{% macro default__python_output_ddl(node) -%}
  {%- set columns = node.columns.values() | list -%}
  {%- set relation = node.schema ~ '.' ~ node.name -%}
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
{%- endmacro %}


{% macro python_output_constraints(column) -%}
  {%- set kinds = column.constraints | map(attribute='type') | map('string') | list -%}
  {{- ' not null' if 'not_null' in kinds or 'ConstraintType.not_null' in kinds -}}
  {{- ' primary key' if 'primary_key' in kinds or 'ConstraintType.primary_key' in kinds -}}
{%- endmacro %}


{#- Descriptions as SQL string literals, whitespace folded as core/outputs.py folds it. -#}
{% macro python_output_literal(text) -%}
  '{{ text.split() | join(' ') | replace("'", "''") }}'
{%- endmacro %}
