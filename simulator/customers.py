"""Customer-side simulation: contracts, product usage, support, NPS and CSM coverage, and churn.

Customers are the accounts that won an opportunity in the lead simulation plus an installed base
that was already customer before the data starts. Each customer has a hidden health h0 (and, for
some, a decline of size `decline` starting at `decline_at`); churn is a hazard process:

    daily hazard = base_rate * exp(-1.3 * health(t)) * contract multiplier * tenure multiplier(t)
                   * CSM multiplier

with contract multipliers monthly 1.8, annual 0.8, multi-year 0.4; tenure multiplier 1.7 in the
first 180 days; CSM multiplier 1.6 for a high-value account (annual value >= 50,000) without a CSM.
A decline shows in usage, tickets and NPS at once but raises the hazard only 30 days later, the way
disengagement precedes a cancellation.
Health drives what the warehouse sees: logins, active users and feature usage fall, tickets rise
and NPS answers drop (detractors) as health falls. The truth table keeps the parameters, so the
exact probability of churning in any window is known (see simulator.ground_truth).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

CONTRACT_TYPES = ("monthly", "annual", "multi_year")
CONTRACT_SHARE = (0.35, 0.50, 0.15)
CONTRACT_MULTIPLIER = (1.8, 0.8, 0.4)
CONTRACT_TERM_DAYS = (None, 365.0, 1095.0)
CONTRACT_LABELS = ("Monthly", "Annual", "Multi-Year")
HIGH_VALUE = 50_000.0
BASE_RATE = 5e-4
HEALTH_SLOPE = 1.3
# Churn follows disengagement: a decline in health raises the hazard only this many days after usage drops.
HAZARD_LAG_DAYS = 30.0
EARLY_TENURE_DAYS = 180.0
EARLY_TENURE_MULTIPLIER = 1.7
NO_CSM_MULTIPLIER = 1.6
CSMS = 8
# Customer history from before this day (relative to the start) arrived in one backfill on this day.
CUSTOMER_HISTORY_LOADED_FROM = -90.0
CHURN_REASONS = ("Price", "Product fit", "Competitor", "Budget cuts", "Poor support", "Company acquired")


def hazard_segments(start, decline_at, decline, h0, contract_mult, csm_mult):
    """Piecewise-constant daily hazard: three segments split at the end of early tenure and the decline.

    Returns (edges, rates): edges has shape (n, 2) = the two break points in time order; rates (n, 3).
    """
    start = np.asarray(start, float)
    decline_at = np.asarray(decline_at, float) + HAZARD_LAG_DAYS
    tenure_end = start + EARLY_TENURE_DAYS
    edges = np.sort(np.stack([tenure_end, decline_at], axis=1), axis=1)
    probes = np.stack([edges[:, 0] - 1e-9, (edges[:, 0] + np.minimum(edges[:, 1], 1e12)) / 2, edges[:, 1] + 1e-9], axis=1)
    probes[:, 1] = np.where(np.isfinite(edges[:, 1]), probes[:, 1], edges[:, 0] + 1.0)
    probes[:, 2] = np.where(np.isfinite(edges[:, 1]), probes[:, 2], edges[:, 0] + 2.0)
    rates = np.empty((len(start), 3))
    for k in range(3):
        t = probes[:, k]
        health = np.asarray(h0) - np.asarray(decline) * (t >= decline_at)
        tenure = np.where(t < tenure_end, EARLY_TENURE_MULTIPLIER, 1.0)
        rates[:, k] = BASE_RATE * np.exp(-HEALTH_SLOPE * health) * contract_mult * tenure * csm_mult
    return edges, rates


def cumulative_hazard(edges: np.ndarray, rates: np.ndarray, t0, t1) -> np.ndarray:
    """Integral of the piecewise-constant hazard over [t0, t1] (vectorised)."""
    t0, t1 = np.asarray(t0, float), np.asarray(t1, float)
    bounds = [np.full(len(t0), -np.inf), edges[:, 0], edges[:, 1], np.full(len(t0), np.inf)]
    total = np.zeros(len(t0))
    for k in range(3):
        lo = np.maximum(t0, bounds[k])
        hi = np.minimum(t1, bounds[k + 1])
        total += rates[:, k] * np.clip(hi - lo, 0, None)
    return total


def _invert_hazard(edges, rates, start, target):
    """The first time after `start` at which the cumulative hazard reaches `target`."""
    bounds = [start, np.maximum(edges[:, 0], start), np.maximum(edges[:, 1], start)]
    result = np.full(len(start), np.inf)
    used = np.zeros(len(start))
    for k in range(3):
        seg_start = bounds[k]
        seg_end = bounds[k + 1] if k < 2 else np.full(len(start), np.inf)
        with np.errstate(invalid="ignore"):
            capacity = rates[:, k] * np.clip(seg_end - seg_start, 0, None)
        capacity = np.where(np.isfinite(capacity), capacity, np.inf)
        hit = np.isinf(result) & (used + capacity >= target)
        result = np.where(hit, seg_start + (target - used) / rates[:, k], result)
        used = used + np.where(np.isfinite(capacity), capacity, 0)
    return result


def _health(h0, decline, decline_at, t):
    return h0 - decline * (t >= decline_at)


CUSTOMER_CHUNK = 10_000


def write_customers(writer, config, companies: pd.DataFrame, first_won: np.ndarray, clock, events_writer) -> np.ndarray:
    """Simulate every customer in chunks; returns each company's customer start (days; inf if never a customer).

    `events_writer(part, table, owner_nums, times, columns, select_sql)` attaches load times and writes
    an event table the same way the lead side does.
    """
    rng = np.random.default_rng([config.seed, 2])
    n_companies = len(companies)
    base_share = min(0.5, (config.leads / 12) / n_companies)
    installed = rng.random(n_companies) < base_share
    base_start = np.where(installed, rng.uniform(-900.0, -30.0, n_companies), np.inf)
    start_all = np.minimum(first_won, base_start)
    customers = np.flatnonzero(np.isfinite(start_all) & (start_all < config.span_days))
    for part, first in enumerate(range(0, len(customers), CUSTOMER_CHUNK)):
        chunk_rng = np.random.default_rng([config.seed, 3, part])
        chunk = _CustomerChunk(writer, config, companies, clock, lambda *args, _part=part: events_writer(_part, *args),
                               chunk_rng, part)
        _customer_chunk(chunk, customers[first:first + CUSTOMER_CHUNK], start_all)
    return start_all


@dataclass
class _CustomerChunk:
    """One chunk of customers: where their tables go, their random stream, and the traits every table draws on."""

    writer: object
    config: object
    companies: pd.DataFrame
    clock: object
    events_writer: Callable
    rng: np.random.Generator
    part: int

    def draw(self, customers: np.ndarray, start_all: np.ndarray) -> None:
        """Seats, contract, value, CSM, health and when (if ever) each customer churns."""
        rng, span, n = self.rng, self.config.span_days, len(customers)
        start = start_all[customers]
        employees = self.companies.employees.to_numpy()[customers]
        seats = np.clip(np.round(employees * rng.uniform(0.05, 0.3, n)), 3, 2000).astype(int)
        contract = rng.choice(3, n, p=CONTRACT_SHARE)
        value = np.round(seats * rng.uniform(300, 900, n), -1)
        high_value = value >= HIGH_VALUE
        has_csm = rng.random(n) < np.where(high_value, 0.8, 0.35)
        csm_mult = np.where(high_value & ~has_csm, NO_CSM_MULTIPLIER, 1.0)
        contract_mult = np.asarray(CONTRACT_MULTIPLIER)[contract]
        h0 = rng.normal(0.0, 1.0, n)
        declines = rng.random(n) < 0.35
        decline_at = np.where(declines, np.maximum(start, 0) + rng.uniform(0, span + 120, n), np.inf)
        decline = np.where(declines, rng.uniform(2.0, 3.5, n), 0.0)
        edges, rates = hazard_segments(start, decline_at, decline, h0, contract_mult, csm_mult)
        churn_at = _invert_hazard(edges, rates, start, rng.exponential(1.0, n))
        # Customers who had already left well before the data starts are not part of the export.
        keep = churn_at >= -60.0
        for name, values in {"customers": customers, "start": start, "seats": seats, "contract": contract,
                             "value": value, "has_csm": has_csm, "csm_mult": csm_mult, "contract_mult": contract_mult,
                             "h0": h0, "decline_at": decline_at, "decline": decline, "churn_at": churn_at}.items():
            setattr(self, name, values[keep])
        self.n = int(keep.sum())
        self.churned = self.churn_at < span
        self.life_end = np.minimum(self.churn_at, span)
        self.account_num = self.companies.company_num.to_numpy()[self.customers]

    def write_truth(self) -> None:
        self.writer.write(
            "customer_truth", self.part,
            pd.DataFrame({
                "account_num": self.account_num, "customer_start": self.clock.ts(self.start), "start_day": self.start,
                "h0": self.h0, "decline_at_day": self.decline_at, "decline": self.decline,
                "contract_multiplier": self.contract_mult, "csm_multiplier": self.csm_mult,
                "churn_day": np.where(self.churned, self.churn_at, np.nan),
            }),
            "printf('001%09d', account_num) as account_id, * exclude (account_num)",
        )

    def write_contracts(self) -> None:
        """One row per term; the export's `cancelled_at` is current state and never a feature. Then the contract
        events: signed or renewed at each term start, cancelled at churn."""
        rng, span, clock, n, part = self.rng, self.config.span_days, self.clock, self.n, self.part
        start, churned, churn_at = self.start, self.churned, self.churn_at
        terms = np.asarray([np.inf if t is None else t for t in CONTRACT_TERM_DAYS])[self.contract]
        term_count = np.where(np.isfinite(terms), np.ceil((self.life_end - start) / np.where(np.isfinite(terms), terms, 1)), 1)
        term_count = np.clip(term_count, 1, None).astype(int)
        owner = np.repeat(np.arange(n), term_count)
        term_index = np.concatenate([np.arange(k) for k in term_count]) if n else np.zeros(0, int)
        term_start = start[owner] + term_index * np.where(np.isfinite(terms[owner]), terms[owner], 0)
        term_value = np.round(self.value[owner] * (1 + 0.08 * term_index) * rng.uniform(0.95, 1.05, len(owner)), -1)
        contract_rows = pd.DataFrame({
            "contract_num": np.arange(len(owner)) + part * 10_000_000, "account_num": self.account_num[owner],
            "contract": self.contract[owner], "value": term_value, "start_day": term_start,
            "renewal_day": term_start + terms[owner],
            "cancel_day": np.where(churned[owner] & (churn_at[owner] >= term_start)
                                   & (churn_at[owner] < term_start + terms[owner]), churn_at[owner], np.nan),
        })
        keep = contract_rows.start_day < span
        contract_rows = contract_rows[keep].reset_index(drop=True)
        loaded = np.maximum(contract_rows.start_day.to_numpy(), CUSTOMER_HISTORY_LOADED_FROM) + clock.load_delay(len(contract_rows))
        contract_rows["start_at"] = clock.ts(contract_rows.start_day.to_numpy())
        contract_rows["renewal_at"] = pd.Series(clock.ts(np.nan_to_num(contract_rows.renewal_day.to_numpy(), posinf=0))).where(
            np.isfinite(contract_rows.renewal_day.to_numpy()))
        contract_rows["cancel_at"] = pd.Series(clock.ts(np.nan_to_num(contract_rows.cancel_day.to_numpy()))).where(
            contract_rows.cancel_day.notna().to_numpy())
        contract_rows["_loaded_at"] = clock.ts(np.minimum(loaded, span))
        contract_rows["mess"] = rng.integers(0, 4, len(contract_rows))
        self.writer.write(
            "crm_contracts", part, contract_rows,
            f"""printf('800%09d', contract_num) as contract_id, printf('001%09d', account_num) as account_id,
                case mess when 1 then lower({_labels()}[contract + 1]) when 2 then upper({_labels()}[contract + 1])
                     else {_labels()}[contract + 1] end as contract_type,
                value as annual_value, cast(start_at as date) as start_date, cast(renewal_at as date) as renewal_date,
                cancel_at as cancelled_at, _loaded_at""",
        )
        ev_kind = np.concatenate([np.where(term_index[keep.to_numpy()] == 0, 0, 1), np.full(int(churned.sum()), 2)])
        ev_account = np.concatenate([contract_rows.account_num.to_numpy(), self.account_num[churned]])
        ev_contract = np.concatenate([contract_rows.contract_num.to_numpy(), np.full(int(churned.sum()), -1)])
        ev_time = np.concatenate([contract_rows.start_day.to_numpy(), churn_at[churned]])
        self.events_writer(
            "crm_contract_events", ev_account, ev_time,
            {"kind": ev_kind, "contract_num": ev_contract, "reason": rng.integers(0, len(CHURN_REASONS), len(ev_kind))},
            f"""printf('CEV%011d', row_num) as contract_event_id, printf('001%09d', owner_num) as account_id,
                case when contract_num >= 0 then printf('800%09d', contract_num) end as contract_id,
                ['Signed', 'Renewed', 'Cancelled'][kind + 1] as event_type,
                case when kind = 2 then {_list(CHURN_REASONS)}[reason + 1] end as cancellation_reason,
                event_at, _loaded_at""",
        )

    def write_usage(self) -> None:
        """Daily product usage on active days, from 60 days before the data starts."""
        rng, span, clock, n = self.rng, self.config.span_days, self.clock, self.n
        first_day = np.ceil(np.maximum(self.start, -60.0))
        days_each = np.clip(np.floor(self.life_end) - first_day, 0, None).astype(int)
        u_owner = np.repeat(np.arange(n), days_each)
        u_day = first_day[u_owner] + (np.concatenate([np.arange(k) for k in days_each]) if n else np.zeros(0))
        health = _health(self.h0[u_owner], self.decline[u_owner], self.decline_at[u_owner], u_day)
        active = rng.random(len(u_owner)) < 1 / (1 + np.exp(-(1.2 + health)))
        u_owner, u_day, health = u_owner[active], u_day[active], health[active]
        seats_u = self.seats[u_owner]
        users = rng.binomial(seats_u, 1 / (1 + np.exp(-(-0.3 + 0.8 * health))))
        users = np.maximum(users, 1)
        logins = users + rng.poisson(users * 0.5)
        usage_index = np.clip(np.round(50 + 15 * health + rng.normal(0, 8, len(u_owner)), 1), 0, 100)
        usage_loaded = u_day + 1 + rng.uniform(0.05, 0.3, len(u_owner))
        late = rng.random(len(u_owner)) < self.config.late_load_share
        usage_loaded[late] += rng.uniform(3, 20, int(late.sum()))
        usage = pd.DataFrame({
            "account_num": self.account_num[u_owner], "usage_date": clock.ts(u_day), "logins": logins, "users": users,
            "usage_index": usage_index, "_loaded_at": clock.ts(usage_loaded), "loaded_day": usage_loaded,
        })
        usage = usage[usage.loaded_day <= span].drop(columns="loaded_day")
        self.writer.write(
            "product_usage_daily", self.part, usage,
            """printf('001%09d', account_num) as account_id, cast(usage_date as date) as usage_date,
               logins, users as active_users, usage_index as feature_usage_index, _loaded_at""",
        )

    def write_tickets(self) -> None:
        """Support tickets: more often, and more urgent, as health falls."""
        rng, n, start, decline_at, life_end = self.rng, self.n, self.start, self.decline_at, self.life_end
        t_parts = []
        for lo, hi, declined in ((start, np.minimum(decline_at, life_end), False),
                                 (np.maximum(decline_at, start), life_end, True)):
            lo = np.where(np.isfinite(lo), lo, life_end)
            hh = self.h0 - (self.decline if declined else 0)
            window = np.clip(hi - np.maximum(lo, -60), 0, None)
            counts = rng.poisson(0.02 * np.exp(-0.5 * hh) * np.sqrt(self.seats / 20) * window)
            o = np.repeat(np.arange(n), counts)
            t = np.maximum(lo, -60)[o] + rng.random(len(o)) * window[o]
            t_parts.append((o, t, hh[o]))
        t_owner = np.concatenate([p[0] for p in t_parts])
        t_time = np.concatenate([p[1] for p in t_parts])
        t_health = np.concatenate([p[2] for p in t_parts])
        urgent = rng.random(len(t_owner)) < 1 / (1 + np.exp(1.5 + 0.8 * t_health))
        self.events_writer(
            "support_tickets", self.account_num[t_owner], t_time,
            {"urgent": urgent, "close_after": rng.exponential(2.0, len(t_owner)), "topic": rng.integers(0, 5, len(t_owner))},
            """printf('TKT%011d', row_num) as ticket_id, printf('001%09d', owner_num) as account_id,
               case when urgent then 'High' else ['Low', 'Normal', 'Normal', 'Low', 'Normal'][topic + 1] end as priority,
               ['Billing', 'Bug', 'How-to', 'Integration', 'Outage'][topic + 1] as category,
               event_at as opened_at, event_at + to_microseconds(cast(close_after * 86400e6 as bigint)) as closed_at,
               _loaded_at""",
        )

    def write_nps(self) -> None:
        """A survey every 90 days from day 30 of the relationship, answered about half the time."""
        rng, n = self.rng, self.n
        survey_first = self.start + 30
        survey_count = np.clip(np.floor((self.life_end - survey_first) / 90) + 1, 0, None).astype(int)
        s_owner = np.repeat(np.arange(n), survey_count)
        s_time = survey_first[s_owner] + 90 * (np.concatenate([np.arange(k) for k in survey_count]) if n else np.zeros(0)) \
            + rng.uniform(0, 5, len(s_owner))
        answered = (rng.random(len(s_owner)) < 0.45) & (s_time > -60) & (s_time < self.life_end[s_owner])
        s_owner, s_time = s_owner[answered], s_time[answered]
        s_health = _health(self.h0[s_owner], self.decline[s_owner], self.decline_at[s_owner], s_time)
        nps = np.clip(np.round(7.2 + 1.8 * s_health + rng.normal(0, 1.3, len(s_owner))), 0, 10).astype(int)
        self.events_writer(
            "nps_responses", self.account_num[s_owner], s_time, {"score": nps},
            """printf('NPS%011d', row_num) as response_id, printf('001%09d', owner_num) as account_id,
               score, event_at as responded_at, _loaded_at""",
        )

    def write_csm_assignments(self) -> None:
        """Assigned early in the relationship; some accounts change CSM later."""
        rng, start = self.rng, self.start
        c_owner = np.flatnonzero(self.has_csm)
        c_time = np.maximum(start[c_owner], -60) + rng.uniform(0, 20, len(c_owner))
        moves = c_owner[rng.random(len(c_owner)) < 0.15]
        m_time = np.maximum(start[moves], 0) + rng.uniform(60, 400, len(moves))
        owners = np.concatenate([c_owner, moves])
        self.events_writer(
            "csm_assignments", self.account_num[owners], np.concatenate([c_time, m_time]),
            {"csm": rng.integers(0, CSMS, len(owners))},
            """printf('CSA%011d', row_num) as assignment_id, printf('001%09d', owner_num) as account_id,
               printf('005CSM%03d', csm) as csm_id, event_at as assigned_at, _loaded_at""",
        )


def _customer_chunk(chunk: _CustomerChunk, customers: np.ndarray, start_all: np.ndarray) -> None:
    """Every customer table for one chunk, in the order their random draws are made."""
    chunk.draw(customers, start_all)
    chunk.write_truth()
    chunk.write_contracts()
    chunk.write_usage()
    chunk.write_tickets()
    chunk.write_nps()
    chunk.write_csm_assignments()


def _list(values) -> str:
    return "[" + ", ".join("'" + v + "'" for v in values) + "]"


def _labels() -> str:
    return _list(CONTRACT_LABELS)
