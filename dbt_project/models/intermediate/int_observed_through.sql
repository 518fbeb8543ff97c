{#-
  The data's high-water marks: the latest time the lead-facing (int_lead_observed_through) and the
  customer-facing sources had loaded. Labels are emitted only for windows that end by them; the spines stop at
  them. A fixed value for both can be passed as the `observed_through` var.
-#}
with lead_mark as (
    select lead_observed_through from {{ ref('int_lead_observed_through') }}
),

customer_loads as (
    select max(_loaded_at) as loaded_through from {{ ref('stg_crm__contract_events') }}
    union all
    select max(_loaded_at) from {{ ref('stg_product__usage_daily') }}
    union all
    select max(_loaded_at) from {{ ref('stg_support__tickets') }}
    union all
    select max(_loaded_at) from {{ ref('stg_support__nps_responses') }}
),

final as (
    select
        lead_mark.lead_observed_through,
        {% if var('observed_through') %}
        cast('{{ var("observed_through") }}' as timestamp) as customer_observed_through
        {% else %}
            (select max(customer_loads.loaded_through) from customer_loads) as customer_observed_through
        {% endif %}
    from lead_mark
)

select * from final
