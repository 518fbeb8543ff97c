with checked as (
    {{ checked_source('support_tickets') }}
),

renamed as (
    select
        cast(ticket_id as {{ dbt.type_string() }}) as ticket_id,
        cast(account_id as {{ dbt.type_string() }}) as account_id,
        {{ normalize_label('priority') }} as priority,
        {{ normalize_label('category') }} as category,
        cast(opened_at as timestamp) as opened_at,
        cast(_loaded_at as timestamp) as _loaded_at
    from checked
    where _reject_reason is null
),

deduplicated as (
    {{ first_loaded('renamed', 'ticket_id', 'opened_at') }}
),

final as (
    select
        ticket_id,
        account_id,
        priority,
        category,
        opened_at,
        _loaded_at
    from deduplicated
)

select * from final
