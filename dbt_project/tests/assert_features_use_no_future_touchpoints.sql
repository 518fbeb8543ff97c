{#-
  No feature row counts a touchpoint that had not both happened and been loaded by its as-of time.
  Recomputes the total independently of the macros the models use and compares it row by row.
-#}
with features as (
    select
        lead_id,
        as_of_date,
        as_of_at,
        touchpoints_total,
        last_touch_at
    from {{ ref('fct_lead_features') }}
),

touchpoints as (
    select
        lead_id,
        event_at,
        _loaded_at
    from {{ ref('int_touchpoints') }}
),

recomputed as (
    select
        features.lead_id,
        features.as_of_date,
        count(touchpoints.lead_id) as visible_touchpoints,
        max(touchpoints.event_at) as visible_last_touch_at
    from features
    left join touchpoints
        on
            features.lead_id = touchpoints.lead_id
            and features.as_of_at >= touchpoints.event_at
            and features.as_of_at >= touchpoints._loaded_at
    group by features.lead_id, features.as_of_date
)

select
    features.*,
    recomputed.visible_touchpoints,
    recomputed.visible_last_touch_at
from features
inner join recomputed
    on features.lead_id = recomputed.lead_id and features.as_of_date = recomputed.as_of_date
where
    features.touchpoints_total <> recomputed.visible_touchpoints
    or features.last_touch_at > features.as_of_at
    or coalesce(features.last_touch_at, features.as_of_at)
    <> coalesce(recomputed.visible_last_touch_at, features.as_of_at)
