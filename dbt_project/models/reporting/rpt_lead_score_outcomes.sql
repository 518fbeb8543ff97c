{{ config(contract={'enforced': true}) }}
{#-
  Every lead score ever written, beside what happened: the realised label once the lead's window is observed.
  The semantic layer's lead metrics count these rows (models/semantic/_semantic__models.yml).
-#}
with history as (
    select
        lead_id,
        as_of_date,
        scored_at,
        model_version,
        conversion_probability,
        tier
    from {{ ref('stg_scores__lead_score_history') }}
),

features as (
    select
        lead_id,
        as_of_date,
        lead_source,
        is_label_observed,
        label_converted
    from {{ ref('fct_lead_features') }}
),

final as (
    select
        history.lead_id,
        history.scored_at,
        cast(history.scored_at as date) as scored_date,
        history.as_of_date,
        history.model_version,
        history.conversion_probability,
        history.tier,
        cast(ntile(10) over (
            partition by history.scored_at, history.model_version
            order by history.conversion_probability desc, history.lead_id asc
        ) as integer) as score_decile,
        features.lead_source,
        coalesce(features.is_label_observed, false) as is_label_observed,
        case when features.is_label_observed then features.label_converted end as converted,
        -- the probability again, only where the outcome is known: predicted and realised over the same rows
        case when features.is_label_observed then history.conversion_probability end as matured_probability
    from history
    left join features on history.lead_id = features.lead_id and history.as_of_date = features.as_of_date
)

select * from final
