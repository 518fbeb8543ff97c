{#- Every raw row that staging could not use, with its source, key and reason: nothing is dropped silently. -#}
{%- set contract = raw_source_contract() -%}
with rejected as (
    {%- for table_name, spec in contract.items() %}
        select
            '{{ table_name }}' as source_table,
            cast({{ spec['key'] }} as {{ dbt.type_string() }}) as source_row_key,
            _reject_reason as reject_reason,
            cast(_loaded_at as timestamp) as _loaded_at
        from ({{ checked_source(table_name) }}) as checked
        where _reject_reason is not null
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
)

select * from rejected
