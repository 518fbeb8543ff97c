with checked as (
    {{ checked_source('crm_contract_events') }}
),

renamed as (
    select
        cast(contract_event_id as {{ dbt.type_string() }}) as contract_event_id,
        cast(account_id as {{ dbt.type_string() }}) as account_id,
        cast(contract_id as {{ dbt.type_string() }}) as contract_id,
        {{ normalize_label('event_type') }} as event_type,
        nullif(trim(cancellation_reason), '') as cancellation_reason,
        cast(event_at as timestamp) as event_at,
        cast(_loaded_at as timestamp) as _loaded_at
    from checked
    where _reject_reason is null
),

deduplicated as (
    {{ first_loaded('renamed', 'contract_event_id', 'event_at') }}
),

final as (
    select
        contract_event_id,
        account_id,
        contract_id,
        event_type,
        cancellation_reason,
        event_at,
        _loaded_at
    from deduplicated
)

select * from final
