{#-
  The conversion label: did the lead convert in (as_of, as_of + horizon], as recorded by the window's end?
  Emitted only when the whole window lies at or before the data's high-water mark; otherwise NULL (censored).
-#}
with spine as (
    select * from {{ ref('int_lead_spine') }}
),

conversions as (
    select lead_id, changed_at, _loaded_at
    from {{ ref('stg_crm__lead_status_changes') }}
    where status = 'converted'
),

observed as (
    select lead_observed_through as observed_through from {{ ref('int_observed_through') }}
),

outcomes as (
    select
        spine.lead_id,
        spine.as_of_date,
        max(case when conversions.lead_id is not null then 1 else 0 end) as converted_in_window
    from spine
    left join conversions
        on spine.lead_id = conversions.lead_id
        and {{ in_label_window('conversions.changed_at', 'conversions._loaded_at', 'spine.as_of_at', lead_horizon_days()) }}
    group by spine.lead_id, spine.as_of_date
),

final as (
    select
        spine.lead_id,
        spine.as_of_date,
        {{ lead_horizon_days() }} as label_horizon_days,
        {{ dbt.dateadd('day', lead_horizon_days(), 'spine.as_of_at') }} as label_window_end_at,
        {{ dbt.dateadd('day', lead_horizon_days(), 'spine.as_of_at') }} <= observed.observed_through as is_label_observed,
        case
            when {{ dbt.dateadd('day', lead_horizon_days(), 'spine.as_of_at') }} <= observed.observed_through
                then outcomes.converted_in_window
        end as label_converted
    from spine
    inner join outcomes on spine.lead_id = outcomes.lead_id and spine.as_of_date = outcomes.as_of_date
    cross join observed
)

select * from final
