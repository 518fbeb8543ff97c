{#- scores.lead_score_history as written by the scoring job;
    its columns are declared once, in models/outputs/_outputs__sources.yml. -#}
select * from {{ source('scores', 'lead_score_history') }}
