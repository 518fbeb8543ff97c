{#-
  Reject rules for staging. The contract itself (each raw table's key and required columns) is generated
  from core/contract.py into source_contract.sql. Staging models keep rows with no reject reason;
  stg_rejected_rows keeps the others with the reason.
-#}
{% macro reject_reason(table_name) -%}
    {%- set required = raw_source_contract()[table_name]['required'] -%}
    case
    {%- for column in required %}
        when {{ adapter.quote(column) if column == 'timestamp' else column }} is null then 'missing required field {{ column }}'
    {%- endfor %}
        else null
    end
{%- endmacro %}

{#- Every raw row with its reject reason (null when usable); online, the requested leads' rows (macros/online.sql). -#}
{% macro checked_source(table_name) -%}
    select raw_rows.*, {{ reject_reason(table_name) }} as _reject_reason
    from {% if is_online() %}{{ online_relation(table_name) }}{% else %}{{ source(raw_source_contract()[table_name]['system'], table_name) }}{% endif %} as raw_rows
{%- endmacro %}
