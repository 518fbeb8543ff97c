{#- content.page_topics as written by `scorehouse topics`;
    its columns are declared once, in models/outputs/_outputs__sources.yml. -#}
select * from {{ source('content', 'page_topics') }}
