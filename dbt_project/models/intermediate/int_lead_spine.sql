{#-
  The as-of spine: one row per lead per week (Mondays at 00:00), from the first Monday at which the
  lead existed and was loaded, while it was still open as far as we knew then, up to the high-water mark.
-#}
with leads as (
    select * from {{ ref('stg_crm__leads') }}
),

status_changes as (
    select * from {{ ref('stg_crm__lead_status_changes') }}
),

observed as (
    select lead_observed_through as observed_through from {{ ref('int_observed_through') }}
),

numbers as (
    {{ integers_to_9999() }}
),

lead_bounds as (
    select
        leads.lead_id,
        case when leads.created_at > leads._loaded_at then leads.created_at else leads._loaded_at end as known_at
    from leads
),

-- A lead closes, as far as the spine is concerned, once a terminal status has happened and been loaded.
closed as (
    select
        lead_id,
        min(case when changed_at > _loaded_at then changed_at else _loaded_at end) as closed_known_at
    from status_changes
    where is_terminal
    group by lead_id
),

weeks as (
    select {{ dbt.dateadd('week', 'numbers.n', 'first_week.week_start') }} as as_of_at
    from numbers
    cross join (
        select {{ dbt.date_trunc('week', 'min(known_at)') }} as week_start from lead_bounds
    ) as first_week
    cross join observed
    where {{ dbt.dateadd('week', 'numbers.n', 'first_week.week_start') }} <= observed.observed_through
),

final as (
    select
        lead_bounds.lead_id,
        cast(weeks.as_of_at as date) as as_of_date,
        cast(weeks.as_of_at as timestamp) as as_of_at
    from lead_bounds
    inner join weeks
        on weeks.as_of_at >= lead_bounds.known_at
    left join closed
        on lead_bounds.lead_id = closed.lead_id
    where closed.closed_known_at is null or weeks.as_of_at < closed.closed_known_at
)

select * from final
