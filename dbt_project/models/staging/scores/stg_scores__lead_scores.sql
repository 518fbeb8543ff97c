{#- scores.lead_scores as written by the scoring job;
    its columns are declared once, in models/outputs/_outputs__sources.yml. -#}
select * from {{ source('scores', 'lead_scores') }}
