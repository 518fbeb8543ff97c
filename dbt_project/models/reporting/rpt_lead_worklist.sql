{{ config(contract={'enforced': true}) }}
{#-
  The reps' worklist: every open lead of the latest scoring run with its rep, route and next action.
  - Each lead belongs to a territory by country; within a territory the leads are dealt to its reps in turn,
    best first, so every rep gets a fair share of the strong ones.
  - Control group: `control_share` (var, default 5%) of today's call slots, summed over all reps, go to
    call-eligible leads drawn at random regardless of score (flagged is_control), so the model can later be
    judged without its own bias. They are queued first.
  - sales_now (the call queue): the controls, then call-eligible (not do-not-call) tier A and B leads by
    probability, up to each rep's daily_call_capacity.
  - nurture: not in the call queue, emailable, tier A-C (including A/B leads over capacity).
  - hold: everything else (tier D, or opted out of both calls and email).
-#}
with scores as (
    select * from {{ ref('stg_scores__lead_scores') }}
),

leads as (
    select * from {{ ref('stg_crm__leads') }}
),

features as (
    select
        lead_id,
        as_of_date,
        country_code
    from {{ ref('fct_lead_features') }}
),

incumbent as (
    select * from {{ ref('fct_lead_incumbent_scores') }}
),

territories as (
    select * from {{ ref('sales_territories') }}
),

reps as (
    select
        rep_id,
        territory,
        daily_call_capacity,
        row_number() over (partition by territory order by rep_id) - 1 as rep_index,
        count(*) over (partition by territory) as reps_in_territory
    from {{ ref('sales_reps') }}
),

control_slots as (
    select cast(round(sum(daily_call_capacity) * {{ var('control_share') }}) as integer) as slots from reps
),

placed as (
    select
        scores.lead_id,
        scores.as_of_date,
        scores.scored_at,
        scores.model_version,
        scores.conversion_probability,
        scores.score,
        scores.tier,
        scores.fit_score,
        scores.engagement_score,
        scores.next_action,
        scores.top_reasons,
        scores.segment_id,
        leads.is_do_not_call,
        leads.is_do_not_email,
        coalesce(territories.territory, 'rest_of_world') as territory,
        row_number() over (
            partition by coalesce(territories.territory, 'rest_of_world')
            order by scores.conversion_probability desc, scores.lead_id asc
        ) - 1 as territory_position,
        -- a pseudo-random draw order: a hash of the lead and its as-of date, so the same data always draws the
        -- same controls (never the clock), and each new as-of date draws afresh
        row_number() over (
            partition by leads.is_do_not_call
            order by
                {{ dbt.hash(dbt.concat(['scores.lead_id', "cast(scores.as_of_date as " ~ dbt.type_string() ~ ")"])) }},
                scores.lead_id
        ) as draw_order
    from scores
    inner join leads on scores.lead_id = leads.lead_id
    left join features on scores.lead_id = features.lead_id and scores.as_of_date = features.as_of_date
    left join territories on features.country_code = territories.country_code
),

assigned as (
    select
        placed.*,
        reps.rep_id,
        reps.daily_call_capacity,
        not placed.is_do_not_call and placed.draw_order <= control_slots.slots as is_control
    from placed
    inner join reps
        on
            placed.territory = reps.territory
            and mod(placed.territory_position, reps.reps_in_territory) = reps.rep_index
    cross join control_slots
),

queued as (
    select
        assigned.*,
        case
            when assigned.is_control or (not assigned.is_do_not_call and assigned.tier in ('A', 'B')) then
                row_number() over (
                    partition by
                        assigned.rep_id,
                        assigned.is_control or (not assigned.is_do_not_call and assigned.tier in ('A', 'B'))
                    order by assigned.is_control desc, assigned.conversion_probability desc, assigned.lead_id asc
                )
        end as call_position
    from assigned
),

final as (
    select
        queued.lead_id,
        queued.rep_id,
        queued.territory,
        case
            when queued.call_position <= queued.daily_call_capacity then 'sales_now'
            when not queued.is_do_not_email and queued.tier in ('A', 'B', 'C') then 'nurture'
            else 'hold'
        end as route,
        cast(case when queued.call_position <= queued.daily_call_capacity then queued.call_position end as integer)
            as queue_position,
        queued.is_control and coalesce(queued.call_position <= queued.daily_call_capacity, false) as is_control,
        queued.conversion_probability,
        queued.score,
        queued.tier,
        queued.fit_score,
        queued.engagement_score,
        incumbent.incumbent_score,
        queued.next_action,
        queued.top_reasons,
        queued.segment_id,
        queued.is_do_not_call,
        queued.is_do_not_email,
        queued.as_of_date,
        queued.model_version,
        queued.scored_at
    from queued
    left join incumbent on queued.lead_id = incumbent.lead_id and queued.as_of_date = incumbent.as_of_date
)

select * from final
