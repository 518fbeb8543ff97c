{#-
  The running-sum engine behind int_lead_engagement_asof (see that model for the idea): what the columns are
  (lead_engagement_spec), the CTEs they are read from (lead_engagement_sources) and their running figures per
  spine row (lead_engagement_running).
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

{#- The CTEs lead_engagement_running reads, written once per model: the spine, the touches with their window exit
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
    where as_of_date = cast({{ scorehouse.shift_timestamp('day', -7, since) }} as date)
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
    -- A carried lead needs only the touches that change a sum from `since` on: new ones, or older ones leaving a
    -- window at an as-of date built now. A touch leaves a window of d days at the first as-of date at or after
    -- event_at + d, which lies in [since, last] exactly when event_at is in (since - 7 - d days, last - d days];
    -- d is each window's length, and 37 for the end of the trend's previous 30 days (as_of - 37d, as_of - 7d].
    -- One new week reads four weeks of older touches this way, not the fourteen of the longest window.
    select touches.*, true as is_carried
    from {{ ref('int_lead_touch_events') }} as touches
    where touches.visible_from <= {{ last_as_of }}
        and (
            touches.visible_from >= {{ since }}
            {%- for days in [7, 30, 37, 90] %}
            or (touches.event_at > {{ scorehouse.shift_timestamp('day', -7 - days, since) }}
                and touches.event_at <= {{ scorehouse.shift_timestamp('day', -days, last_as_of) }})
            {%- endfor %}
        )
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

{#- Every running column of the model, per spine row; reads the CTEs of lead_engagement_sources().

    Each kind of change (a touch becoming visible, leaving a window, a session starting, a colleague arriving,
    the state carried from the last week built, ...) is grouped on its own, holding only the columns it moves,
    by lead and week. A change dated before the lead's first spine row moves every row of it, so it is dated at
    that row; one dated after the last as-of date built moves none. Every change then sits on a spine row: the
    spine joined to every kind's weekly changes (engagement_weeks; DuckDB and Spark spell it differently) gives
    each row its change per column, and one running sum, min or max per column over the lead's weeks gives the
    figures. (On DuckDB, a union of every kind of change, each
    row carrying every column, mostly zeros, grouped by lead and week, took 25 s and 7.3 GB at 100,000 leads
    against 17 s and 5.0 GB: grouping 14M rows of 27 columns was the largest single cost.) -#}
{% macro lead_engagement_running(since, last_as_of) -%}
{%- set last_as_of = engagement_last_as_of(last_as_of) -%}
{%- set spec = lead_engagement_spec() -%}
{%- set windowed_counts = spec['windowed_counts'] -%}
{%- set all_additive = spec['all_additive'] -%}
{%- set running_min = spec['all_running_min'] -%}
{%- set running_max = spec['all_running_max'] -%}
{#- A kind of change: its source, the week it lands on, the rows that count (`condition`, default all), and per
    output column the SQL of its change (`sums`: added; `mins` / `maxs`: running extremes). -#}
{%- set kinds = [] -%}

{#- A touch enters every window of its kind the week it becomes visible, and leaves a window of d days the first
    as-of date outside it, or that same week when it was loaded too late to be inside (entering and leaving at
    once: it never counts there). -#}
{%- set entering = {} -%}
{%- for name, condition, windows in windowed_counts -%}{%- do entering.update({'entered_' ~ name: name}) -%}{%- endfor -%}
{%- for column in all_additive -%}{%- if column in ['touchpoints_total', 'journey_steps_total', 'page_views_total',
    'content_downloads_total', 'decay_mass'] or column.startswith('transitions_') or column.startswith('topic_') -%}
{%- do entering.update({column: column}) -%}{%- endif -%}{%- endfor -%}
{%- set extremes_min = {} -%}{%- for column in running_min -%}{%- do extremes_min.update({column: column}) -%}{%- endfor -%}
{%- set extremes_max = {} -%}{%- for column in running_max -%}{%- do extremes_max.update({column: column}) -%}{%- endfor -%}
{%- do kinds.append({'name': 'visible', 'source': 'weekly', 'week': 'visible_from',
    'sums': entering, 'mins': extremes_min, 'maxs': extremes_max}) -%}
{%- for days in [7, 30, 90] -%}
{%- set leaving = {} -%}
{%- for name, condition, windows in windowed_counts -%}{%- if days in windows -%}
{%- do leaving.update({name ~ '_' ~ days ~ 'd': '-' ~ name}) -%}{%- endif -%}{%- endfor -%}
{%- do kinds.append({'name': 'leaves_' ~ days ~ 'd', 'source': 'weekly',
    'week': 'greatest(leaves_' ~ days ~ 'd_at, visible_from)', 'sums': leaving}) -%}
{%- endfor -%}
{%- do kinds.append({'name': 'enters_prev_30d', 'source': 'weekly', 'week': 'enters_prev_30d_at',
    'condition': 'leaves_prev_30d_at > enters_prev_30d_at', 'sums': {'engaged_touches_prev_30d': 'engaged_touches'}}) -%}
{%- do kinds.append({'name': 'leaves_prev_30d', 'source': 'weekly', 'week': 'leaves_prev_30d_at',
    'condition': 'leaves_prev_30d_at > enters_prev_30d_at', 'sums': {'engaged_touches_prev_30d': '-engaged_touches'}}) -%}
{#- Sessions: counted once, bounces and length as a session's views arrive; in a window while one view is. -#}
{%- do kinds.append({'name': 'session_visible', 'source': 'session_windows', 'week': 'visible_from',
    'sums': {'sessions_total': 'case when views_before = 0 then 1 else 0 end', 'bounce_sessions': 'bounce_change',
             'session_seconds': 'seconds_change'}}) -%}
{%- for days in [7, 30, 90] -%}
{%- set in_window = 'leaves_' ~ days ~ 'd_at > adds_' ~ days ~ 'd_from' -%}
{%- do kinds.append({'name': 'session_adds_' ~ days ~ 'd', 'source': 'session_windows', 'week': 'adds_' ~ days ~ 'd_from',
    'condition': in_window, 'sums': {'web_sessions_' ~ days ~ 'd': '1'}}) -%}
{%- do kinds.append({'name': 'session_leaves_' ~ days ~ 'd', 'source': 'session_windows', 'week': 'leaves_' ~ days ~ 'd_at',
    'condition': in_window, 'sums': {'web_sessions_' ~ days ~ 'd': '-1'}}) -%}
{%- endfor -%}
{%- do kinds.append({'name': 'channels', 'source': 'channel_firsts', 'week': 'visible_from', 'sums': {'channels_seen': '1'}}) -%}
{%- do kinds.append({'name': 'colleagues', 'source': 'colleague_arrivals', 'week': 'visible_from',
    'sums': {'colleagues_known': 'colleagues'}}) -%}

{#- Incremental runs: a carried lead's state replaces its changes before `since`, so a change counts only if it
    falls from `since` on or belongs to a lead new since then (sources carry is_carried). -#}
{%- set kept = '({week} >= ' ~ since ~ ' or not is_carried)' if since else 'true' -%}
{%- for kind in kinds -%}
{%- set conditions = [kind['condition']] if 'condition' in kind else [] -%}
{%- if since -%}{%- do conditions.append(kept | replace('{week}', kind['week'])) -%}{%- endif -%}
{%- do kind.update({'where': conditions | join(' and ') or 'true'}) -%}
{%- endfor -%}
{%- if since -%}
{#- ... that state: the running figures at the last week built, for the leads still on the spine -#}
{%- set carried_sums = {} -%}{%- for column in all_additive -%}{%- do carried_sums.update({column: column}) -%}{%- endfor -%}
{%- do kinds.append({'name': 'carried', 'source': 'carried', 'week': 'as_of_date',
    'where': 'changes.lead_id in (select lead_id from lead_scope)',
    'sums': carried_sums, 'mins': extremes_min, 'maxs': extremes_max}) -%}
{%- endif -%}
{#- Per output column, the kinds that move it. -#}
{%- set moved_by = {} -%}
{%- for kind in kinds -%}{%- for part in ['sums', 'mins', 'maxs'] -%}{%- for column in kind.get(part, {}) -%}
{%- do moved_by.setdefault(column, []).append('change_' ~ kind['name'] ~ '.' ~ column) -%}
{%- endfor -%}{%- endfor -%}{%- endfor -%}
{%- for name, condition, windows in windowed_counts -%}{%- for days in windows -%}
{%- do moved_by.setdefault(name ~ '_' ~ days ~ 'd', []).append('change_visible.entered_' ~ name) -%}
{%- endfor -%}{%- endfor %}

with spine_start as (
    select lead_id, min(as_of_date) as first_as_of_date from spine group by lead_id
),
{%- for kind in kinds %}

change_{{ kind['name'] }} as (
    select
        changes.lead_id,
        greatest({{ kind['week'] }}, spine_start.first_as_of_date) as week,
        {#- sums as doubles (8 bytes, exact for counts below 2^53): DuckDB keeps sums of integers as 128-bit -#}
        {%- set selected = [] -%}
        {%- for column, expression in kind['sums'].items() -%}{%- do selected.append('sum(cast(' ~ expression ~ ' as double)) as ' ~ column) -%}{%- endfor -%}
        {%- for column, expression in kind.get('mins', {}).items() -%}{%- do selected.append('min(' ~ expression ~ ') as ' ~ column) -%}{%- endfor -%}
        {%- for column, expression in kind.get('maxs', {}).items() -%}{%- do selected.append('max(' ~ expression ~ ') as ' ~ column) -%}{%- endfor %}
        {{ selected | join(',\n        ') }}
    from {{ kind['source'] }} as changes
    inner join spine_start on changes.lead_id = spine_start.lead_id
    -- changes after the last as-of date built move no running figure it sees
    where {{ kind['week'] }} <= {{ last_as_of }} and {{ kind['where'] }}
    group by changes.lead_id, greatest({{ kind['week'] }}, spine_start.first_as_of_date)
),
{%- endfor %}

-- The journey's last step: the latest one that had become visible, whichever week it lands on.
step_changes as (
    select lead_id, visible_from as week, max(last_step) as last_step
    from weekly_last_step
    where visible_from <= {{ last_as_of }} and {{ kept | replace('{week}', 'visible_from') }} and last_step is not null
    group by lead_id, visible_from
    {%- if since %}
    union all
    select lead_id, as_of_date as week, last_journey_step as last_step
    from carried
    where lead_id in (select lead_id from lead_scope) and last_journey_step is not null
    {%- endif %}
),

change_last_step as (
    select
        changes.lead_id,
        greatest(changes.week, spine_start.first_as_of_date) as week,
        max_by(changes.last_step, changes.week) as last_step
    from step_changes as changes
    inner join spine_start on changes.lead_id = spine_start.lead_id
    group by changes.lead_id, greatest(changes.week, spine_start.first_as_of_date)
),

weeks as (
    {{ scorehouse.engagement_weeks(kinds, moved_by, all_additive, running_min, running_max) }}
)

select
    lead_id,
    as_of_date,
    {%- for column in all_additive %}
    sum({{ column }}) over so_far as {{ column }},
    {%- endfor %}
    {%- for column in running_min %}
    min({{ column }}) over so_far as {{ column }},
    {%- endfor %}
    {%- for column in running_max %}
    max({{ column }}) over so_far as {{ column }},
    {%- endfor %}
    {{ scorehouse.last_value_ignore_nulls('last_step') }} over so_far as last_step
from weeks
window so_far as (partition by lead_id order by as_of_date rows between unbounded preceding and current row)
{%- endmacro %}


{#- Each spine row with its change per column, from every kind's weekly changes (lead_engagement_running's `weeks`).
    DuckDB left-joins the spine to each kind's changes in turn. Spark ran out of execution memory that way at
    100,000 leads (the joins, all on lead and week, share one stage, each holding its side), so there the kinds'
    rows are stacked, each with the columns it moves and nulls for the rest, grouped once by lead and week, and
    joined to the spine once: a sum, min or max over the stack is what the joined kinds' sum, least or greatest
    gives (both skip nulls). -#}
{% macro engagement_weeks(kinds, moved_by, all_additive, running_min, running_max) -%}
  {{- adapter.dispatch('engagement_weeks', 'scorehouse')(kinds, moved_by, all_additive, running_min, running_max) -}}
{%- endmacro %}

{% macro default__engagement_weeks(kinds, moved_by, all_additive, running_min, running_max) -%}
    select
        spine.lead_id,
        spine.as_of_date,
        {%- for column in all_additive %}
        {%- set terms = [] -%}{%- for term in moved_by[column] -%}{%- do terms.append('coalesce(' ~ term ~ ', 0)') -%}{%- endfor %}
        {{ terms | join(' + ') }} as {{ column }},
        {%- endfor %}
        {%- for column in running_min %}
        {% if moved_by[column] | length > 1 %}least({{ moved_by[column] | join(', ') }}){% else %}{{ moved_by[column][0] }}{% endif %} as {{ column }},
        {%- endfor %}
        {%- for column in running_max %}
        {% if moved_by[column] | length > 1 %}greatest({{ moved_by[column] | join(', ') }}){% else %}{{ moved_by[column][0] }}{% endif %} as {{ column }},
        {%- endfor %}
        change_last_step.last_step
    from spine
    {%- for kind in kinds + [{'name': 'last_step'}] %}
    left join change_{{ kind['name'] }}
        on spine.lead_id = change_{{ kind['name'] }}.lead_id and spine.as_of_date = change_{{ kind['name'] }}.week
    {%- endfor %}
{%- endmacro %}

{% macro spark__engagement_weeks(kinds, moved_by, all_additive, running_min, running_max) -%}
    select
        spine.lead_id,
        spine.as_of_date,
        {%- for column in all_additive %}
        coalesce(changes.{{ column }}, 0) as {{ column }},
        {%- endfor %}
        {%- for column in running_min + running_max %}
        changes.{{ column }},
        {%- endfor %}
        changes.last_step
    from spine
    left join (
        select
            lead_id,
            week,
            {%- for column in all_additive %}
            sum({{ column }}) as {{ column }},
            {%- endfor %}
            {%- for column in running_min %}
            min({{ column }}) as {{ column }},
            {%- endfor %}
            {%- for column in running_max %}
            max({{ column }}) as {{ column }},
            {%- endfor %}
            max(last_step) as last_step
        from (
            {%- for kind in kinds + [{'name': 'last_step'}] %}
            {%- set prefix = 'change_' ~ kind['name'] ~ '.' %}
            select
                lead_id,
                week,
                {%- for column in all_additive + running_min + running_max %}
                {%- set own = [] -%}
                {%- for term in moved_by[column] if term.startswith(prefix) -%}{%- do own.append(term) -%}{%- endfor %}
                {{ own | join(' + ') if own else 'null' }} as {{ column }},
                {%- endfor %}
                {{ 'change_last_step.last_step' if kind['name'] == 'last_step' else 'null' }} as last_step
            from change_{{ kind['name'] }}
            {%- if not loop.last %}
            union all
            {%- endif %}
            {%- endfor %}
        ) as stacked
        group by lead_id, week
    ) as changes
        on spine.lead_id = changes.lead_id and spine.as_of_date = changes.week
{%- endmacro %}
