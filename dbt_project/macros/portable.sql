{#- SQL that DuckDB and Spark spell differently. Models call these instead of writing either spelling. -#}

{#- A column type from a contract (DuckDB's names) in the engine's spelling: Spark wants `string` for text. -#}
{% macro portable_type(data_type) -%}
  {{- adapter.dispatch('portable_type', 'scorehouse')(data_type) -}}
{%- endmacro %}

{% macro default__portable_type(data_type) -%}{{ data_type }}{%- endmacro %}

{% macro spark__portable_type(data_type) -%}
  {{- 'string' if data_type | lower in ('varchar', 'text', 'string') else data_type -}}
{%- endmacro %}


{#- `lag(expression, offset)` skipping nulls, before its `over (...)`: DuckDB takes `ignore nulls` inside the call,
    Spark after it. -#}
{% macro lag_ignore_nulls(expression, offset) -%}
  {{- adapter.dispatch('lag_ignore_nulls', 'scorehouse')(expression, offset) -}}
{%- endmacro %}

{% macro default__lag_ignore_nulls(expression, offset) -%}lag({{ expression }}, {{ offset }} ignore nulls){%- endmacro %}

{% macro spark__lag_ignore_nulls(expression, offset) -%}lag({{ expression }}, {{ offset }}) ignore nulls{%- endmacro %}


{#- `last_value(expression)` skipping nulls, before its `over (...)`. -#}
{% macro last_value_ignore_nulls(expression) -%}
  {{- adapter.dispatch('last_value_ignore_nulls', 'scorehouse')(expression) -}}
{%- endmacro %}

{% macro default__last_value_ignore_nulls(expression) -%}last_value({{ expression }} ignore nulls){%- endmacro %}

{% macro spark__last_value_ignore_nulls(expression) -%}last_value({{ expression }}) ignore nulls{%- endmacro %}


{#- Microseconds from one timestamp to another, exact: dbt-spark's datediff in microseconds is null for timestamps
    without a fractional second. -#}
{% macro microseconds_between(first, second) -%}
  {{- adapter.dispatch('microseconds_between', 'scorehouse')(first, second) -}}
{%- endmacro %}

{% macro default__microseconds_between(first, second) -%}{{ dbt.datediff(first, second, 'microsecond') }}{%- endmacro %}

{% macro spark__microseconds_between(first, second) -%}
  (unix_micros(cast({{ second }} as timestamp)) - unix_micros(cast({{ first }} as timestamp)))
{%- endmacro %}


{#- A string literal holding `text` exactly: DuckDB doubles a quote, Spark escapes it with a backslash. -#}
{% macro string_literal(text) -%}
  {{- adapter.dispatch('string_literal', 'scorehouse')(text) -}}
{%- endmacro %}

{% macro default__string_literal(text) -%}'{{ text | replace("'", "''") }}'{%- endmacro %}

{% macro spark__string_literal(text) -%}'{{ text | replace('\\', '\\\\') | replace("'", "\\'") }}'{%- endmacro %}


{#- `amount` days, weeks or months after a timestamp (a date is taken as its midnight). DuckDB: dbt's dateadd.
    Spark: timestampadd, which keeps fractions of a second; dbt-spark's dateadd rebuilds the instant from whole
    seconds, repeating its argument six times, and a first as-of date nests it four times deep: the expressions of
    the lead engagement model grew to thousands of nodes that Spark's planner took tens of seconds over. -#}
{% macro shift_timestamp(datepart, amount, ts) -%}
  {{- adapter.dispatch('shift_timestamp', 'scorehouse')(datepart, amount, ts) -}}
{%- endmacro %}

{% macro default__shift_timestamp(datepart, amount, ts) -%}{{ dbt.dateadd(datepart, amount, ts) }}{%- endmacro %}

{% macro spark__shift_timestamp(datepart, amount, ts) -%}
  timestampadd({{ datepart | upper }}, {{ amount }}, {{ ts }})
{%- endmacro %}
