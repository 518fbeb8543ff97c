{#-
  The data's high-water mark: the latest time any lead-facing source had loaded.
  Labels are emitted only for windows that end by it; the spine stops at it.
  A fixed value can be passed as the `observed_through` var.
-#}
with loads as (
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
        cast('{{ var("observed_through") }}' as timestamp)
        {% else %}
        max(loaded_through)
        {% endif %} as observed_through
    from loads
)

select * from final
