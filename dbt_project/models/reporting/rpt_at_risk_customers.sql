{{ config(contract={'enforced': true}) }}
{#-
  The customer-success worklist: active customers whose latest churn probability is at least
  `at_risk_min_probability` (default 0.70), with the drivers and the intervention to run, riskiest first.
-#}
with scores as (
    select * from {{ ref('stg_scores__customer_churn_scores') }}
),

features as (
    select * from {{ ref('fct_customer_features') }}
),

accounts as (
    select * from {{ ref('stg_crm__accounts') }}
),

final as (
    select
        scores.account_id,
        cast(row_number() over (order by scores.churn_probability desc, scores.account_id asc) as integer) as risk_rank,
        accounts.account_name,
        scores.churn_probability,
        scores.score,
        scores.risk_tier,
        scores.recommended_intervention,
        scores.interventions,
        scores.top_drivers,
        features.contract_type,
        features.annual_contract_value,
        features.days_to_renewal,
        features.nps_category,
        features.days_since_last_login,
        features.has_csm,
        scores.as_of_date,
        scores.model_version,
        scores.scored_at
    from scores
    left join accounts on scores.account_id = accounts.account_id
    left join features on scores.account_id = features.account_id and scores.as_of_date = features.as_of_date
    where scores.churn_probability >= {{ var('at_risk_min_probability') }}
)

select * from final
