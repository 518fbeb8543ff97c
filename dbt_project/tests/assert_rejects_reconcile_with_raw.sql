{#- Every raw row is either staged (possibly as a collapsed duplicate) or rejected with a reason. -#}
{%- set staged = {
    'crm_leads': ('stg_crm__leads', 'lead_id'),
    'crm_lead_status_history': ('stg_crm__lead_status_changes', 'status_change_id'),
    'crm_activities': ('stg_crm__activities', 'activity_id'),
    'web_pages': ('stg_web__pages', 'page_view_id'),
    'marketing_touches': ('stg_marketing__touches', 'touch_id'),
    'enrichment_firmographics': ('stg_enrichment__firmographics', 'enrichment_id'),
} -%}
{%- set contract = raw_source_contract() -%}
with counts as (
    {%- for table_name, (model, key) in staged.items() %}
        select
            '{{ table_name }}' as source_table,
            (
                select count(distinct {{ contract[table_name]['key'] }})
                from {{ source(contract[table_name]['system'], table_name) }}
                where {{ contract[table_name]['key'] }} is not null
            ) as raw_keys,
            (select count(*) from {{ ref(model) }}) as staged_rows,
            (
                select count(distinct source_row_key) from {{ ref('stg_rejected_rows') }}
                where
                    source_table = '{{ table_name }}'
                    and source_row_key not in (select {{ key }} from {{ ref(model) }})
            ) as rejected_only_keys
        {%- if not loop.last %}
            union all
        {%- endif %}
    {%- endfor %}
)

select * from counts
where raw_keys <> staged_rows + rejected_only_keys
