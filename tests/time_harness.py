"""Build the lead marts on chosen raw data (and optionally a modified copy of the dbt project)."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from core.config import Settings
from core.contract import RAW_TABLES
from core.dbt import run_dbt
from core.warehouse import connect
from ingest.landing import land_raw
from ingest.topics import refresh_page_topics
from ml.registry import ensure_registry
from scoring.tables import ensure_score_tables

# mart -> (entity key, its high-water mark column in int_observed_through, its label)
MARTS = {
    "fct_lead_features": ("lead_id", "lead_observed_through", "label_converted"),
    "fct_customer_features": ("account_id", "customer_observed_through", "label_churned"),
}
LABEL_COLUMNS = ("label_horizon_days", "label_window_end_at", "is_label_observed", "label_converted", "label_churned")


def copy_project(settings: Settings, destination: Path) -> Path:
    """A private copy of the dbt project, so a test can plant a bug in it."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in ("dbt_project.yml", "profiles.yml"):
        shutil.copy(settings.project_root / name, destination / name)
    shutil.copytree(settings.project_root / "dbt_project", destination / "dbt_project",
                    ignore=shutil.ignore_patterns("target", "logs"))
    return destination


def plant(project: Path, relative_file: str, old: str, new: str) -> None:
    path = project / relative_file
    text = path.read_text()
    assert old in text, f"cannot plant the bug: {old!r} not in {relative_file}"
    path.write_text(text.replace(old, new))


def build_feature_mart(settings: Settings) -> None:
    """Models only (no data tests): what the time tests compare is the data itself."""
    with connect(settings) as con:
        ensure_score_tables(con)
        ensure_registry(con)
        refresh_page_topics(con, settings)
    run_dbt(settings, "run", ["--select", *(f"+{mart}" for mart in MARTS), "--full-refresh"], quiet=True)


def land(settings: Settings, raw_dir: Path, loaded_through: datetime | None = None,
         extra_rows: dict[str, pd.DataFrame] | None = None) -> None:
    """Land raw files plus any extra rows; optionally keep only what had been loaded by a cut time."""
    with connect(settings) as con:
        land_raw(con, raw_dir)
        for table, frame in (extra_rows or {}).items():
            con.register("extra", frame)
            columns = ", ".join(f'"{c}"' for c in frame.columns)
            con.execute(f"insert into raw.{table} ({columns}) select {columns} from extra")
            con.unregister("extra")
        if loaded_through is not None:
            for table in RAW_TABLES:
                con.execute(f"delete from raw.{table} where _loaded_at > ?", [loaded_through])


def feature_rows(settings: Settings, mart: str, through: datetime) -> pd.DataFrame:
    key = MARTS[mart][0]
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute(
            f"select * from marts.{mart} where as_of_at <= ? order by {key}, as_of_date", [through]
        ).df()


def observed_through(settings: Settings, mart: str) -> datetime:
    column = MARTS[mart][1]
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute(f"select {column} from intermediate.int_observed_through").fetchall()[0][0]


