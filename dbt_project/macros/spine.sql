{#- Integers 0..9999 from a cross join of digits: portable, no engine-specific series function. -#}
{% macro integers_to_9999() -%}
    with digits as (
        {% for d in range(10) %}select {{ d }} as d{% if not loop.last %} union all {% endif %}{% endfor %}
    )
    select ones.d + 10 * tens.d + 100 * hundreds.d + 1000 * thousands.d as n
    from digits as ones
    cross join digits as tens
    cross join digits as hundreds
    cross join digits as thousands
{%- endmacro %}
