{{ config(contract={'enforced': true}) }}
{#-
  Shadow-mode monitoring: for every past scoring run whose labels have matured, realised conversion by
  model decile next to realised conversion by incumbent (rule-based points) decile on the same leads.
  Rows appear once a run's 90-day windows are observed, so it fills as data advances.
-#}
with matured as (
    -- the scores whose outcome is known; rpt_lead_score_outcomes is where score history meets the labels
    select
        lead_id,
        as_of_date,
        scored_at,
        model_version,
        conversion_probability,
        converted as label_converted
    from {{ ref('rpt_lead_score_outcomes') }}
    where is_label_observed
),

incumbent as (
    select * from {{ ref('fct_lead_incumbent_scores') }}
),

ranked as (
    select
        matured.scored_at,
        matured.model_version,
        matured.as_of_date,
        matured.conversion_probability,
        incumbent.incumbent_score,
        matured.label_converted,
        ntile(10) over (
            partition by matured.scored_at, matured.model_version
            order by matured.conversion_probability desc, matured.lead_id asc
        ) as model_decile,
        ntile(10) over (
            partition by matured.scored_at, matured.model_version
            order by incumbent.incumbent_score desc, matured.lead_id asc
        ) as incumbent_decile
    from matured
    left join incumbent on matured.lead_id = incumbent.lead_id and matured.as_of_date = incumbent.as_of_date
),

by_model as (
    select
        scored_at,
        model_version,
        as_of_date,
        model_decile as decile,
        count(*) as leads,
        avg(conversion_probability) as mean_predicted,
        avg(cast(label_converted as double)) as model_realised_rate
    from ranked
    group by scored_at, model_version, as_of_date, model_decile
),

by_incumbent as (
    select
        scored_at,
        model_version,
        incumbent_decile as decile,
        avg(cast(label_converted as double)) as incumbent_realised_rate
    from ranked
    group by scored_at, model_version, incumbent_decile
),

final as (
    select
        by_model.scored_at,
        by_model.model_version,
        by_model.as_of_date,
        cast(by_model.decile as integer) as decile,
        cast(by_model.leads as bigint) as leads,
        by_model.mean_predicted,
        by_model.model_realised_rate,
        by_incumbent.incumbent_realised_rate
    from by_model
    inner join by_incumbent
        on
            by_model.scored_at = by_incumbent.scored_at
            and by_model.model_version = by_incumbent.model_version
            and by_model.decile = by_incumbent.decile
)

select * from final
