{#-
  The raw-source contract used for rejects: each source's row key and the columns a row cannot be used without.
  Staging models keep rows with no reject reason; stg_rejected_rows keeps the others with the reason.
-#}
{% macro raw_source_contract() -%}
    {{ return({
        'crm_leads': {'key': 'lead_id', 'required': ['lead_id', 'created_at', '_loaded_at']},
        'crm_lead_status_history': {'key': 'status_change_id', 'required': ['status_change_id', 'lead_id', 'status', 'changed_at', '_loaded_at']},
        'crm_activities': {'key': 'activity_id', 'required': ['activity_id', 'lead_id', 'activity_type', 'occurred_at', '_loaded_at']},
        'crm_opportunities': {'key': 'opportunity_id', 'required': ['opportunity_id', 'created_at', '_loaded_at']},
        'crm_accounts': {'key': 'account_id', 'required': ['account_id', '_loaded_at']},
        'web_pages': {'key': 'message_id', 'required': ['message_id', 'anonymous_id', 'url', 'timestamp', '_loaded_at']},
        'web_tracks': {'key': 'message_id', 'required': ['message_id', 'anonymous_id', 'event', 'timestamp', '_loaded_at']},
        'web_identifies': {'key': 'message_id', 'required': ['message_id', 'anonymous_id', 'user_id', 'timestamp', '_loaded_at']},
        'marketing_touches': {'key': 'touch_id', 'required': ['touch_id', 'lead_id', 'channel', 'touched_at', '_loaded_at']},
        'enrichment_firmographics': {'key': 'enrichment_id', 'required': ['enrichment_id', 'company_domain', 'enriched_at', '_loaded_at']},
        'crm_contracts': {'key': 'contract_id', 'required': ['contract_id', 'account_id', 'contract_type', 'start_date', '_loaded_at']},
        'crm_contract_events': {'key': 'contract_event_id', 'required': ['contract_event_id', 'account_id', 'event_type', 'event_at', '_loaded_at']},
        'product_usage_daily': {'key': "concat(account_id, '|', cast(usage_date as string))", 'required': ['account_id', 'usage_date', '_loaded_at']},
        'support_tickets': {'key': 'ticket_id', 'required': ['ticket_id', 'account_id', 'opened_at', '_loaded_at']},
        'nps_responses': {'key': 'response_id', 'required': ['response_id', 'account_id', 'score', 'responded_at', '_loaded_at']},
        'csm_assignments': {'key': 'assignment_id', 'required': ['assignment_id', 'account_id', 'assigned_at', '_loaded_at']},
    }) }}
{%- endmacro %}

{% macro reject_reason(table_name) -%}
    {%- set required = raw_source_contract()[table_name]['required'] -%}
    case
    {%- for column in required %}
        when {{ adapter.quote(column) if column == 'timestamp' else column }} is null then 'missing required field {{ column }}'
    {%- endfor %}
        else null
    end
{%- endmacro %}

{#- Every raw row with its reject reason (null when usable). -#}
{% macro checked_source(table_name) -%}
    select raw_rows.*, {{ reject_reason(table_name) }} as _reject_reason
    from {{ source('raw', table_name) }} as raw_rows
{%- endmacro %}
