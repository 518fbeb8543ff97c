{#- The call queue never exceeds a rep's daily capacity, never holds a do-not-call lead, and nurture never
    holds a do-not-email lead. -#}
with worklist as (
    select * from {{ ref('rpt_lead_worklist') }}
),

reps as (
    select * from {{ ref('sales_reps') }}
),

over_capacity as (
    select
        worklist.rep_id,
        count(*) as queued,
        max(reps.daily_call_capacity) as capacity
    from worklist
    inner join reps on worklist.rep_id = reps.rep_id
    where worklist.route = 'sales_now'
    group by worklist.rep_id
    having count(*) > max(reps.daily_call_capacity)
)

select
    rep_id as lead_or_rep,
    'call queue over capacity' as problem
from over_capacity
union all
select
    lead_id,
    'do-not-call lead in the call queue' as problem
from worklist
where route = 'sales_now' and is_do_not_call
union all
select
    lead_id,
    'do-not-email lead in nurture' as problem
from worklist
where route = 'nurture' and is_do_not_email
