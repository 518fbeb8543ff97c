with checked as (
    {{ checked_source('csm_assignments') }}
),

renamed as (
    select
        cast(assignment_id as {{ dbt.type_string() }}) as assignment_id,
        cast(account_id as {{ dbt.type_string() }}) as account_id,
        nullif(trim(cast(csm_id as {{ dbt.type_string() }})), '') as csm_id,
        cast(assigned_at as timestamp) as assigned_at,
        cast(_loaded_at as timestamp) as _loaded_at
    from checked
    where _reject_reason is null
),

deduplicated as (
    {{ first_loaded('renamed', 'assignment_id', 'assigned_at') }}
),

final as (
    select
        assignment_id,
        account_id,
        csm_id,
        assigned_at,
        _loaded_at
    from deduplicated
)

select * from final
