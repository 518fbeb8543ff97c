{#- A timestamp column never lies after another (e.g. the last event a feature used vs its as-of time). -#}
{% test not_after(model, column_name, reference_column) %}
    select {{ column_name }}, {{ reference_column }}
    from {{ model }}
    where {{ column_name }} > {{ reference_column }}
{% endtest %}
