{#- The conversion label per lead spine row (see the censored_label macro for the rules). The outcome is a
    change to the conversion status (the dbt var conversion_lead_status), which must also close the lead. -#}
{%- set conversion = var('conversion_lead_status') -%}
{%- if conversion not in var('terminal_lead_statuses') -%}
{{ exceptions.raise_compiler_error("conversion_lead_status '" ~ conversion ~ "' is not one of terminal_lead_statuses "
                                   ~ var('terminal_lead_statuses') | join(', ') ~ ": a converted lead must close") }}
{%- endif %}
{{ config(**scorehouse.incremental_config('as_of_date')) }}
{#- Incremental runs rebuild the rows whose label window had not passed yet, and the new ones. -#}
{%- set since = incremental_label_start() %}
{{ censored_label(
    spine='(select * from ' ~ ref('int_lead_spine') ~ ' where ' ~ as_of_dates_from(since) ~ ')',
    outcomes="select lead_id, changed_at as event_at, _loaded_at from " ~ ref('stg_crm__lead_status_changes')
        ~ " where status = '" ~ conversion ~ "'",
    entity_key='lead_id',
    horizon_days=lead_horizon_days(),
    observed_column='lead_observed_through',
    label_name='label_converted',
) }}
