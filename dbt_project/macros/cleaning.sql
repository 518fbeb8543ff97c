{#- Hand-typed CRM values arrive as 'Paid Search', 'PAID SEARCH ', 'paid_search': one spelling downstream. -#}
{% macro normalize_label(column) -%}
    nullif(replace(replace(lower(trim({{ column }})), ' ', '_'), '-', '_'), '')
{%- endmacro %}

{#- Seniority tier from a free-text job title; order matters (a 'VP' who is also 'manager' is a VP). -#}
{% macro seniority_from_title(title) -%}
    case
        when {{ title }} is null or trim({{ title }}) = '' then 'unknown'
        when lower({{ title }}) like '%chief%' or lower({{ title }}) like '%founder%'
            or lower(trim({{ title }})) in ('ceo', 'cto', 'cfo', 'coo', 'cmo', 'cio') or lower({{ title }}) like '%president%'
                and lower({{ title }}) not like '%vice president%'
            then 'c_level'
        when lower({{ title }}) like 'vp %' or lower({{ title }}) like '%vice president%' or lower({{ title }}) like 'head of%'
            then 'vp'
        when lower({{ title }}) like '%director%' then 'director'
        when lower({{ title }}) like '%manager%' or lower({{ title }}) like '%team lead%' then 'manager'
        else 'individual'
    end
{%- endmacro %}

{#- Page type from a URL path; new pages fall into the nearest bucket or 'other'. -#}
{% macro page_type_from_url(url) -%}
    case
        when lower({{ url }}) like '%/pricing%' then 'pricing'
        when lower({{ url }}) like '%/demo%' then 'demo'
        when lower({{ url }}) like '%/free-trial%' or lower({{ url }}) like '%/trial%' then 'free_trial'
        when lower({{ url }}) like '%/docs/%' or lower({{ url }}) like '%/resources/%' then 'docs'
        when lower({{ url }}) like '%/webinar%' then 'webinar'
        when lower({{ url }}) like '%/blog/%' then 'blog'
        else 'other'
    end
{%- endmacro %}

{#- Employee-count bands used across marts and reports. -#}
{% macro employee_band(employee_count) -%}
    case
        when {{ employee_count }} is null then null
        when {{ employee_count }} < 50 then '1-49'
        when {{ employee_count }} < 200 then '50-199'
        when {{ employee_count }} < 1000 then '200-999'
        when {{ employee_count }} < 5000 then '1000-4999'
        else '5000+'
    end
{%- endmacro %}

{#- Keep the first-loaded copy of each key: re-exports add duplicates, and the first load is when we knew it.
    In an incremental staging table only rows loaded after the table's latest are read, and keys it already
    holds are skipped (their first copy is in it), which is what a full rebuild would keep. -#}
{% macro first_loaded(relation, key, tiebreak) -%}
    {%- set loaded_after = incremental_loaded_after() %}
    select * from (
        select
            {{ relation }}.*,
            row_number() over (partition by {{ key }} order by _loaded_at, {{ tiebreak }}) as _copy_rank
        from {{ relation }}
        {%- if loaded_after %}
        where _loaded_at > {{ loaded_after }}
        {%- endif %}
    ) ranked
    where _copy_rank = 1
    {%- if loaded_after %}
        and not exists (select 1 from {{ this }} as staged where staged.{{ key }} = ranked.{{ key }})
    {%- endif %}
{%- endmacro %}

{#- Free-mail domains: a lead on one of these tells us nothing about its company. -#}
{% macro is_personal_email_domain(domain) -%}
    ({{ domain }} in ('gmail.com', 'yahoo.com', 'outlook.com', 'hotmail.com', 'icloud.com', 'aol.com'))
{%- endmacro %}
