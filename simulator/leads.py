"""Source simulator: B2B funnel data in the raw shapes real exports have.

It writes one folder of Parquet files per raw table (CRM, web analytics,
marketing touches, enrichment) plus a separate ground-truth folder that
features must never read. Leads are generated in chunks, so memory stays
bounded at any scale; the same seed always gives the same files.

How conversion depends on the signals (documented in README, "The simulator"):
every lead has hidden traits — intent, budget, whether a decision maker can be
reached, firmographic fit — that set its probability of ever converting:

    logit p = -2.9 + offset + seniority + lead source + 0.6 fit + 0.9 intent
              + 0.9 has_budget + 0.8 decision_maker + journey + noise

`offset` (0 by default; about -2.4 gives ~1% positive rows) sets the base rate.
`journey` is an order effect no count can see: some leads evaluate the product
shortly after they arrive, viewing the pricing page and the demo page once each,
in an order of their own. Pricing then demo adds +1.4 to the logit (they have
seen the price and still want the demo); demo then pricing adds -0.6.

Observable behaviour is driven by the same traits: intent raises the rate of
web sessions, pricing/demo/trial page views, email opens and clicks, meetings
and form fills; calls and meetings reveal the budget and decision-maker traits;
seniority comes from the title; fit from enrichment. A converter converts after
an exponential delay (mean 40 days); a non-converter is disqualified after an
exponential delay (mean 100 days) with probability 0.6, otherwise it ages open.
Because behaviour depends only on the hidden traits while the lead is open, the
truth table's probability is the best any model can do on the observed data.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from simulator.customers import CUSTOMER_HISTORY_LOADED_FROM, write_customers

# The hidden truth, written to _truth/<table>/ beside the raw folders; no feature may read it.
TRUTH_TABLES = ("lead_truth", "customer_truth")

SENIORITY = ("c_level", "vp", "director", "manager", "individual", "unknown")
SENIORITY_SHARE = (0.05, 0.10, 0.15, 0.25, 0.35, 0.10)
SENIORITY_EFFECT = (0.9, 0.7, 0.4, 0.1, -0.4, -0.2)
DECISION_MAKER_SHARE = (0.9, 0.75, 0.5, 0.3, 0.1, 0.3)
TITLES = {
    "c_level": ("Chief Executive Officer", "CTO", "Chief Marketing Officer", "CFO", "Founder & CEO", "COO"),
    "vp": ("VP of Sales", "Vice President, Marketing", "VP Engineering", "Head of IT", "Head of Revenue Operations"),
    "director": ("Director of Marketing", "IT Director", "Sales Director", "Director, Operations"),
    "manager": ("Marketing Manager", "IT Manager", "Sales Manager", "Team Lead, Data", "Product Manager"),
    "individual": ("Software Engineer", "Marketing Specialist", "Data Analyst", "Account Executive", "Student"),
    "unknown": ("",),
}

SOURCES = ("referral", "webinar", "event", "paid_search", "paid_social", "organic", "email_campaign", "cold_outreach")
SOURCE_SHARE = (0.06, 0.10, 0.07, 0.20, 0.15, 0.20, 0.12, 0.10)
SOURCE_EFFECT = (0.9, 0.4, 0.3, 0.0, -0.3, 0.1, -0.1, -0.6)
SOURCE_LABELS = (
    "Referral", "Webinar", "Trade Show", "Paid Search", "Paid Social", "Organic", "Email Campaign", "Cold Outreach",
)
CHANNEL_COST = (0.0, 35.0, 120.0, 8.5, 6.0, 0.0, 0.4, 2.0)

INDUSTRIES = ("software", "fintech", "healthcare", "manufacturing", "retail", "education", "logistics", "media")
INDUSTRY_SHARE = (0.22, 0.10, 0.12, 0.16, 0.14, 0.10, 0.08, 0.08)
INDUSTRY_FIT = (0.8, 0.7, 0.3, 0.1, -0.3, -0.6, 0.0, -0.2)
COUNTRIES = ("US", "GB", "DE", "FR", "CA", "IN", "AU", "NL", "BR", "SG")
COUNTRY_SHARE = (0.45, 0.12, 0.09, 0.06, 0.06, 0.08, 0.05, 0.03, 0.04, 0.02)
CITIES = {
    "US": ("New York", "San Francisco", "Austin", "Chicago", "Boston"),
    "GB": ("London", "Manchester", "Leeds"),
    "DE": ("Berlin", "Munich", "Hamburg"),
    "FR": ("Paris", "Lyon"),
    "CA": ("Toronto", "Vancouver"),
    "IN": ("Bengaluru", "Mumbai", "Pune"),
    "AU": ("Sydney", "Melbourne"),
    "NL": ("Amsterdam", "Rotterdam"),
    "BR": ("Sao Paulo", "Rio de Janeiro"),
    "SG": ("Singapore",),
}
PERSONAL_DOMAINS = ("gmail.com", "yahoo.com", "outlook.com", "hotmail.com")
PAGE_TYPES = ("home", "blog", "docs", "pricing", "demo", "free_trial", "webinar")
PAGE_BASE_WEIGHT = (3.0, 3.0, 2.0, 1.0, 0.5, 0.4, 0.5)
PAGE_INTENT_SLOPE = (0.0, 0.0, 0.2, 0.6, 0.8, 0.6, 0.2)
# Blog and docs content themes; buying-stage themes (roi, migration, integrations) draw high-intent readers.
CONTENT_THEMES = {
    "security": ("security-zero-trust-checklist", "Security: a zero trust checklist"),
    "analytics": ("analytics-dashboard-basics", "Analytics dashboard basics"),
    "automation": ("workflow-automation-ideas", "Workflow automation ideas"),
    "roi": ("roi-calculator-business-case", "ROI calculator: building the business case"),
    "migration": ("migration-plan-switching-vendors", "Migration plan for switching vendors"),
    "integrations": ("integrations-api-connectors-setup", "Integrations: API connectors setup"),
}
THEME_INTENT_SLOPE = (0.0, 0.0, 0.0, 0.7, 0.7, 0.5)
JOURNEY_EFFECT = {"pricing_then_demo": 1.4, "demo_then_pricing": -0.6}
FORMS = ("contact_sales", "demo_request", "ebook_download", "webinar_registration", "newsletter_signup")
REPS = 12
# The hidden outcome process: a converter converts after an exponential delay; a non-converter is disqualified
# after one with this probability, or stays open.
CONVERSION_MEAN_DAYS, DISQUALIFY_MEAN_DAYS, P_DISQUALIFY = 40.0, 100.0, 0.6

DAY = 86400


@dataclass(frozen=True)
class SimulationConfig:
    leads: int = 10_000
    seed: int = 42
    start: str = "2025-01-01"
    end: str = "2026-07-01"  # the export time: rows loaded after it have not arrived yet
    chunk_size: int = 25_000
    duplicate_share: float = 0.01
    late_load_share: float = 0.03
    conversion_offset: float = 0.0  # added to every lead's conversion logit; about -2.4 gives ~1% positive rows

    @property
    def span_days(self) -> float:
        return (datetime.fromisoformat(self.end) - datetime.fromisoformat(self.start)).total_seconds() / DAY


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


class _Clock:
    """Turns day offsets into timestamps and draws load delays (most nightly, some weeks late)."""

    def __init__(self, config: SimulationConfig, rng: np.random.Generator) -> None:
        self.start = np.datetime64(config.start, "s")
        self.span = config.span_days
        self.late_share = config.late_load_share
        self.duplicate_share = config.duplicate_share
        self.rng = rng

    def ts(self, days: np.ndarray) -> np.ndarray:
        return self.start + np.round(np.asarray(days) * DAY).astype("int64").astype("timedelta64[s]")

    def load_delay(self, n: int) -> np.ndarray:
        delay = self.rng.uniform(0.02, 1.0, n)
        late = self.rng.random(n) < self.late_share
        delay[late] = self.rng.uniform(5.0, 40.0, int(late.sum()))
        return delay


def _timestamps_or_null(clock: _Clock, days: np.ndarray, mask: np.ndarray) -> pd.Series:
    return pd.Series(clock.ts(np.where(mask, days, 0.0))).where(mask)


def _poisson_events(rng: np.random.Generator, starts: np.ndarray, ends: np.ndarray, rate: np.ndarray):
    """Event times of a Poisson process with a per-lead rate over [start, end)."""
    length = np.clip(ends - starts, 0.0, None)
    counts = rng.poisson(rate * length)
    owner = np.repeat(np.arange(len(starts)), counts)
    times = starts[owner] + rng.random(len(owner)) * length[owner]
    return owner, times


def _choice_rows(rng: np.random.Generator, weights: np.ndarray) -> np.ndarray:
    """One categorical draw per row of a (rows x categories) weight matrix."""
    cum = np.cumsum(weights, axis=1)
    u = rng.random(len(weights)) * cum[:, -1]
    return (cum < u[:, None]).sum(axis=1)


def _messy(column: str, code_column: str) -> str:
    """SQL that spells a value the way hand-typed exports do: as is, lower, upper, padded."""
    return (
        f"case {code_column} when 1 then lower({column}) when 2 then upper({column}) "
        f"when 3 then {column} || ' ' else {column} end"
    )


def _sql_list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join("'" + v.replace("'", "''") + "'" for v in values) + "]"


class _Writer:
    """Writes each table's chunks as Parquet through DuckDB (no extra Parquet dependency)."""

    def __init__(self, out_dir: Path) -> None:
        self.out_dir = out_dir
        self.con = duckdb.connect()
        self.rows: dict[str, int] = {}

    def write(self, table: str, part: int, frame: pd.DataFrame, select_sql: str = "*") -> None:
        folder = self.out_dir / table
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / f"part-{part:05d}.parquet"
        self.con.register("chunk", frame)
        self.con.execute(f"copy (select {select_sql} from chunk) to '{path}' (format parquet)")
        self.con.unregister("chunk")
        self.rows[table] = self.rows.get(table, 0) + len(frame)

    def close(self) -> None:
        self.con.close()


