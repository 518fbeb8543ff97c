{#-
  A web source's rows (page views, form submissions) attributed to a lead: the lead a row names, else the lead its
  anonymous visitor was identified as (the model's `identity` CTE, int_web__identity_map), with `attributed_at`,
  when the row became knowable as that lead's: its load, or for anonymous history the later moment the visitor was
  identified. Rows of no known lead are left out.
  Incremental runs take the rows loaded since, and the anonymous rows loaded before whose visitor was identified
  since (their history becomes this lead's now): two branches rather than one `or`, so the second joins only the
  visitors identified since.
-#}
{% macro rows_attributed_to_leads(rows, loaded_after) -%}
    {%- set attributed %}
        {{ rows }}.*,
        coalesce({{ rows }}.lead_id, identity.lead_id) as attributed_lead_id,
        case
            when {{ rows }}.lead_id is not null or identity.identity_known_at <= {{ rows }}._loaded_at
                then {{ rows }}._loaded_at
            else identity.identity_known_at
        end as attributed_at
    {%- endset %}
    select {{ attributed }}
    from {{ rows }}
    left join identity on {{ rows }}.anonymous_id = identity.anonymous_id
    where coalesce({{ rows }}.lead_id, identity.lead_id) is not null
    {%- if loaded_after %}
        and {{ rows }}._loaded_at > {{ loaded_after }}
    union all
    select {{ attributed }}
    from {{ rows }}
    inner join identity on {{ rows }}.anonymous_id = identity.anonymous_id
    where {{ rows }}.lead_id is null and {{ rows }}._loaded_at <= {{ loaded_after }}
        and identity.identity_known_at > {{ loaded_after }}
    {%- endif %}
{%- endmacro %}
