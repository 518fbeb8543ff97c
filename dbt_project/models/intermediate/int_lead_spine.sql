{#-
  The as-of spine: one row per lead per week (Mondays at 00:00), from the first Monday at which the
  lead existed and was loaded, while it was still open as far as we knew then, up to the high-water mark.
  Incremental runs add the new weeks only (as_of_spine says why the weeks built do not change).
-#}
{{ config(**scorehouse.incremental_config('as_of_date')) }}
{%- set since = incremental_as_of_start() %}
with leads as (
    select * from {{ ref('stg_crm__leads') }}
),

status_changes as (
    select * from {{ ref('stg_crm__lead_status_changes') }}
),

observed as (
    select lead_observed_through as observed_through from {{ observed_through_relation('lead_observed_through') }}
),

-- A lead closes, as far as the spine is concerned, once a terminal status has happened and been loaded.
closed as (
    select lead_id, min({{ known_from('changed_at', '_loaded_at') }}) as closed_known_at
    from status_changes
    where is_terminal
    group by lead_id
),

lead_bounds as (
    select
        leads.lead_id,
        {{ known_from('leads.created_at', 'leads._loaded_at') }} as known_at,
        closed.closed_known_at
    from leads
    left join closed on leads.lead_id = closed.lead_id
),

final as (
    {{ as_of_spine('lead_bounds', 'lead_id', 'week', 'observed', since) }}
)

select * from final
