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

-- The columns of a page view's touchpoint, written once for both branches below.
{%- set page_columns %}
        pages.page_view_id as touchpoint_id,
        coalesce(pages.lead_id, identity.lead_id) as lead_id,
        'web' as source_system,
        'page_view' as touch_type,
        cast(null as {{ dbt.type_string() }}) as channel,
        pages.page_type,
        pages.session_id,
        cast(null as {{ dbt.type_string() }}) as form_name,
        pages.url,
        cast(null as {{ dbt.type_string() }}) as campaign,
        cast(null as boolean) as is_decision_maker_reached,
        cast(null as {{ dbt.type_string() }}) as budget_status,
        pages.viewed_at as event_at,
        case
            when pages.lead_id is not null or identity.identity_known_at <= pages._loaded_at then pages._loaded_at
            else identity.identity_known_at
        end as _loaded_at
{%- endset %}
page_touchpoints as (
    select
{{ page_columns }}
    from pages
    left join identity on pages.anonymous_id = identity.anonymous_id
    where coalesce(pages.lead_id, identity.lead_id) is not null
    {%- if loaded_after %}
        and pages._loaded_at > {{ loaded_after }}
    union all
    -- anonymous history loaded before, whose visitor was identified since: this lead's from now on (two branches,
    -- not one `or`: the newly identified visitors are few, so this join skips nearly every row)
    select
{{ page_columns }}
    from pages
    inner join identity on pages.anonymous_id = identity.anonymous_id
    where pages.lead_id is null and pages._loaded_at <= {{ loaded_after }}
        and identity.identity_known_at > {{ loaded_after }}
    {%- endif %}
),

{%- set form_columns %}
        forms.form_submission_id as touchpoint_id,
        coalesce(forms.lead_id, identity.lead_id) as lead_id,
        'web' as source_system,
        'form_fill' as touch_type,
        cast(null as {{ dbt.type_string() }}) as channel,
        cast(null as {{ dbt.type_string() }}) as page_type,
        cast(null as {{ dbt.type_string() }}) as session_id,
        forms.form_name,
        cast(null as {{ dbt.type_string() }}) as url,
        cast(null as {{ dbt.type_string() }}) as campaign,
        cast(null as boolean) as is_decision_maker_reached,
        cast(null as {{ dbt.type_string() }}) as budget_status,
        forms.submitted_at as event_at,
        case
            when forms.lead_id is not null or identity.identity_known_at <= forms._loaded_at then forms._loaded_at
            else identity.identity_known_at
        end as _loaded_at
{%- endset %}
form_touchpoints as (
    select
{{ form_columns }}
    from forms
    left join identity on forms.anonymous_id = identity.anonymous_id
    where coalesce(forms.lead_id, identity.lead_id) is not null
    {%- if loaded_after %}
        and forms._loaded_at > {{ loaded_after }}
    union all
    -- anonymous history loaded before, whose visitor was identified since (as for page views)
    select
{{ form_columns }}
    from forms
    inner join identity on forms.anonymous_id = identity.anonymous_id
    where forms.lead_id is null and forms._loaded_at <= {{ loaded_after }}
        and identity.identity_known_at > {{ loaded_after }}
    {%- endif %}
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
