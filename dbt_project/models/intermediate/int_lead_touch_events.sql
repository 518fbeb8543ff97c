{#-
  Every touchpoint of a lead with the two dates that make point-in-time features cheap: `known_at`, the first
  instant it was both real and loaded, and `visible_from`, the first weekly as-of date at which it counts.
  Journey steps are ordered by known_at (then event time): the order in which the touches could be seen.
  For promptly loaded data that is event order, and a late load can only append to a lead's path, never
  rewrite the steps an earlier as-of date already showed.
-#}
with touchpoints as (
    select * from {{ ref('int_touchpoints') }}
),

page_topics as (
    select * from {{ source('content', 'page_topics') }}
),

described as (
    select
        touchpoints.*,
        {{ known_from('touchpoints.event_at', 'touchpoints._loaded_at') }} as known_at,
        -- The step a journey path shows: the channel of a marketing touch, the page type of a page view,
        -- the activity otherwise. Emails we sent are our action, not the lead's, and are not steps.
        case
            when touch_type = 'marketing_touch' then coalesce(channel, 'unknown_channel')
            when touch_type = 'page_view' then page_type || '_page'
            when touch_type = 'email_sent' then null
            else touch_type
        end as journey_step,
        page_topics.topic_id
    from touchpoints
    left join page_topics on touchpoints.url = page_topics.url
),

ordered as (
    select
        *,
        {{ first_as_of_at_or_after('known_at') }} as visible_from,
        case when journey_step is not null then
            row_number() over (
                partition by lead_id, journey_step is not null order by known_at, event_at, touchpoint_id)
        end as step_number,
        -- Previous page types on the site, in the same order, for the page-to-page transitions.
        case when touch_type = 'page_view' then
            lag(page_type, 1) over (partition by lead_id, touch_type = 'page_view' order by known_at, event_at, touchpoint_id)
        end as previous_page_type,
        case when touch_type = 'page_view' then
            lag(page_type, 2) over (partition by lead_id, touch_type = 'page_view' order by known_at, event_at, touchpoint_id)
        end as page_type_two_back
    from described
)

select * from ordered
