{#- The conversion label per lead spine row (see the censored_label macro for the rules). -#}
{{ censored_label(
    spine=ref('int_lead_spine'),
    outcomes="select lead_id, changed_at as event_at, _loaded_at from " ~ ref('stg_crm__lead_status_changes') ~ " where status = 'converted'",
    entity_key='lead_id',
    horizon_days=lead_horizon_days(),
    observed_column='lead_observed_through',
    label_name='label_converted',
) }}
