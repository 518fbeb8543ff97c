"""Exports shaped like real CRM and web tools write them, for the bring-your-own-data tests: a Salesforce Lead
export (its own conversion fields, no history table) and page views keyed by the lead's id."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SOURCES = {"Partner Referral": 0.30, "Web": 0.10, "Trade Show": 0.12, "Purchased List": 0.03, "Phone Inquiry": 0.18}
START = pd.Timestamp("2024-01-01")


def salesforce_leads(n: int, seed: int = 7, days: int = 540) -> pd.DataFrame:
    """n leads created over `days` days; the lead source and a senior title carry the signal."""
    rng = np.random.default_rng(seed)
    source = rng.choice(list(SOURCES), n)
    senior = rng.random(n) < 0.3
    p = np.array([SOURCES[s] for s in source]) * np.where(senior, 1.8, 0.8)
    created = START + pd.to_timedelta(rng.uniform(0, days, n), unit="D")
    converted = rng.random(n) < p
    converted_at = created + pd.to_timedelta(rng.exponential(20, n) + 1, unit="D")
    closed = ~converted & (rng.random(n) < 0.6)
    closed_at = created + pd.to_timedelta(rng.exponential(35, n) + 2, unit="D")
    status = np.where(converted, "Closed - Converted", np.where(closed, "Closed - Not Converted", "Working - Contacted"))
    fmt = "%Y-%m-%dT%H:%M:%S.000Z"
    return pd.DataFrame({
        "Id": [f"00Q{k:012d}" for k in range(n)],
        "FirstName": "Ann", "LastName": [f"Lee{k}" for k in range(n)],
        "Company": [f"Company {k % 700}" for k in range(n)],
        "Title": np.where(senior, "VP Sales", "Analyst"),
        "Email": [f"a{k}@company{k % 700}.com" for k in range(n)],
        "LeadSource": source, "Status": status,
        "Industry": rng.choice(["Technology", "Finance", "Retail"], n),
        "NumberOfEmployees": rng.integers(5, 5000, n),
        "CreatedDate": created.strftime(fmt),
        "LastModifiedDate": np.where(closed, closed_at.strftime(fmt), created.strftime(fmt)),
        "IsConverted": np.where(converted, "true", "false"),
        "ConvertedDate": np.where(converted, converted_at.strftime("%Y-%m-%d"), ""),
    })


def page_views(leads: pd.DataFrame, seed: int = 8) -> pd.DataFrame:
    """A few page views per lead in its first weeks, identified by the lead id; pricing views go with converting."""
    rng = np.random.default_rng(seed)
    rows = []
    for lead in leads.itertuples():
        created = pd.Timestamp(lead.CreatedDate.replace("Z", ""))
        pages = ["/pricing", "/product/overview"] if lead.IsConverted == "true" else ["/blog/intro", "/careers"]
        for j in range(int(rng.integers(1, 5))):
            rows.append({"message_id": f"{lead.Id}-{j}", "anonymous_id": f"anon-{lead.Id}", "user_id": lead.Id,
                         "session_id": f"{lead.Id}-s", "url": "https://example.com" + pages[int(rng.random() < 0.7)],
                         "timestamp": created + pd.Timedelta(hours=1 + 30 * j)})
    return pd.DataFrame(rows)


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


# Landing pages known only by a hashed id (no words in the URL, no title), each with its own conversion rate.
LANDING_RATES = (0.04, 0.06, 0.10, 0.15, 0.22, 0.30, 0.40, 0.50)


def landing_page_export(n: int, seed: int = 11) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Salesforce-shaped leads whose only signal is the landing page, and one page view each (its landing page,
    an hour after creation). The pages' URLs are md5 ids: they have no words to group them by."""
    import hashlib

    rng = np.random.default_rng(seed)
    leads = salesforce_leads(n, seed=seed)
    page = rng.integers(0, len(LANDING_RATES), n)
    converted = rng.random(n) < np.asarray(LANDING_RATES)[page]
    created = pd.to_datetime(leads.CreatedDate.str.replace("Z", ""))
    converted_at = created + pd.to_timedelta(rng.exponential(20, n) + 1, unit="D")
    leads["LeadSource"] = rng.choice(list(SOURCES), n)
    leads["Title"] = "Analyst"
    leads["IsConverted"] = np.where(converted, "true", "false")
    leads["ConvertedDate"] = np.where(converted, converted_at.dt.strftime("%Y-%m-%d"), "")
    leads["Status"] = np.where(converted, "Closed - Converted", "Working - Contacted")
    urls = [f"https://go.example.com/lp/{hashlib.md5(f'page {k}'.encode()).hexdigest()}" for k in range(len(LANDING_RATES))]
    views = pd.DataFrame({
        "message_id": leads.Id + "-lp", "anonymous_id": "anon-" + leads.Id, "user_id": leads.Id,
        "session_id": leads.Id + "-s", "url": np.asarray(urls)[page], "timestamp": created + pd.Timedelta(hours=1),
    })
    return leads, views
