{#- The churn label per customer spine row: a recorded cancellation (see the censored_label macro). -#}
{{ censored_label(
    spine=ref('int_customer_spine'),
    outcomes="select account_id, event_at, _loaded_at from " ~ ref('stg_crm__contract_events')
        ~ " where event_type = 'cancelled'",
    entity_key='account_id',
    horizon_days=churn_horizon_days(),
    observed_column='customer_observed_through',
    label_name='label_churned',
) }}