def rows_after(raw_dir: Path, cut: datetime, seed: int, end: datetime) -> dict[str, pd.DataFrame]:
    """Random extra rows that arrive after the cut: new events dated after it, and late-loaded rows
    whose event time is before it (activities, page views, identifies, status changes, enrichment)."""
    rng = np.random.default_rng(seed)
    with duckdb.connect() as con:
        leads = con.execute(f"select lead_id, company_domain from read_parquet('{raw_dir}/crm_leads/*.parquet')").df()
        accounts = con.execute(
            f"select distinct account_id from read_parquet('{raw_dir}/crm_contract_events/*.parquet') order by 1"
        ).df()
    picked = leads.sample(n=min(150, len(leads)), random_state=seed).reset_index(drop=True)
    n = len(picked)
    span = (end - cut).total_seconds()

    def after(k):  # times strictly after the cut, up to the end
        return [cut + timedelta(seconds=float(s)) for s in rng.uniform(1, span, k)]

    def before(k):  # event times before the cut (late-loaded)
        return [cut - timedelta(seconds=float(s)) for s in rng.uniform(0, 120 * 86400, k)]

    late_events = before(n)
    late_loads = [cut + timedelta(seconds=float(s)) for s in rng.uniform(1, span, n)]
    future_events = after(n)
    future_loads = [t + timedelta(hours=float(h)) for t, h in zip(future_events, rng.uniform(0, 48, n))]
    kinds = rng.choice(["Email Opened", "Email Clicked", "Meeting", "Call"], n)

    def ids(prefix):
        return [f"{prefix}-{seed}-{i}" for i in range(n)]

    picked_accounts = accounts.sample(n=min(80, len(accounts)), random_state=seed).account_id.tolist()
    m = len(picked_accounts)
    a_late_events, a_late_loads = late_events[:m], late_loads[:m]
    a_future, a_future_loads = future_events[:m], future_loads[:m]
    customer_rows = {
        "product_usage_daily": pd.DataFrame({  # late-loaded days before the cut, and new days after it
            "account_id": picked_accounts * 2,
            "usage_date": [t.date() for t in a_late_events] + [t.date() for t in a_future],
            "logins": [999] * (2 * m),
            "active_users": [99] * (2 * m),
            "feature_usage_index": [1.0] * (2 * m),
            "_loaded_at": a_late_loads + a_future_loads,
        }),
        "crm_contract_events": pd.DataFrame({  # cancellations: recorded late, and new ones after the cut
            "contract_event_id": [f"late-cev-{seed}-{i}" for i in range(m)] + [f"new-cev-{seed}-{i}" for i in range(m)],
            "account_id": picked_accounts * 2,
            "contract_id": [None] * (2 * m),
            "event_type": ["Cancelled"] * (2 * m),
            "cancellation_reason": ["Price"] * (2 * m),
            "event_at": a_late_events + a_future,
            "_loaded_at": a_late_loads + a_future_loads,
        }),
        "support_tickets": pd.DataFrame({
            "ticket_id": [f"late-tkt-{seed}-{i}" for i in range(m)],
            "account_id": picked_accounts,
            "priority": ["High"] * m,
            "category": ["Outage"] * m,
            "opened_at": a_late_events,
            "closed_at": a_late_loads,
            "_loaded_at": a_late_loads,
        }),
        "nps_responses": pd.DataFrame({
            "response_id": [f"late-nps-{seed}-{i}" for i in range(m)],
            "account_id": picked_accounts,
            "score": [0] * m,
            "responded_at": a_late_events,
            "_loaded_at": a_late_loads,
        }),
        "csm_assignments": pd.DataFrame({
            "assignment_id": [f"late-csm-{seed}-{i}" for i in range(m)],
            "account_id": picked_accounts,
            "csm_id": [None] * m,
            "assigned_at": a_late_events,
            "_loaded_at": a_late_loads,
        }),
    }
    return {
        **customer_rows,
        "crm_activities": pd.DataFrame({
            "activity_id": ids("late-act") + ids("new-act"),
            "lead_id": list(picked.lead_id) * 2,
            "activity_type": list(kinds) * 2,
            "decision_maker_reached": [True] * (2 * n),
            "budget_status": ["Confirmed"] * (2 * n),
            "occurred_at": late_events + future_events,
            "_loaded_at": late_loads + future_loads,
        }),
        "web_pages": pd.DataFrame({
            "message_id": ids("late-page") + ids("anon-page"),
            "anonymous_id": [f"anon-late-{seed}-{i}" for i in range(n)] * 2,
            "user_id": list(picked.lead_id) + [None] * n,
            "session_id": ids("late-session") * 2,
            "url": ["https://www.example-saas.com/pricing"] * (2 * n),
            "title": ["Pricing"] * (2 * n),
            "timestamp": late_events + late_events,
            "_loaded_at": late_loads + [cut - timedelta(days=1)] * n,  # anonymous views loaded before the cut...
        }),
        "web_identifies": pd.DataFrame({  # ...but the visitor is identified only after it
            "message_id": ids("late-identify"),
            "anonymous_id": [f"anon-late-{seed}-{i}" for i in range(n)],
            "user_id": list(picked.lead_id),
            "timestamp": late_events,
            "_loaded_at": late_loads,
        }),
        "crm_lead_status_history": pd.DataFrame({
            "status_change_id": ids("late-status") + ids("new-status"),
            "lead_id": list(picked.lead_id) * 2,
            "status": list(rng.choice(["Converted", "Disqualified", "SQL"], n)) + list(rng.choice(["Converted", "SQL"], n)),
            "changed_at": late_events + future_events,
            "_loaded_at": late_loads + future_loads,
        }),
        "enrichment_firmographics": pd.DataFrame({
            "enrichment_id": ids("late-enrich"),
            "company_domain": list(picked.company_domain.fillna("unknown.example")),
            "industry": ["aerospace"] * n,
            "employee_count": [99_999] * n,
            "revenue_band": ["$1B+"] * n,
            "country": ["US"] * n,
            "enriched_at": late_events,
            "_loaded_at": late_loads,
        }),
    }


