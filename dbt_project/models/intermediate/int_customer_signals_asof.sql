{#-
  Customer-success signals as of each spine row: support tickets in trailing windows, the latest NPS answer,
  and CSM coverage, each counted only once it had happened and been loaded.
-#}
with spine as (
    select * from {{ ref('int_customer_spine') }}
),

tickets as (
    select * from {{ ref('stg_support__tickets') }}
),

nps as (
    select * from {{ ref('stg_support__nps_responses') }}
),

assignments as (
    select * from {{ ref('stg_crm__csm_assignments') }}
),

ticket_counts as (
    select
        spine.account_id,
        spine.as_of_date,
        cast(
            sum(case when {{ in_trailing_window('tickets.opened_at', 'spine.as_of_at', 30) }} then 1 else 0 end)
            as {{ dbt.type_bigint() }}
        ) as tickets_30d,
        cast(count(*) as {{ dbt.type_bigint() }}) as tickets_90d,
        cast(
            sum(case when tickets.priority in ('high', 'urgent') then 1 else 0 end)
            as {{ dbt.type_bigint() }}
        ) as high_priority_tickets_90d
    from spine
    inner join tickets
        on
            spine.account_id = tickets.account_id
            and {{ visible_at('tickets.opened_at', 'tickets._loaded_at', 'spine.as_of_at') }}
            and {{ in_trailing_window('tickets.opened_at', 'spine.as_of_at', 90) }}
    group by spine.account_id, spine.as_of_date
),

latest_nps as (
    select
        account_id,
        as_of_date,
        nps_score,
        responded_at
    from (
        select
            spine.account_id,
            spine.as_of_date,
            nps.nps_score,
            nps.responded_at,
            row_number() over (
                partition by spine.account_id, spine.as_of_date
                order by nps.responded_at desc, nps._loaded_at desc, nps.response_id desc
            ) as recency_rank
        from spine
        inner join nps
            on
                spine.account_id = nps.account_id
                and {{ visible_at('nps.responded_at', 'nps._loaded_at', 'spine.as_of_at') }}
    ) as ranked
    where recency_rank = 1
),

latest_csm as (
    select
        account_id,
        as_of_date,
        csm_id
    from (
        select
            spine.account_id,
            spine.as_of_date,
            assignments.csm_id,
            row_number() over (
                partition by spine.account_id, spine.as_of_date
                order by assignments.assigned_at desc, assignments._loaded_at desc, assignments.assignment_id desc
            ) as recency_rank
        from spine
        inner join assignments
            on
                spine.account_id = assignments.account_id
                and {{ visible_at('assignments.assigned_at', 'assignments._loaded_at', 'spine.as_of_at') }}
    ) as ranked
    where recency_rank = 1
),

final as (
    select
        spine.account_id,
        spine.as_of_date,
        coalesce(ticket_counts.tickets_30d, 0) as tickets_30d,
        coalesce(ticket_counts.tickets_90d, 0) as tickets_90d,
        coalesce(ticket_counts.high_priority_tickets_90d, 0) as high_priority_tickets_90d,
        latest_nps.nps_score as latest_nps_score,
        case
            when latest_nps.nps_score is null then 'none'
            when latest_nps.nps_score >= 9 then 'promoter'
            when latest_nps.nps_score >= 7 then 'passive'
            else 'detractor'
        end as nps_category,
        cast({{ dbt.datediff('latest_nps.responded_at', 'spine.as_of_at', 'day') }} as {{ dbt.type_int() }})
            as days_since_nps,
        latest_csm.csm_id is not null as has_csm
    from spine
    left join ticket_counts
        on spine.account_id = ticket_counts.account_id and spine.as_of_date = ticket_counts.as_of_date
    left join latest_nps on spine.account_id = latest_nps.account_id and spine.as_of_date = latest_nps.as_of_date
    left join latest_csm on spine.account_id = latest_csm.account_id and spine.as_of_date = latest_csm.as_of_date
)

select * from final
