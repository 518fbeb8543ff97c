{#- The conversion label per lead spine row (see the censored_label macro for the rules). -#}
{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='as_of_date',
          on_schema_change='fail') }}
{#- Incremental runs rebuild the rows whose label window had not passed yet, and the new ones. -#}
{%- set since = incremental_label_start() %}
{{ censored_label(
    spine='(select * from ' ~ ref('int_lead_spine') ~ ' where ' ~ as_of_dates_from(since) ~ ')',
    outcomes="select lead_id, changed_at as event_at, _loaded_at from " ~ ref('stg_crm__lead_status_changes') ~ " where status = 'converted'",
    entity_key='lead_id',
    horizon_days=lead_horizon_days(),
    observed_column='lead_observed_through',
    label_name='label_converted',
) }}
