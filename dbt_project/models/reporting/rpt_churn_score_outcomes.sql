{{ config(contract={'enforced': true}) }}
{#-
  Every churn score ever written, beside the customer's segment then and what happened: the realised label once
  its window is observed. The semantic layer's churn metrics count these rows.
-#}
with history as (
    select
        account_id,
        as_of_date,
        scored_at,
        model_version,
        churn_probability,
        risk_tier
    from {{ ref('stg_scores__customer_churn_score_history') }}
),

features as (
    select
        account_id,
        as_of_date,
        contract_type,
        nps_category,
        is_label_observed,
        label_churned
    from {{ ref('fct_customer_features') }}
),

final as (
    select
        history.account_id,
        history.scored_at,
        cast(history.scored_at as date) as scored_date,
        history.as_of_date,
        history.model_version,
        history.churn_probability,
        history.risk_tier,
        features.contract_type,
        features.nps_category,
        coalesce(features.is_label_observed, false) as is_label_observed,
        case when features.is_label_observed then features.label_churned end as churned,
        case when features.is_label_observed then history.churn_probability end as matured_probability
    from history
    left join features on history.account_id = features.account_id and history.as_of_date = features.as_of_date
)

select * from final
