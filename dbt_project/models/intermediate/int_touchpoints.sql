{#-
  One stream of every touchpoint attributed to a lead: CRM activities, web page views and form fills
  (stitched through the identity map), and marketing touches.
  `_loaded_at` here means when the touchpoint became knowable *as this lead's*: for anonymous web
  events that is the later of the event's load and the moment the visitor was identified.
  Incremental runs append the touchpoints that became knowable after the previous build (macros/incremental.sql).
-#}
{{ config(**scorehouse.append_config()) }}
{%- set loaded_after = incremental_loaded_after() %}
with activities as (
    select * from {{ ref('stg_crm__activities') }}
),

pages as (
    select * from {{ ref('stg_web__pages') }}
),

forms as (
    select * from {{ ref('stg_web__form_submissions') }}
),

touches as (
    select * from {{ ref('stg_marketing__touches') }}
),

identity as (
    select * from {{ ref('int_web__identity_map') }}
),

activity_touchpoints as (
    select
        activity_id as touchpoint_id,
        lead_id,
        'crm_activity' as source_system,
        activity_type as touch_type,
        cast(null as {{ dbt.type_string() }}) as channel,
        cast(null as {{ dbt.type_string() }}) as page_type,
        cast(null as {{ dbt.type_string() }}) as session_id,
        cast(null as {{ dbt.type_string() }}) as form_name,
        cast(null as {{ dbt.type_string() }}) as url,
        cast(null as {{ dbt.type_string() }}) as campaign,
        is_decision_maker_reached,
        budget_status,
        occurred_at as event_at,
        _loaded_at
    from activities
    {%- if loaded_after %}
    where _loaded_at > {{ loaded_after }}
    {%- endif %}
),

-- Page views attributed to leads (macros/identity.sql).
page_rows as (
    {{ rows_attributed_to_leads('pages', loaded_after) }}
),

page_touchpoints as (
    select
        page_rows.page_view_id as touchpoint_id,
        page_rows.attributed_lead_id as lead_id,
        'web' as source_system,
        'page_view' as touch_type,
        cast(null as {{ dbt.type_string() }}) as channel,
        page_rows.page_type,
        page_rows.session_id,
        cast(null as {{ dbt.type_string() }}) as form_name,
        page_rows.url,
        cast(null as {{ dbt.type_string() }}) as campaign,
        cast(null as boolean) as is_decision_maker_reached,
        cast(null as {{ dbt.type_string() }}) as budget_status,
        page_rows.viewed_at as event_at,
        page_rows.attributed_at as _loaded_at
    from page_rows
),

-- Form submissions attributed to leads (macros/identity.sql).
form_rows as (
    {{ rows_attributed_to_leads('forms', loaded_after) }}
),

form_touchpoints as (
    select
        form_rows.form_submission_id as touchpoint_id,
        form_rows.attributed_lead_id as lead_id,
        'web' as source_system,
        'form_fill' as touch_type,
        cast(null as {{ dbt.type_string() }}) as channel,
        cast(null as {{ dbt.type_string() }}) as page_type,
        cast(null as {{ dbt.type_string() }}) as session_id,
        form_rows.form_name,
        cast(null as {{ dbt.type_string() }}) as url,
        cast(null as {{ dbt.type_string() }}) as campaign,
        cast(null as boolean) as is_decision_maker_reached,
        cast(null as {{ dbt.type_string() }}) as budget_status,
        form_rows.submitted_at as event_at,
        form_rows.attributed_at as _loaded_at
    from form_rows
),

marketing_touchpoints as (
    select
        touch_id as touchpoint_id,
        lead_id,
        'marketing' as source_system,
        'marketing_touch' as touch_type,
        channel,
        cast(null as {{ dbt.type_string() }}) as page_type,
        cast(null as {{ dbt.type_string() }}) as session_id,
        cast(null as {{ dbt.type_string() }}) as form_name,
        cast(null as {{ dbt.type_string() }}) as url,
        campaign,
        cast(null as boolean) as is_decision_maker_reached,
        cast(null as {{ dbt.type_string() }}) as budget_status,
        touched_at as event_at,
        _loaded_at
    from touches
    {%- if loaded_after %}
    where _loaded_at > {{ loaded_after }}
    {%- endif %}
),

final as (
    select * from activity_touchpoints
    union all
    select * from page_touchpoints
    union all
    select * from form_touchpoints
    union all
    select * from marketing_touchpoints
)

select * from final
{%- if loaded_after %}
where _loaded_at > {{ loaded_after }}
{%- endif %}
