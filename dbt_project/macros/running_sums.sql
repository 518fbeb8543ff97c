{#-
  One arm of a "delta" union for running-sum features: the same column list in every arm, each column either
  the arm's expression or 0 (sums) / NULL (running extremes). `columns` lists the summed columns,
  `extreme_columns` the min/max ones, `values` and `extremes` map column -> SQL for this arm.
-#}
{% macro delta_arm(entity_key, week, columns, extreme_columns, values={}, extremes={}) -%}
    {%- set selected = [entity_key ~ ' as ' ~ entity_key, week ~ ' as week'] -%}
    {%- for column in columns -%}{%- do selected.append(values.get(column, '0') ~ ' as ' ~ column) -%}{%- endfor -%}
    {%- for column in extreme_columns -%}{%- do selected.append(extremes.get(column, 'null') ~ ' as ' ~ column) -%}{%- endfor -%}
    select
        {{ selected | join(',\n        ') }}
{%- endmacro %}
