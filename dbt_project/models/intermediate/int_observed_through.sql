{#-
  The data's high-water marks: the latest time the lead-facing (int_lead_observed_through) and the
  customer-facing sources had loaded. Labels are emitted only for windows that end by them; the spines stop at
  them. A fixed value for both can be passed as the `observed_through` var.
-#}
with lead_mark as (
    select lead_observed_through from {{ ref('int_lead_observed_through') }}
),

final as (
    select
        lead_mark.lead_observed_through,
        {{ high_water_mark([
            ref('stg_crm__contract_events'), ref('stg_product__usage_daily'), ref('stg_support__tickets'),
            ref('stg_support__nps_responses'),
        ]) }} as customer_observed_through
    from lead_mark
)

select * from final
