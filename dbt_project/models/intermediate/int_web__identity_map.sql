{#-
  Identity stitching: which lead an anonymous visitor is, and from when we could know it.
  `identity_known_at` is the earliest moment an identify call had both happened and been loaded;
  anonymous history is attributed to the lead only from then on.
-#}
with identifies as (
    select * from {{ ref('stg_web__identifies') }}
),

ranked as (
    select
        anonymous_id,
        lead_id,
        identified_at,
        {{ known_from('identified_at', '_loaded_at') }} as known_at,
        row_number() over (
            partition by anonymous_id
            order by {{ known_from('identified_at', '_loaded_at') }}, identify_id
        ) as link_rank
    from identifies
),

final as (
    select
        anonymous_id,
        lead_id,
        identified_at,
        known_at as identity_known_at
    from ranked
    where link_rank = 1
)

select * from final
