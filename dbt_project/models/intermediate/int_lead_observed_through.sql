{#-
  The lead-facing sources' high-water mark alone: the latest time any of them had loaded (or the
  `observed_through` var). The lead models read it here rather than from int_observed_through, so a lead build
  neither waits for nor pays the customer sources' mark (the product-usage view alone is tens of millions of
  rows).
-#}
with lead_loads as (
    select max(_loaded_at) as loaded_through from {{ ref('stg_crm__leads') }}
    union all
    select max(_loaded_at) from {{ ref('stg_crm__lead_status_changes') }}
    union all
    select max(_loaded_at) from {{ ref('stg_crm__activities') }}
    union all
    select max(_loaded_at) from {{ ref('stg_web__pages') }}
    union all
    select max(_loaded_at) from {{ ref('stg_marketing__touches') }}
),

final as (
    select
        {% if var('observed_through') %}
        cast('{{ var("observed_through") }}' as timestamp) as lead_observed_through
        {% else %}
            (select max(loaded_through) from lead_loads) as lead_observed_through
        {% endif %}
)

select * from final
