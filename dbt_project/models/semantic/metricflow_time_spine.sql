{#- One row per day, 2015-01-01 to 2042: the calendar MetricFlow aggregates metrics over. -#}
with days as (
    {{ integers_to_9999() }}
)

select cast({{ scorehouse.shift_timestamp('day', 'n', "cast('2015-01-01' as date)") }} as date) as date_day
from days