def _companies(config: SimulationConfig, rng: np.random.Generator) -> pd.DataFrame:
    n = max(10, config.leads // 3)
    industry = rng.choice(len(INDUSTRIES), n, p=INDUSTRY_SHARE)
    employees = np.clip(np.round(np.exp(rng.normal(5.0, 1.6, n))), 2, 250_000).astype(int)
    country = rng.choice(len(COUNTRIES), n, p=COUNTRY_SHARE)
    size_fit = np.select([employees < 50, employees < 200, employees < 1000, employees < 5000], [-0.5, 0.0, 0.4, 0.6], 0.3)
    return pd.DataFrame(
        {
            "company_num": np.arange(n),
            "industry": industry,
            "employees": employees,
            "country": country,
            "fit": np.asarray(INDUSTRY_FIT)[industry] + size_fit,
        }
    )


def _write_enrichment(writer: _Writer, config: SimulationConfig, companies: pd.DataFrame, rng, clock: _Clock) -> None:
    """Vendor firmographics: a first enrichment at a random time (often after the first lead) and some refreshes."""
    n = len(companies)
    first = rng.uniform(-60.0, config.span_days, n)
    refresh = rng.random(n) < 0.3
    second = first + rng.uniform(30.0, 300.0, n)
    rows = pd.concat(
        [
            pd.DataFrame({"company_num": companies.company_num, "t": first, "version": 0}),
            pd.DataFrame({"company_num": companies.company_num[refresh], "t": second[refresh], "version": 1}),
        ],
        ignore_index=True,
    )
    rows = rows[rows.t < config.span_days].reset_index(drop=True)
    c = companies.set_index("company_num").loc[rows.company_num]
    growth = np.where(rows.version.to_numpy() == 1, rng.uniform(0.9, 1.3, len(rows)), 1.0)
    employees = np.maximum(1, np.round(c.employees.to_numpy() * growth * rng.uniform(0.85, 1.15, len(rows))))
    employees = employees.astype("float64")
    employees[rng.random(len(rows)) < 0.05] = np.nan  # vendor did not know
    loaded = rows.t.to_numpy() + np.where(rng.random(len(rows)) < 0.10, rng.uniform(10, 60, len(rows)), rng.uniform(0.1, 2, len(rows)))
    frame = pd.DataFrame(
        {
            "enrichment_num": np.arange(len(rows)),
            "company_num": rows.company_num.to_numpy(),
            "industry": c.industry.to_numpy(),
            "employees": employees,
            "country": c.country.to_numpy(),
            "enriched_at": clock.ts(rows.t.to_numpy()),
            "_loaded_at": clock.ts(loaded),
            "loaded_days": loaded,
        }
    )
    frame = frame[frame.loaded_days <= config.span_days].drop(columns="loaded_days")
    writer.write(
        "enrichment_firmographics",
        0,
        frame,
        f"""printf('ENR%09d', enrichment_num) as enrichment_id,
            printf('company%06d.com', company_num) as company_domain,
            {_sql_list(INDUSTRIES)}[industry + 1] as industry,
            cast(employees as integer) as employee_count,
            case when employees is null then null when employees < 50 then '<$5M' when employees < 200 then '$5M-$25M'
                 when employees < 1000 then '$25M-$100M' when employees < 5000 then '$100M-$1B' else '$1B+' end as revenue_band,
            {_sql_list(COUNTRIES)}[country + 1] as country,
            enriched_at, _loaded_at""",
    )


@dataclass
class _Events:
    """One table's events for a set of owners (leads or customers): who, when, extra columns, and the SQL that
    shapes them into the raw table's columns."""

    table: str
    part: int
    owner_nums: np.ndarray  # the owners' numbers (lead or company numbers)
    owners: np.ndarray  # per event, an index into owner_nums
    times: np.ndarray  # per event, days since the start
    columns: dict[str, np.ndarray]
    select_sql: str
    duplicate_share: float | None = None  # None: the clock's share of re-export duplicates
    id_offset: int | None = None  # None: part * 10,000,000
    owner_column: str = "lead_num"
    load_floor: float | None = None  # rows that happened before it arrive in one backfill at that time


def _write_events(writer, events: _Events, clock: _Clock, span: float, rng: np.random.Generator) -> None:
    """Attach load times, drop what has not arrived by the export, add re-export duplicates, write."""
    arrival = events.times if events.load_floor is None else np.maximum(events.times, events.load_floor)
    loaded = arrival + clock.load_delay(len(events.times))
    frame = pd.DataFrame({events.owner_column: events.owner_nums[events.owners], **events.columns,
                          "event_days": events.times, "loaded_days": loaded})
    frame = frame[(frame.event_days < span) & (frame.loaded_days <= span)]
    frame = frame.sort_values(["event_days"], kind="stable").reset_index(drop=True)
    offset = events.id_offset if events.id_offset is not None else events.part * 10_000_000
    frame.insert(0, "row_num", np.arange(len(frame)) + offset)
    share = clock.duplicate_share if events.duplicate_share is None else events.duplicate_share
    if share > 0 and len(frame):
        dup = frame.sample(frac=share, random_state=int(rng.integers(0, 2**31))).copy()
        dup["loaded_days"] = dup.loaded_days + rng.uniform(1.0, 3.0, len(dup))
        frame = pd.concat([frame, dup[dup.loaded_days <= span]], ignore_index=True)
    frame["event_at"] = clock.ts(frame.event_days.to_numpy())
    frame["_loaded_at"] = clock.ts(frame.loaded_days.to_numpy())
    frame["mess"] = rng.integers(0, 4, len(frame))
    writer.write(events.table, events.part, frame.drop(columns=["event_days", "loaded_days"]), events.select_sql)


class _Chunk:
    """One chunk of leads: its random stream, clock and writer, and the hidden traits every table draws on.
    The writers below run in a fixed order; each draws from the chunk's stream in turn, so a seed always
    gives the same files."""

    def __init__(self, config: SimulationConfig, companies: pd.DataFrame, chunk: int, first_id: int, n: int,
                 writer: _Router) -> None:
        self.config, self.companies, self.chunk, self.first_id, self.n, self.writer = (
            config, companies, chunk, first_id, n, writer)
        self.rng = np.random.default_rng([config.seed, 1, chunk])
        self.clock = _Clock(config, self.rng)
        self.span = config.span_days
        self.lead_num = first_id + np.arange(n)

    def events(self, table: str, owners: np.ndarray, times: np.ndarray, columns: dict[str, np.ndarray],
               select_sql: str, **options) -> None:
        _write_events(self.writer, _Events(table, self.chunk, self.lead_num, owners, times, columns, select_sql,
                                           **options), self.clock, self.span, self.rng)

    def draw_traits(self) -> None:
        """Who each lead is, what it intends, and when (if ever) it converts or is disqualified."""
        rng, n, companies = self.rng, self.n, self.companies
        self.created = rng.uniform(0.0, self.span - 1.0, n)
        self.seniority = rng.choice(len(SENIORITY), n, p=SENIORITY_SHARE)
        self.source = rng.choice(len(SOURCES), n, p=SOURCE_SHARE)
        self.company = rng.integers(0, len(companies), n)
        self.personal = rng.random(n) < 0.08
        self.fit = np.where(self.personal, -0.3, companies.fit.to_numpy()[self.company])
        self.intent = rng.normal(0.0, 1.0, n)
        self.has_budget = rng.random(n) < _sigmoid(-0.4 + 0.5 * self.fit + 0.3 * self.intent)
        self.decision_maker = rng.random(n) < np.asarray(DECISION_MAKER_SHARE)[self.seniority]
        self.do_not_email = rng.random(n) < 0.10
        self.do_not_call = rng.random(n) < 0.15
        self.evaluates = rng.random(n) < _sigmoid(-0.7 + 0.7 * self.intent)
        self.pricing_first = rng.random(n) < 0.5
        self.journey = np.where(self.evaluates, np.where(self.pricing_first, JOURNEY_EFFECT["pricing_then_demo"],
                                                         JOURNEY_EFFECT["demo_then_pricing"]), 0.0)
        self.logit = (
            -2.9
            + self.config.conversion_offset
            + np.asarray(SENIORITY_EFFECT)[self.seniority]
            + np.asarray(SOURCE_EFFECT)[self.source]
            + 0.6 * self.fit
            + 0.9 * self.intent
            + 0.9 * self.has_budget
            + 0.8 * self.decision_maker
            + self.journey
            + rng.normal(0.0, 0.3, n)
        )
        self.p_convert = _sigmoid(self.logit)
        self.converts = rng.random(n) < self.p_convert
        self.disqualifies = ~self.converts & (rng.random(n) < P_DISQUALIFY)
        outcome_at = self.created + np.where(self.converts, rng.exponential(CONVERSION_MEAN_DAYS, n),
                                             rng.exponential(DISQUALIFY_MEAN_DAYS, n))
        self.outcome_at = np.where(self.converts | self.disqualifies, outcome_at, np.inf)
        self.life_end = np.minimum(self.outcome_at, self.span)

    def write_truth(self) -> None:
        """Ground truth, kept apart from every raw table."""
        clock, span = self.clock, self.span
        self.writer.write(
            "lead_truth",
            self.chunk,
            pd.DataFrame(
                {
                    "lead_num": self.lead_num,
                    "p_convert": self.p_convert,
                    "conversion_mean_days": CONVERSION_MEAN_DAYS,
                    "p_disqualify": P_DISQUALIFY,
                    "disqualify_mean_days": DISQUALIFY_MEAN_DAYS,
                    "intent": self.intent,
                    "has_budget": self.has_budget,
                    "decision_maker": self.decision_maker,
                    "fit": self.fit,
                    "journey_effect": self.journey,
                    "created_at": clock.ts(self.created),
                    "converted_at": _timestamps_or_null(clock, self.outcome_at, self.converts & (self.outcome_at < span)),
                    "disqualified_at": _timestamps_or_null(clock, self.outcome_at,
                                                           self.disqualifies & (self.outcome_at < span)),
                }
            ),
            "printf('00Q%09d', lead_num) as lead_id, * exclude (lead_num)",
        )

    def status_parts(self) -> list[tuple[np.ndarray, np.ndarray, int]]:
        """(which leads, when, status code) for New -> MQL -> SQL -> Converted / Disqualified, driven by the
        hidden traits only."""
        rng, n, span = self.rng, self.n, self.span
        mql = rng.random(n) < _sigmoid(0.3 + self.intent)
        mql_at = self.created + rng.exponential(8.0, n)
        sql_ok = mql & (rng.random(n) < _sigmoid(self.logit + 1.5))
        sql_at = mql_at + rng.exponential(15.0, n)
        return [
            (np.ones(n, bool), self.created + 0.0001, 0),
            (mql & (mql_at < self.life_end), mql_at, 1),
            (sql_ok & (sql_at < self.life_end), sql_at, 2),
            (self.converts & (self.outcome_at < span), self.outcome_at, 3),
            (self.disqualifies & (self.outcome_at < span), self.outcome_at, 4),
        ]

    def write_leads(self, status_parts: list[tuple[np.ndarray, np.ndarray, int]]) -> None:
        """CRM leads (current-state export; `status` is the status at export time and must never feed a feature)."""
        rng, n, companies = self.rng, self.n, self.companies
        final_status = np.zeros(n, int)
        for mask, _, code in status_parts:
            final_status = np.where(mask, np.maximum(final_status, code), final_status)
        title_pick = rng.integers(0, 6, n)
        lead_loaded = self.created + self.clock.load_delay(n)
        country = np.where(rng.random(n) < 0.85, companies.country.to_numpy()[self.company], rng.choice(len(COUNTRIES), n))
        city_u = rng.random(n)
        leads = pd.DataFrame(
            {
                "lead_num": self.lead_num,
                "company_num": self.company,
                "personal": self.personal,
                "personal_domain": rng.integers(0, len(PERSONAL_DOMAINS), n),
                "seniority": self.seniority,
                "title_pick": title_pick,
                "title_missing": (self.seniority == SENIORITY.index("unknown")) | (rng.random(n) < 0.03),
                "country": country,
                "country_missing": rng.random(n) < 0.05,
                "city_u": city_u,
                "source": self.source,
                "do_not_email": self.do_not_email,
                "do_not_call": self.do_not_call,
                "owner": rng.integers(0, REPS, n),
                "final_status": final_status,
                "created_at": self.clock.ts(self.created),
                "_loaded_at": self.clock.ts(lead_loaded),
                "loaded_days": lead_loaded,
                "mess": rng.integers(0, 4, n),
                "mess2": rng.integers(0, 4, n),
            }
        )
        leads = leads[leads.loaded_days <= self.span]
        title_lists = "[" + ", ".join(_sql_list(TITLES[s]) for s in SENIORITY) + "]"
        city_lists = "[" + ", ".join(_sql_list(CITIES[c]) for c in COUNTRIES) + "]"
        self.writer.write(
            "crm_leads",
            self.chunk,
            leads,
            f"""printf('00Q%09d', lead_num) as lead_id,
                case when title_missing then null else
                  {_messy(f"{title_lists}[seniority + 1][(title_pick % len({title_lists}[seniority + 1])) + 1]", "mess")} end as title,
                case when personal then null else printf('Company %06d', company_num) end as company,
                case when personal then {_sql_list(PERSONAL_DOMAINS)}[personal_domain + 1]
                     when mess = 2 then upper(printf('company%06d.com', company_num))
                     else printf('company%06d.com', company_num) end as company_domain,
                case when country_missing then null else {_messy(f"{_sql_list(COUNTRIES)}[country + 1]", "mess2")} end as country,
                {city_lists}[country + 1][cast(floor(city_u * len({city_lists}[country + 1])) as integer) + 1] as city,
                {_messy(f"{_sql_list(SOURCE_LABELS)}[source + 1]", "mess2")} as lead_source,
                do_not_email, do_not_call,
                printf('005REP%03d', owner) as owner_id,
                ['New', 'MQL', 'SQL', 'Converted', 'Disqualified'][final_status + 1] as status,
                created_at, _loaded_at""",
        )

    def write_status_history(self, status_parts: list[tuple[np.ndarray, np.ndarray, int]]) -> None:
        self.events(
            "crm_lead_status_history",
            np.concatenate([np.flatnonzero(mask) for mask, _, _ in status_parts]),
            np.concatenate([t[mask] for mask, t, _ in status_parts]),
            {"status": np.concatenate([np.full(int(mask.sum()), code) for mask, _, code in status_parts])},
            f"""printf('STH%011d', row_num) as status_change_id, printf('00Q%09d', lead_num) as lead_id,
                {_messy("['New', 'MQL', 'SQL', 'Converted', 'Disqualified'][status + 1]", "mess")} as status,
                event_at as changed_at, _loaded_at""",
            duplicate_share=0.0,
        )

    def write_activities(self) -> None:
        """Emails (sent, opened, clicked), calls and meetings; calls and meetings reveal hidden traits."""
        rng, intent, created, life_end = self.rng, self.intent, self.created, self.life_end
        sent_owner, sent_t = _poisson_events(rng, created, life_end, np.where(self.do_not_email, 0.0, 0.06))
        opened = rng.random(len(sent_owner)) < _sigmoid(-0.8 + 0.8 * intent[sent_owner])
        open_owner, open_t = sent_owner[opened], sent_t[opened] + rng.exponential(0.5, int(opened.sum()))
        clicked = rng.random(len(open_owner)) < _sigmoid(-1.2 + 0.8 * intent[open_owner])
        click_owner, click_t = open_owner[clicked], open_t[clicked] + rng.exponential(0.1, int(clicked.sum()))
        call_owner, call_t = _poisson_events(rng, created, life_end, np.where(self.do_not_call, 0.0, 0.025))
        meet_owner, meet_t = _poisson_events(rng, created, life_end, 0.01 * np.exp(0.5 * intent))
        owners = np.concatenate([sent_owner, open_owner, click_owner, call_owner, meet_owner])
        times = np.concatenate([sent_t, open_t, click_t, call_t, meet_t])
        kinds = np.concatenate([np.full(len(a), k)
                                for k, a in enumerate([sent_owner, open_owner, click_owner, call_owner, meet_owner])])
        conversation = kinds >= 3
        reveal_dm = conversation & self.decision_maker[owners] & (rng.random(len(owners)) < np.where(kinds == 4, 0.8, 0.5))
        budget_talk = conversation & (rng.random(len(owners)) < np.where(kinds == 4, 0.6, 0.35))
        budget_code = np.where(budget_talk, np.where(self.has_budget[owners], 1, 2), 0)
        self.events(
            "crm_activities", owners, times,
            {"kind": kinds, "reveal_dm": reveal_dm, "budget": budget_code,
             "null_lead": rng.random(len(owners)) < 0.001},
            f"""printf('00T%011d', row_num) as activity_id,
                case when null_lead then null else printf('00Q%09d', lead_num) end as lead_id,
                {_messy("['Email Sent', 'Email Opened', 'Email Clicked', 'Call', 'Meeting'][kind + 1]", "mess")} as activity_type,
                case when kind >= 3 then reveal_dm end as decision_maker_reached,
                [null, 'Confirmed', 'No budget'][budget + 1] as budget_status,
                event_at as occurred_at, _loaded_at""",
        )

    def _sessions(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
        """Web sessions: anonymous before the lead exists, identified after, and each evaluator's pricing and
        demo visits, days apart, in its own order. Returns (owner, start, evaluation page types, the end of each
        lead's evaluation, how many sessions come before the evaluation ones)."""
        rng, n, intent, created, life_end = self.rng, self.n, self.intent, self.created, self.life_end
        pre_count = rng.poisson(1.5, n)
        pre_owner = np.repeat(np.arange(n), pre_count)
        pre_t = created[pre_owner] - rng.uniform(0.05, 30.0, len(pre_owner))
        post_owner, post_t = _poisson_events(rng, created, life_end, 0.05 * np.exp(0.6 * intent))
        eval_leads = np.flatnonzero(self.evaluates)
        first_visit = created[eval_leads] + rng.uniform(0.5, 12.0, len(eval_leads))
        second_visit = first_visit + rng.uniform(1.0, 10.0, len(eval_leads))
        eval_owner = np.concatenate([eval_leads, eval_leads])
        eval_t = np.concatenate([first_visit, second_visit])
        pricing_first = self.pricing_first[eval_leads]
        eval_type = np.concatenate([np.where(pricing_first, 3, 4), np.where(pricing_first, 4, 3)])
        keep = eval_t < life_end[eval_owner]
        eval_owner, eval_t, eval_type = eval_owner[keep], eval_t[keep], eval_type[keep]
        evaluation_ends = np.full(n, -np.inf)
        evaluation_ends[eval_leads] = second_visit
        return (np.concatenate([pre_owner, post_owner, eval_owner]), np.concatenate([pre_t, post_t, eval_t]),
                eval_type, evaluation_ends, len(pre_owner) + len(post_owner))

    def write_pages(self) -> None:
        """Page views of every session, typed by intent, with content themes for blog and docs pages."""
        rng, intent, chunk = self.rng, self.intent, self.chunk
        sess_owner, sess_t, eval_type, evaluation_ends, ordinary = self._sessions()
        sess_num = np.arange(len(sess_owner))
        pages_per = 1 + rng.poisson(1.5 + 0.5 * np.clip(intent[sess_owner], 0, None))
        pages_per[ordinary:] = 1
        page_sess = np.repeat(sess_num, pages_per)
        page_owner = sess_owner[page_sess]
        step = np.concatenate([np.arange(k) for k in pages_per]) if len(pages_per) else np.zeros(0, int)
        page_t = sess_t[page_sess] + step * rng.exponential(2.0 / 1440, len(page_sess)) + step / 1440
        weights = np.asarray(PAGE_BASE_WEIGHT)[None, :] * np.exp(np.outer(intent[page_owner], PAGE_INTENT_SLOPE))
        page_type = _choice_rows(rng, weights) if len(page_sess) else np.zeros(0, int)
        is_eval_page = page_sess >= ordinary
        page_type[is_eval_page] = eval_type
        # An evaluator's first pricing and demo views are the evaluation itself: other views of those pages
        # before it ends are documentation instead, so the order of the first views is the evaluation order.
        before_evaluation = ~is_eval_page & (page_t < evaluation_ends[page_owner]) & np.isin(page_type, (3, 4))
        page_type[before_evaluation] = 2
        theme_weights = np.exp(np.outer(intent[page_owner], THEME_INTENT_SLOPE))
        theme = _choice_rows(rng, theme_weights) if len(page_sess) else np.zeros(0, int)
        identified = page_t >= self.created[page_owner]
        theme_slugs = _sql_list(tuple(slug for slug, _ in CONTENT_THEMES.values()))
        theme_titles = _sql_list(tuple(title for _, title in CONTENT_THEMES.values()))
        self.events(
            "web_pages", page_owner, page_t,
            {"page_type": page_type, "session_num": page_sess, "identified": identified, "theme": theme,
             "slug": rng.integers(0, 40, len(page_sess)), "utm": rng.random(len(page_sess)) < 0.2,
             "null_time": rng.random(len(page_sess)) < 0.0005},
            f"""printf('msg-p-%d-%012d', {chunk}, row_num) as message_id,
                printf('anon-%09d', lead_num) as anonymous_id,
                case when identified then printf('00Q%09d', lead_num) end as user_id,
                printf('sess-%d-%010d', {chunk}, session_num) as session_id,
                'https://www.example-saas.com' ||
                  ['/', '/blog/' || {theme_slugs}[theme + 1] || '-' || slug,
                   '/docs/' || {theme_slugs}[theme + 1] || '-guide-' || slug, '/pricing', '/demo', '/free-trial',
                   '/webinars/session-' || (slug % 8)][page_type + 1]
                  || case when utm then '?utm_source=newsletter' else '' end as url,
                ['Home', {theme_titles}[theme + 1], 'Guide: ' || {theme_titles}[theme + 1], 'Pricing', 'Book a demo',
                 'Start your free trial', 'Webinar ' || (slug % 8)][page_type + 1] as title,
                case when null_time then null else event_at end as "timestamp", _loaded_at""",
        )

    def write_forms_and_identifies(self) -> None:
        """Form submissions (the one that created the lead, later ones driven by intent) and identify calls."""
        rng, n, chunk = self.rng, self.n, self.chunk
        later_owner, later_t = _poisson_events(rng, self.created, self.life_end, 0.01 * np.exp(0.5 * self.intent))
        form_kind = np.concatenate([rng.choice([0, 1, 2, 3], n, p=[0.3, 0.25, 0.3, 0.15]),
                                    rng.integers(1, 5, len(later_owner))])
        self.events(
            "web_tracks", np.concatenate([np.arange(n), later_owner]), np.concatenate([self.created, later_t]),
            {"form": form_kind},
            f"""printf('msg-t-%d-%012d', {chunk}, row_num) as message_id,
                printf('anon-%09d', lead_num) as anonymous_id,
                printf('00Q%09d', lead_num) as user_id,
                'Form Submitted' as event,
                {_sql_list(FORMS)}[form + 1] as form_name,
                event_at as "timestamp", _loaded_at""",
        )
        self.events(
            "web_identifies", np.arange(n), self.created + 0.00001, {},
            f"""printf('msg-i-%d-%012d', {chunk}, row_num) as message_id,
                printf('anon-%09d', lead_num) as anonymous_id,
                printf('00Q%09d', lead_num) as user_id,
                event_at as "timestamp", _loaded_at""",
            duplicate_share=0.0,
        )

    def write_touches(self) -> None:
        """Marketing touches: the originating touch in the lead's source channel, then campaign touches."""
        rng, n = self.rng, self.n
        first_t = self.created - rng.exponential(3.0, n)
        more_owner, more_t = _poisson_events(rng, self.created, self.life_end, 0.03 * np.exp(0.3 * self.intent))
        more_channel = rng.choice(len(SOURCES), len(more_owner), p=(0.02, 0.12, 0.05, 0.15, 0.2, 0.08, 0.35, 0.03))
        touch_owner = np.concatenate([np.arange(n), more_owner])
        self.events(
            "marketing_touches", touch_owner, np.concatenate([first_t, more_t]),
            {"channel": np.concatenate([self.source, more_channel]), "theme": rng.integers(0, 6, len(touch_owner)),
             "cost_noise": rng.uniform(0.5, 1.5, len(touch_owner))},
            f"""printf('TCH%012d-%d', row_num, {self.chunk}) as touch_id,
                printf('00Q%09d', lead_num) as lead_id,
                {_sql_list(SOURCES)}[channel + 1] as channel,
                {_sql_list(SOURCES)}[channel + 1] || '_' || strftime(event_at, '%Y_q') || quarter(event_at) || '_' ||
                  ['security', 'analytics', 'automation', 'roi', 'migration', 'launch'][theme + 1] as campaign,
                round([{', '.join(str(c) for c in CHANNEL_COST)}][channel + 1] * cost_noise, 2) as cost,
                event_at as touched_at, _loaded_at""",
        )

    def write_opportunities(self, outcomes: _CompanyOutcomes) -> None:
        """Opportunities for converted leads; each company's first opportunity and win are kept for its account."""
        rng, span, outcome_at, company = self.rng, self.span, self.outcome_at, self.company
        won_leads = np.flatnonzero(self.converts & (outcome_at < span))
        opp_close = outcome_at[won_leads] + rng.exponential(45.0, len(won_leads))
        closed = opp_close < span
        is_won = closed & (rng.random(len(won_leads)) < 0.55)
        employees = self.companies.employees.to_numpy()[company[won_leads]]
        amount = np.round(np.exp(rng.normal(9.5, 0.7, len(won_leads))) * np.sqrt(employees / 100 + 1), -2)
        np.minimum.at(outcomes.first_opportunity, company[won_leads], outcome_at[won_leads])
        np.minimum.at(outcomes.first_won, company[won_leads][is_won], opp_close[is_won])
        self.events(
            "crm_opportunities", won_leads, outcome_at[won_leads] + 0.001,
            {"company_num": company[won_leads], "amount": amount, "closed": closed, "is_won": is_won,
             "close_at": self.clock.ts(np.minimum(opp_close, span + 400))},
            """printf('006%011d', row_num) as opportunity_id, printf('00Q%09d', lead_num) as lead_id,
               printf('001%09d', company_num) as account_id, amount,
               case when not closed then 'Negotiation' when is_won then 'Closed Won' else 'Closed Lost' end as stage,
               cast(close_at as date) as close_date, case when closed then is_won end as is_won,
               event_at as created_at, _loaded_at""",
            duplicate_share=0.0,
            id_offset=self.first_id,
        )


def _lead_chunk(leads: _Chunk, outcomes: _CompanyOutcomes) -> None:
    """Every lead table for one chunk of leads, in the order their random draws are made."""
    leads.draw_traits()
    leads.write_truth()
    status_parts = leads.status_parts()
    leads.write_leads(status_parts)
    leads.write_status_history(status_parts)
    leads.write_activities()
    leads.write_pages()
    leads.write_forms_and_identifies()
    leads.write_touches()
    leads.write_opportunities(outcomes)


@dataclass
class _CompanyOutcomes:
    """Per company: when its first opportunity opened and its first deal was won (days; inf = never)."""

    first_opportunity: np.ndarray
    first_won: np.ndarray


def _write_accounts(writer: _Writer, config: SimulationConfig, companies: pd.DataFrame, created: np.ndarray,
                    clock: _Clock) -> None:
    """One account per company that reached an opportunity or was already a customer."""
    has = np.isfinite(created) & (created < config.span_days)
    frame = companies[has].copy()
    frame["created_at"] = clock.ts(created[has])
    frame["_loaded_at"] = clock.ts(np.minimum(np.maximum(created[has], -90) + 0.5, config.span_days))
    writer.write(
        "crm_accounts",
        0,
        frame,
        f"""printf('001%09d', company_num) as account_id, printf('Company %06d', company_num) as account_name,
            printf('company%06d.com', company_num) as company_domain,
            {_sql_list(INDUSTRIES)}[industry + 1] as industry,
            created_at, _loaded_at""",
    )


def simulate(config: SimulationConfig, out_dir: Path, progress: Callable[[str], None] | None = None) -> dict[str, int]:
    """Write raw tables to out_dir/<table>/ and ground truth to out_dir/_truth/<table>/; returns rows per table."""
    say = progress or (lambda _msg: None)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    writer = _Writer(out_dir)
    truth_writer = _Writer(out_dir / "_truth")
    try:
        rng = np.random.default_rng([config.seed, 0])
        companies = _companies(config, rng)
        clock = _Clock(config, rng)
        _write_enrichment(writer, config, companies, rng, clock)
        outcomes = _CompanyOutcomes(np.full(len(companies), np.inf), np.full(len(companies), np.inf))
        router = _Router(writer, truth_writer)
        chunks = range(0, config.leads, config.chunk_size)
        for chunk, first_id in enumerate(chunks):
            n = min(config.chunk_size, config.leads - first_id)
            _lead_chunk(_Chunk(config, companies, chunk, first_id, n, router), outcomes)
            say(f"simulated leads {first_id + n:,}/{config.leads:,}")

        def customer_events(part, table, owner_nums, times, columns, select_sql):
            _write_events(router, _Events(table, part, owner_nums, np.arange(len(owner_nums)), times, columns,
                                          select_sql, duplicate_share=0.0, owner_column="owner_num",
                                          load_floor=CUSTOMER_HISTORY_LOADED_FROM), clock, config.span_days, rng)

        customer_start = write_customers(router, config, companies, outcomes.first_won, clock, customer_events)
        say("simulated customers")
        _write_accounts(writer, config, companies, np.minimum(outcomes.first_opportunity, customer_start), clock)
        rows = {**writer.rows, **{f"_truth.{k}": v for k, v in truth_writer.rows.items()}}
        (out_dir / "_simulation.json").write_text(json.dumps({"config": asdict(config), "rows": rows}, indent=2))
        return rows
    finally:
        writer.close()
        truth_writer.close()


class _Router:
    """Sends truth tables to the truth folder and everything else to the raw folder."""

    def __init__(self, raw: _Writer, truth: _Writer) -> None:
        self.raw, self.truth = raw, truth

    def write(self, table: str, part: int, frame: pd.DataFrame, select_sql: str = "*") -> None:
        (self.truth if table in TRUTH_TABLES else self.raw).write(table, part, frame, select_sql)
