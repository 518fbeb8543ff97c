{#- The contract in force as known at each spine row: the latest started and loaded term (ties: latest load, id),
    and tenure from the first known contract start. -#}
with spine as (
    select * from {{ ref('int_customer_spine') }}
),

contracts as (
    select * from {{ ref('stg_crm__contracts') }}
),

ranked as (
    select
        spine.account_id,
        spine.as_of_date,
        spine.as_of_at,
        contracts.contract_type,
        contracts.annual_value,
        contracts.renewal_date,
        min(contracts.started_at) over (partition by spine.account_id, spine.as_of_date) as first_started_at,
        row_number() over (
            partition by spine.account_id, spine.as_of_date
            order by contracts.started_at desc, contracts._loaded_at desc, contracts.contract_id desc
        ) as recency_rank
    from spine
    inner join contracts
        on
            spine.account_id = contracts.account_id
            and {{ visible_at('contracts.started_at', 'contracts._loaded_at', 'spine.as_of_at') }}
),

final as (
    select
        account_id,
        as_of_date,
        contract_type,
        annual_value as annual_contract_value,
        cast({{ dbt.datediff('as_of_at', 'cast(renewal_date as timestamp)', 'day') }} as {{ dbt.type_int() }})
            as days_to_renewal,
        cast({{ dbt.datediff('first_started_at', 'as_of_at', 'day') }} as {{ dbt.type_int() }}) as tenure_days
    from ranked
    where recency_rank = 1
)

select * from final
