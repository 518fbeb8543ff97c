{#-
  The running-sum engine behind int_lead_engagement_asof (see that model for the idea), one family of
  columns at a time: 'windows', 'totals', 'sessions' or 'extremes'. Returns one row per spine row.
-#}
{% macro lead_engagement_spec() -%}
{%- set windowed_counts = [
    ('emails_opened', "touch_type = 'email_opened'", [7, 30, 90]),
    ('emails_clicked', "touch_type = 'email_clicked'", [7, 30, 90]),
    ('calls', "touch_type = 'call'", [30, 90]),
    ('meetings', "touch_type = 'meeting'", [30, 90]),
    ('page_views', "touch_type = 'page_view'", [30, 90]),
    ('pricing_page_views', "touch_type = 'page_view' and page_type = 'pricing'", [7, 30, 90]),
    ('demo_page_views', "touch_type = 'page_view' and page_type = 'demo'", [30, 90]),
    ('free_trial_page_views', "touch_type = 'page_view' and page_type = 'free_trial'", [30, 90]),
    ('form_fills', "touch_type = 'form_fill'", [30, 90]),
    ('marketing_touches', "touch_type = 'marketing_touch'", [30, 90]),
    ('engaged_touches', "journey_step is not null", [7]),
] -%}
{#- Running totals since the lead's first touch. -#}
{%- set totals = [
    ('touchpoints_total', "true"),
    ('journey_steps_total', "journey_step is not null"),
    ('page_views_total', "touch_type = 'page_view'"),
    ('content_downloads_total', "touch_type = 'form_fill' and form_name = 'ebook_download'"),
] -%}
{#- Page-to-page transitions on the site, in the order they could be seen. -#}
{%- set transitions = [
    ('blog', 'pricing'), ('docs', 'pricing'), ('pricing', 'demo'), ('demo', 'pricing'),
    ('pricing', 'free_trial'), ('webinar', 'demo'),
] -%}
{%- set three_step_transitions = [('blog', 'pricing', 'demo'), ('pricing', 'demo', 'free_trial')] -%}
{#- Decay weights per kind of touch (strong buying signals weigh more) and the half-life in days. -#}
{%- set decay_weight = "case
        when touch_type = 'page_view' and page_type in ('pricing', 'demo', 'free_trial') then 3.0
        when touch_type = 'page_view' then 1.0
        when touch_type = 'form_fill' then 5.0
        when touch_type = 'meeting' then 4.0
        when touch_type = 'call' then 2.0
        when touch_type = 'email_clicked' then 1.0
        when touch_type = 'email_opened' then 0.5
        when touch_type = 'marketing_touch' then 0.5
        else 0.0 end" -%}
{%- set half_life_microseconds = var('engagement_half_life_days') | float * 86400 * 1000000 -%}
{#- Reference instant for the decay: sum w * 2^((event - ref)/h) once, scale by 2^((ref - as_of)/h) later.
    Doubles hold this exactly enough for events within ~1000 half-lives of the reference. -#}
{%- set decay_reference = "cast('2020-01-01' as timestamp)" -%}
{%- set topic_count = var('content_topic_count') | int -%}

{#- Every additive column the delta rows carry. -#}
{%- set all_additive = [] -%}
{%- for name, condition, windows in windowed_counts -%}{%- for days in windows -%}{%- do all_additive.append(name ~ '_' ~ days ~ 'd') -%}{%- endfor -%}{%- endfor -%}
{%- for name, condition in totals -%}{%- do all_additive.append(name) -%}{%- endfor -%}
{%- for a, b in transitions -%}{%- do all_additive.append('transitions_' ~ a ~ '_to_' ~ b) -%}{%- endfor -%}
{%- for a, b, c in three_step_transitions -%}{%- do all_additive.append('transitions_' ~ a ~ '_to_' ~ b ~ '_to_' ~ c) -%}{%- endfor -%}
{%- for k in range(topic_count) -%}{%- do all_additive.append('topic_' ~ k ~ '_views') -%}{%- endfor -%}
{%- for column in ['engaged_touches_prev_30d', 'decay_mass', 'web_sessions_7d', 'web_sessions_30d', 'web_sessions_90d',
                   'sessions_total', 'bounce_sessions', 'session_seconds', 'channels_seen', 'colleagues_known'] -%}
{%- do all_additive.append(column) -%}
{%- endfor -%}
{#- Columns that are running minimums / maximums / last values rather than sums. -#}
{%- set all_running_min = ['first_touch_at', 'first_step_at'] -%}
{%- set all_running_max = ['last_touch_at', 'last_step_at', 'last_trial_activity_at', 'decision_maker_flag',
                       'budget_confirmed_flag', 'no_budget_flag'] -%}



{%- do return({'windowed_counts': windowed_counts, 'totals': totals, 'decay_weight': decay_weight, 'all_additive': all_additive, 'all_running_min': all_running_min, 'all_running_max': all_running_max, 'transitions': transitions, 'three_step_transitions': three_step_transitions, 'decay_reference': decay_reference, 'half_life_microseconds': half_life_microseconds, 'topic_count': topic_count}) -%}
{%- endmacro %}

{#- `from` and `where` for all touches of one kind (every session, or every channel: `part`) visible by the
    last as-of date; on incremental runs only those of the parts that have a touch in touch_events, i.e. whose
    figures change from `since` on, with the lead's is_carried from lead_scope. -#}
{% macro touches_of_changed(since, last_as_of, touch_type, part) -%}
    from {{ ref('int_lead_touch_events') }} as touches
    {%- if since %}
    inner join lead_scope on touches.lead_id = lead_scope.lead_id
    {%- endif %}
    where touches.touch_type = '{{ touch_type }}' and touches.{{ part }} is not null
        and touches.visible_from <= {{ last_as_of }}
    {%- if since %}
        and (touches.lead_id, touches.{{ part }}) in (
            select lead_id, {{ part }} from touch_events where touch_type = '{{ touch_type }}' and {{ part }} is not null)
    {%- endif %}
{%- endmacro %}

{#- The last as-of date a run builds: the literal an incremental run passes, else (full builds) the
    spine_end CTE of lead_engagement_sources. -#}
{% macro engagement_last_as_of(last_as_of) -%}
    {%- do return(last_as_of or '(select last_as_of_date from spine_end)') -%}
{%- endmacro %}

{#- The CTEs every family reads, written once per model: the spine, the touches with their window exit
    dates, what became visible per lead and week, sessions, channels and colleagues. -#}
{% macro lead_engagement_sources(since, last_as_of) -%}
{%- set last_as_of = engagement_last_as_of(last_as_of) -%}
{%- set spec = lead_engagement_spec() -%}
{%- set windowed_counts = spec['windowed_counts'] -%}
{%- set totals = spec['totals'] -%}
{%- set transitions = spec['transitions'] -%}
{%- set three_step_transitions = spec['three_step_transitions'] -%}
{%- set decay_weight = spec['decay_weight'] -%}
{%- set half_life_microseconds = spec['half_life_microseconds'] -%}
{%- set decay_reference = spec['decay_reference'] -%}
{%- set topic_count = spec['topic_count'] -%}
spine as (
    select * from {{ ref('int_lead_spine') }}
    where {{ as_of_dates_from(since) }}
),
{%- if since %}

-- Incremental runs start from each lead's running state at the last week already built, and need only
-- the touches that change a sum from `since` on (new, or leaving a window); leads new since then need all.
carried as (
    select * from {{ this }}
    where as_of_date = cast({{ dbt.dateadd('day', -7, since) }} as date)
),

lead_scope as (
    select distinct spine.lead_id, carried.lead_id is not null as is_carried
    from spine
    left join carried on spine.lead_id = carried.lead_id
),
{%- endif %}

-- The last as-of date built: touches visible only after it change nothing yet (a build in time steps sets
-- the high-water mark step by step, so each step reads only what its weeks need).
spine_end as (
    select max(as_of_date) as last_as_of_date from spine
),

{#- The CTEs below read int_lead_touch_events with their own filters rather than sharing one copy of the
    scoped touches: the filters reach the table scan, and no copy of every lead's whole history is held. -#}
scoped_touches as (
    {%- if since %}
    -- A carried lead needs only the touches that change a sum from `since` on: new ones, or ones leaving a
    -- window (98 days: the longest window, 90, plus the week to the next as-of date).
    select touches.*, true as is_carried
    from {{ ref('int_lead_touch_events') }} as touches
    where touches.visible_from <= {{ last_as_of }}
        and (touches.visible_from >= {{ since }} or touches.event_at > {{ dbt.dateadd('day', -98, since) }})
        and touches.lead_id in (select lead_id from lead_scope where is_carried)
    union all
    -- A lead new since then needs all of its touches.
    select touches.*, false as is_carried
    from {{ ref('int_lead_touch_events') }} as touches
    where touches.visible_from <= {{ last_as_of }}
        and touches.lead_id in (select lead_id from lead_scope where not is_carried)
    {%- else %}
    select * from {{ ref('int_lead_touch_events') }} as touches
    where touches.visible_from <= {{ last_as_of }}
    {%- endif %}
),

touch_events as (
    select
        *,
        {%- for days in [7, 30, 90] %}
        {{ first_as_of_outside_window('event_at', days) }} as leaves_{{ days }}d_at,
        {%- endfor %}
        -- the "previous 30 days" of the trend: the window (as_of - 37d, as_of - 7d]
        greatest(visible_from, {{ first_as_of_outside_window('event_at', 7) }}) as enters_prev_30d_at,
        {{ first_as_of_outside_window('event_at', 37) }} as leaves_prev_30d_at
    from scoped_touches
),

-- What became visible per lead and week, grouped by the weeks the touches leave each window.
weekly as (
    -- counts as doubles, like the running sums they feed
    select
        lead_id,
        {%- if since %}
        is_carried,
        {%- endif %}
        visible_from,
        leaves_7d_at,
        leaves_30d_at,
        leaves_90d_at,
        enters_prev_30d_at,
        leaves_prev_30d_at,
        {%- for name, condition, windows in windowed_counts %}
        sum(cast(case when {{ condition }} then 1 else 0 end as double)) as {{ name }},
        {%- endfor %}
        {%- for name, condition in totals %}
        sum(cast(case when {{ condition }} then 1 else 0 end as double)) as {{ name }},
        {%- endfor %}
        {%- for a, b in transitions %}
        sum(cast(case when previous_page_type = '{{ a }}' and page_type = '{{ b }}' then 1 else 0 end as double))
            as transitions_{{ a }}_to_{{ b }},
        {%- endfor %}
        {%- for a, b, c in three_step_transitions %}
        sum(cast(case when page_type_two_back = '{{ a }}' and previous_page_type = '{{ b }}' and page_type = '{{ c }}'
            then 1 else 0 end as double)) as transitions_{{ a }}_to_{{ b }}_to_{{ c }},
        {%- endfor %}
        {%- for k in range(topic_count) %}
        sum(cast(case when touch_type = 'page_view' and topic_id = {{ k }} then 1 else 0 end as double)) as topic_{{ k }}_views,
        {%- endfor %}
        sum({{ decay_weight }} * exp(ln(2) * {{ scorehouse.microseconds_between(decay_reference, 'event_at') }}
            / {{ half_life_microseconds }})) as decay_mass,
        min(event_at) as first_touch_at,
        max(event_at) as last_touch_at,
        min(case when journey_step is not null then event_at end) as first_step_at,
        max(case when journey_step is not null then event_at end) as last_step_at,
        max(case when touch_type = 'page_view' and page_type = 'free_trial' then event_at end) as last_trial_activity_at,
        max(case when is_decision_maker_reached then 1 else 0 end) as decision_maker_flag,
        max(case when budget_status = 'confirmed' then 1 else 0 end) as budget_confirmed_flag,
        max(case when budget_status = 'no_budget' then 1 else 0 end) as no_budget_flag,
        max(step_number) as last_step_number
    from touch_events
    group by lead_id, {% if since %}is_carried, {% endif %}visible_from, leaves_7d_at, leaves_30d_at, leaves_90d_at,
        enters_prev_30d_at, leaves_prev_30d_at
),

-- The last journey step that became visible in each week.
weekly_last_step as (
    select
        last_steps.lead_id,
        {%- if since %}
        last_steps.is_carried,
        {%- endif %}
        last_steps.visible_from,
        touch_events.journey_step as last_step
    from (
        select lead_id, {% if since %}is_carried, {% endif %}visible_from, max(last_step_number) as last_step_number
        from weekly
        group by lead_id, {% if since %}is_carried, {% endif %}visible_from
    ) as last_steps
    inner join touch_events
        on touch_events.lead_id = last_steps.lead_id and touch_events.step_number = last_steps.last_step_number
),

-- A web session's views, grouped by the week they became visible, with what earlier weeks had shown.
session_stages as (
    select
        touches.lead_id,
        {%- if since %}
        lead_scope.is_carried,
        {%- endif %}
        touches.session_id,
        touches.visible_from,
        count(*) as views,
        min(touches.event_at) as first_view_at,
        max(touches.event_at) as last_view_at
    -- every stage of the sessions that change a sum from `since` on
    {{ touches_of_changed(since, last_as_of, 'page_view', 'session_id') }}
    group by touches.lead_id, {% if since %}lead_scope.is_carried, {% endif %}touches.session_id, touches.visible_from
),

session_history as (
    select
        *,
        {%- for days in [7, 30, 90] %}
        {{ first_as_of_outside_window('last_view_at', days) }} as leaves_{{ days }}d_at,
        max({{ first_as_of_outside_window('last_view_at', days) }}) over earlier as covered_{{ days }}d_until,
        {%- endfor %}
        coalesce(sum(views) over earlier, 0) as views_before,
        min(first_view_at) over earlier as started_before,
        max(last_view_at) over earlier as ended_before,
        min(first_view_at) over so_far as started_at,
        max(last_view_at) over so_far as ended_at
    from session_stages
    window
        earlier as (partition by lead_id, session_id order by visible_from rows between unbounded preceding and 1 preceding),
        so_far as (partition by lead_id, session_id order by visible_from rows between unbounded preceding and current row)
),

-- A session is in a trailing window while one of its visible views is; each stage adds only the weeks
-- that earlier stages of the same session did not already cover.
session_windows as (
    select
        *,
        {%- for days in [7, 30, 90] %}
        greatest(visible_from, coalesce(covered_{{ days }}d_until, visible_from)) as adds_{{ days }}d_from,
        {%- endfor %}
        case when views_before + views = 1 then 1 else 0 end - case when views_before = 1 then 1 else 0 end
            as bounce_change,
        ({{ scorehouse.microseconds_between('started_at', 'ended_at') }}
            - coalesce({{ scorehouse.microseconds_between('started_before', 'ended_before') }}, 0)) / 1e6 as seconds_change
    from session_history
),

channel_firsts as (
    select touches.lead_id, {% if since %}lead_scope.is_carried, {% endif %}min(touches.visible_from) as visible_from
    -- A channel first seen from `since` on has a touch visible from then on, so it is among touch_events;
    -- the first sightings before `since` of the other channels listed are dropped with the old weeks.
    {{ touches_of_changed(since, last_as_of, 'marketing_touch', 'channel') }}
    group by touches.lead_id, {% if since %}lead_scope.is_carried, {% endif %}touches.channel
),

-- Other leads from the same company domain (free-mail domains excluded), counted once they were known.
lead_domains as (
    select
        lead_id,
        company_domain,
        {{ first_as_of_at_or_after(known_from('created_at', '_loaded_at')) }} as visible_from
    from {{ ref('stg_crm__leads') }}
    where company_domain is not null and not {{ is_personal_email_domain('company_domain') }}
),

colleague_arrivals as (
    select me.lead_id, {% if since %}lead_scope.is_carried, {% endif %}colleague.visible_from, count(*) as colleagues
    from lead_domains as me
    {%- if since %}
    inner join lead_scope on me.lead_id = lead_scope.lead_id
    {%- endif %}
    inner join lead_domains as colleague
        on me.company_domain = colleague.company_domain and me.lead_id <> colleague.lead_id
    group by me.lead_id, {% if since %}lead_scope.is_carried, {% endif %}colleague.visible_from
)
{%- endmacro %}

{#- One family's running sums, per spine row; reads the CTEs of lead_engagement_sources(). -#}
{% macro lead_engagement_family(family, since, last_as_of) -%}
{%- set last_as_of = engagement_last_as_of(last_as_of) -%}
{%- set spec = lead_engagement_spec() -%}
{%- set windowed_counts = spec['windowed_counts'] -%}
{%- set all_additive = spec['all_additive'] -%}
{%- set all_running_min = spec['all_running_min'] -%}
{%- set all_running_max = spec['all_running_max'] -%}
{#- This family's share of the columns: each family is its own group-by and window, so the widest
    intermediate state holds a fraction of the columns (one query over all of them did not fit in 8 GB
    at 100,000 leads). -#}
{%- set families = {
    'windows': [],
    'totals': [],
    'sessions': ['web_sessions_7d', 'web_sessions_30d', 'web_sessions_90d', 'sessions_total', 'bounce_sessions',
                 'session_seconds'],
} -%}
{%- for name, condition, windows in windowed_counts -%}{%- for days in windows -%}{%- do families['windows'].append(name ~ '_' ~ days ~ 'd') -%}{%- endfor -%}{%- endfor -%}
{%- do families['windows'].append('engaged_touches_prev_30d') -%}
{%- for column in all_additive -%}{%- if column not in families['windows'] and column not in families['sessions'] -%}{%- do families['totals'].append(column) -%}{%- endif -%}{%- endfor -%}
{%- set additive = families.get(family, []) -%}
{%- set running_min = all_running_min if family == 'extremes' else [] -%}
{%- set running_max = all_running_max if family == 'extremes' else [] -%}
{%- set extreme_columns = running_min + running_max + (['last_step'] if family == 'extremes' else []) -%}
{#- Incremental runs: a carried lead's state replaces its changes before `since`, so each arm keeps a change
    only if it falls from `since` on or belongs to a lead new since then (sources carry is_carried). -#}
{%- set kept = {} -%}
{%- for week in ['visible_from', 'leaves_7d_at', 'leaves_30d_at', 'leaves_90d_at', 'enters_prev_30d_at',
                 'leaves_prev_30d_at', 'adds_7d_from', 'adds_30d_from', 'adds_90d_from'] -%}
{%- do kept.update({week: ('(' ~ week ~ ' >= ' ~ since ~ ' or not is_carried)') if since else 'true'}) -%}
{%- endfor %}

with fresh_deltas as (
    {#- entering: every count and total, and the running extremes -#}
    {%- set entering = {} -%}
    {%- for name, condition, windows in windowed_counts -%}{%- for days in windows -%}
    {#- a touch loaded after its window had passed never enters that window -#}
    {%- do entering.update({name ~ '_' ~ days ~ 'd':
        'case when leaves_' ~ days ~ 'd_at > visible_from then ' ~ name ~ ' else 0 end'}) -%}{%- endfor -%}{%- endfor -%}
    {%- for column in additive -%}{%- if column in ['touchpoints_total', 'journey_steps_total', 'page_views_total',
        'content_downloads_total', 'decay_mass'] or column.startswith('transitions_') or column.startswith('topic_') -%}
    {%- do entering.update({column: column}) -%}{%- endif -%}{%- endfor -%}
    {%- set extremes = {} -%}
    {%- for column in running_min + running_max -%}{%- do extremes.update({column: column}) -%}{%- endfor %}
    -- every spine row, so each as-of date has a place in the running sums
    {{ delta_arm('lead_id', 'as_of_date', additive, extreme_columns) }}
    from spine
    {%- if family in ('windows', 'totals', 'extremes') %}
    union all
    {{ delta_arm('lead_id', 'visible_from', additive, extreme_columns, entering, extremes) }}
    from weekly
    where {{ kept['visible_from'] }}
    {%- endif %}
    {%- if family == 'windows' %}
    {%- for days in [7, 30, 90] %}
    {%- set leaving = {} -%}
    {%- for name, condition, windows in windowed_counts -%}{%- if days in windows -%}
    {%- do leaving.update({name ~ '_' ~ days ~ 'd': '-' ~ name}) -%}{%- endif -%}{%- endfor %}
    union all
    {{ delta_arm('lead_id', 'leaves_' ~ days ~ 'd_at', additive, extreme_columns, leaving) }}
    from weekly
    where leaves_{{ days }}d_at > visible_from and {{ kept['leaves_' ~ days ~ 'd_at'] }}
    {%- endfor %}
    union all
    {{ delta_arm('lead_id', 'enters_prev_30d_at', additive, extreme_columns, {'engaged_touches_prev_30d': 'engaged_touches'}) }}
    from weekly
    where leaves_prev_30d_at > enters_prev_30d_at and {{ kept['enters_prev_30d_at'] }}
    union all
    {{ delta_arm('lead_id', 'leaves_prev_30d_at', additive, extreme_columns, {'engaged_touches_prev_30d': '-engaged_touches'}) }}
    from weekly
    where leaves_prev_30d_at > enters_prev_30d_at and {{ kept['leaves_prev_30d_at'] }}
    {%- endif %}
    {%- if family == 'extremes' %}
    union all
    {{ delta_arm('lead_id', 'visible_from', additive, extreme_columns, {}, {'last_step': 'last_step'}) }}
    from weekly_last_step
    where {{ kept['visible_from'] }}
    {%- endif %}
    {%- if family == 'sessions' %}
    union all
    {{ delta_arm('lead_id', 'visible_from', additive, extreme_columns, {
        'sessions_total': 'case when views_before = 0 then 1 else 0 end',
        'bounce_sessions': 'bounce_change',
        'session_seconds': 'seconds_change'}) }}
    from session_windows
    where {{ kept['visible_from'] }}
    {%- for days in [7, 30, 90] %}
    union all
    {{ delta_arm('lead_id', 'adds_' ~ days ~ 'd_from', additive, extreme_columns, {'web_sessions_' ~ days ~ 'd': '1'}) }}
    from session_windows
    where leaves_{{ days }}d_at > adds_{{ days }}d_from and {{ kept['adds_' ~ days ~ 'd_from'] }}
    union all
    {{ delta_arm('lead_id', 'leaves_' ~ days ~ 'd_at', additive, extreme_columns, {'web_sessions_' ~ days ~ 'd': '-1'}) }}
    from session_windows
    where leaves_{{ days }}d_at > adds_{{ days }}d_from and {{ kept['leaves_' ~ days ~ 'd_at'] }}
    {%- endfor %}
    {%- endif %}
    {%- if family == 'totals' %}
    union all
    {{ delta_arm('lead_id', 'visible_from', additive, extreme_columns, {'channels_seen': '1'}) }}
    from channel_firsts
    where {{ kept['visible_from'] }}
    union all
    {{ delta_arm('lead_id', 'visible_from', additive, extreme_columns, {'colleagues_known': 'colleagues'}) }}
    from colleague_arrivals
    where {{ kept['visible_from'] }}
    {%- endif %}
),

deltas as (
    -- changes after the last as-of date built move no running sum it sees
    select * from fresh_deltas
    where week <= {{ last_as_of }}
    {%- if since %}
    union all
    -- incremental: the carried state, for the leads still on the spine
    {%- set carried_sums = {} -%}
    {%- for column in additive -%}{%- do carried_sums.update({column: column}) -%}{%- endfor -%}
    {%- set carried_extremes = {} -%}
    {%- for column in running_min + running_max -%}{%- do carried_extremes.update({column: column}) -%}{%- endfor -%}
    {%- if family == 'extremes' -%}{%- do carried_extremes.update({'last_step': 'last_journey_step'}) -%}{%- endif %}
    {{ delta_arm('lead_id', 'as_of_date', additive, extreme_columns, carried_sums, carried_extremes) }}
    from carried
    where lead_id in (select lead_id from lead_scope)
    {%- endif %}
),

weeks as (
    select
        lead_id,
        {#- doubles (8 bytes, exact for counts below 2^53) keep the running sums' memory down; summing them
            directly (not integers, whose sums DuckDB keeps as 128-bit) halves this aggregate's time -#}
        {%- for column in additive %}
        sum(cast({{ column }} as double)) as {{ column }},
        {%- endfor %}
        {%- for column in running_min %}
        min({{ column }}) as {{ column }},
        {%- endfor %}
        {%- for column in running_max %}
        max({{ column }}) as {{ column }},
        {%- endfor %}
        {%- if family == 'extremes' %}
        max(last_step) as last_step,
        {%- endif %}
        week
    from deltas
    group by lead_id, week
),

running as (
    select
        lead_id,
        {%- for column in additive %}
        sum({{ column }}) over so_far as {{ column }},
        {%- endfor %}
        {%- for column in running_min %}
        min({{ column }}) over so_far as {{ column }},
        {%- endfor %}
        {%- for column in running_max %}
        max({{ column }}) over so_far as {{ column }},
        {%- endfor %}
        {%- if family == 'extremes' %}
        {{ scorehouse.last_value_ignore_nulls('last_step') }} over so_far as last_step,
        {%- endif %}
        week as as_of_date
    from weeks
    window so_far as (partition by lead_id order by week rows between unbounded preceding and current row)
)

select running.* from running
inner join spine on running.lead_id = spine.lead_id and running.as_of_date = spine.as_of_date
{%- endmacro %}
