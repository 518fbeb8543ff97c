{#-
  The lead-facing sources' high-water mark alone: the latest time any of them had loaded (or the
  `observed_through` var). The lead models read it here rather than from int_observed_through, so a lead build
  neither waits for nor pays the customer sources' mark (the product-usage view alone is tens of millions of
  rows).
-#}
with final as (
    select
        {{ high_water_mark([
            ref('stg_crm__leads'), ref('stg_crm__lead_status_changes'), ref('stg_crm__activities'),
            ref('stg_web__pages'), ref('stg_marketing__touches'),
        ]) }} as lead_observed_through
)

select * from final