def invariance_violations(before_cut: Settings, with_later_data: Settings, mart: str = "fct_lead_features") -> list[str]:
    """Rows whose window ended by the cut must be identical in both builds: features for every as-of at
    or before the cut build's high-water mark, labels wherever the cut build observed them."""
    through = observed_through(before_cut, mart)
    return frame_invariance_violations(feature_rows(before_cut, mart, through),
                                       feature_rows(with_later_data, mart, through), mart, through)


def frame_invariance_violations(before_cut: pd.DataFrame, with_later_data: pd.DataFrame, mart: str,
                                through: datetime) -> list[str]:
    """The same check on two builds' rows as of `through` or earlier, however they were read (any engine)."""
    key, _, label = MARTS[mart]
    a = before_cut.sort_values([key, "as_of_date"]).set_index([key, "as_of_date"])
    b = with_later_data.sort_values([key, "as_of_date"]).set_index([key, "as_of_date"])
    if a.empty:
        return [f"{mart}: no rows at or before {through}: nothing was compared"]
    problems = []
    if not a.index.equals(b.index):
        missing, added = a.index.difference(b.index), b.index.difference(a.index)
        problems.append(f"spine differs: {len(missing)} rows only before, {len(added)} rows only after appending")
        common = a.index.intersection(b.index)
        a, b = a.loc[common], b.loc[common]
    features = [c for c in a.columns if c not in LABEL_COLUMNS]
    for column in features:
        same = (a[column] == b[column]) | (a[column].isna() & b[column].isna())
        if pd.api.types.is_float_dtype(a[column]):  # parallel sums may differ in the last bit
            same = same | np.isclose(a[column], b[column], rtol=1e-9, atol=1e-12)
        differs = ~same
        if differs.any():
            where = differs[differs].index[0]
            problems.append(f"{column}: {int(differs.sum())} rows changed, e.g. {where}: {a.at[where, column]!r} -> {b.at[where, column]!r}")
    observed = a["is_label_observed"].astype(bool)
    label_changed = observed & (a[label] != b[label])
    if label_changed.any():
        problems.append(f"{label}: {int(label_changed.sum())} observed labels changed")
    return problems


def share_topic_model(source: Settings, target: Settings) -> None:
    """Give `target` the content topic model fitted in `source`, so both builds map pages alike."""
    fitted = source.models_dir / "content_topics.joblib"
    target.models_dir.mkdir(parents=True, exist_ok=True)
    shutil.copy(fitted, target.models_dir / fitted.name)
