{#- The model holds exactly one row. -#}
{% test exactly_one_row(model) %}
    select row_count from (select count(*) as row_count from {{ model }}) counted where row_count <> 1
{% endtest %}
