{#- Lifecycle stage as known at each as-of time, read from status history (never the current-state column). -#}
{{ config(**scorehouse.incremental_config('as_of_date')) }}
{%- set since = incremental_as_of_start() %}
with spine as (
    select * from {{ ref('int_lead_spine') }}
    where {{ as_of_dates_from(since) }}
),

status_changes as (
    select * from {{ ref('stg_crm__lead_status_changes') }}
),

candidates as (
    select
        spine.lead_id,
        spine.as_of_date,
        status_changes.status,
        status_changes.changed_at,
        row_number() over (
            partition by spine.lead_id, spine.as_of_date
            order by
                status_changes.changed_at desc, status_changes._loaded_at desc, status_changes.status_change_id desc
        ) as recency_rank
    from spine
    inner join status_changes
        on
            spine.lead_id = status_changes.lead_id
            and {{ visible_at('status_changes.changed_at', 'status_changes._loaded_at', 'spine.as_of_at') }}
),

final as (
    select
        lead_id,
        as_of_date,
        status as lifecycle_stage,
        changed_at as lifecycle_stage_changed_at
    from candidates
    where recency_rank = 1
)

select * from final
