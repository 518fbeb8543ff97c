{#-
  Every touchpoint of a lead with the two dates that make point-in-time features cheap: `known_at`, the first
  instant it was both real and loaded, and `visible_from`, the first weekly as-of date at which it counts.
  Journey steps are ordered by known_at (then event time): the order in which the touches could be seen.
  For promptly loaded data that is event order, and a late load can only append to a lead's path, never
  rewrite the steps an earlier as-of date already showed. That is also what lets incremental runs append:
  touches loaded since the previous build come after every touch it saw, so their step numbers continue
  each lead's count and their previous pages are the last pages it saw.
-#}
{{ config(**scorehouse.append_config()) }}
{%- set loaded_after = incremental_loaded_after() %}
with touchpoints as (
    select * from {{ ref('int_touchpoints') }}
    {%- if loaded_after %}
    where _loaded_at > {{ loaded_after }}
    {%- endif %}
),

page_topics as (
    select * from {{ ref('stg_content__page_topics') }}
),

described as (
    select
        touchpoints.*,
        {{ known_from('touchpoints.event_at', 'touchpoints._loaded_at') }} as known_at,
        -- The step a journey path shows: the channel of a marketing touch, the page type of a page view,
        -- the activity otherwise. Emails we sent are our action, not the lead's, and are not steps.
        case
            when touchpoints.touch_type = 'marketing_touch' then coalesce(touchpoints.channel, 'unknown_channel')
            when touchpoints.touch_type = 'page_view' then touchpoints.page_type || '_page'
            when touchpoints.touch_type = 'email_sent' then null
            else touchpoints.touch_type
        end as journey_step,
        page_topics.topic_id
    from touchpoints
    left join page_topics on touchpoints.url = page_topics.url
),

{%- if loaded_after %}

-- What the previous build ended with, for the leads touched since: their step count and last two pages.
steps_before as (
    select lead_id, max(step_number) as steps_before
    from {{ this }}
    where lead_id in (select lead_id from described where journey_step is not null)
    group by lead_id
),

pages_before as (
    select *
    from (
        select
            lead_id, page_type, known_at, event_at, touchpoint_id,
            row_number() over (
                partition by lead_id order by known_at desc, event_at desc, touchpoint_id desc
            ) as pages_back
        from {{ this }}
        where touch_type = 'page_view' and lead_id in (select lead_id from described where touch_type = 'page_view')
    ) as recent
    where pages_back <= 2
),

page_sequence as (
    select lead_id, page_type, known_at, event_at, touchpoint_id, false as is_new from pages_before
    union all
    select lead_id, page_type, known_at, event_at, touchpoint_id, true as is_new from described
    where touch_type = 'page_view'
),

new_page_lags as (
    select *
    from (
        select
            touchpoint_id,
            is_new,
            lag(page_type, 1) over pages_in_order as previous_page_type,
            lag(page_type, 2) over pages_in_order as page_type_two_back
        from page_sequence
        window pages_in_order as (partition by lead_id order by known_at, event_at, touchpoint_id)
    ) as lagged
    where is_new
),

ordered as (
    select
        described.*,
        {{ first_as_of_at_or_after('described.known_at') }} as visible_from,
        case when described.journey_step is not null then
            coalesce(steps_before.steps_before, 0) + row_number() over (
                partition by described.lead_id, described.journey_step is not null
                order by described.known_at, described.event_at, described.touchpoint_id)
        end as step_number,
        new_page_lags.previous_page_type,
        new_page_lags.page_type_two_back
    from described
    left join steps_before on described.lead_id = steps_before.lead_id
    left join new_page_lags
        on described.touch_type = 'page_view' and described.touchpoint_id = new_page_lags.touchpoint_id
)
{%- else %}

-- One ordering serves the step numbers and the page sequence (the same partition and order: one sort of the
-- touches instead of two): a step's number is the count of steps up to it, and a page's previous pages are the
-- last non-null page types before it (page_type is never null on a page view). The steps' frame is written out:
-- Spark cannot define a named window on another.
    ordered as (
        select
            *,
            {{ first_as_of_at_or_after('known_at') }} as visible_from,
            case
                when journey_step is not null then count(journey_step) over (
                    partition by lead_id order by known_at, event_at, touchpoint_id
                    rows between unbounded preceding and current row
                )
            end as step_number,
            case
                when touch_type = 'page_view' then
                    {{ scorehouse.lag_ignore_nulls("case when touch_type = 'page_view' then page_type end", 1) }}
                        over seen_in_order
            end as previous_page_type,
            case
                when touch_type = 'page_view' then
                    {{ scorehouse.lag_ignore_nulls("case when touch_type = 'page_view' then page_type end", 2) }}
                        over seen_in_order
            end as page_type_two_back
        from described
        window seen_in_order as (partition by lead_id order by known_at, event_at, touchpoint_id)
    )
{%- endif %}

select * from ordered
