"""Incremental runs: append newly arrived raw rows and refresh the lead models without rebuilding history.

The lead models are dbt incremental models (macros/incremental.sql). They stay equal to a full rebuild as
long as appended raw rows carry load times later than everything the previous build saw. That is what
the watermarks here record after every build and check before an incremental one: the lead sources'
latest load time, and each table's row count then. A backfill with older load times (or
raw tables replaced by `scorehouse land`) fails the check with a clear message; run a full build then.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from core.config import Settings, dbt_project_vars
from core.contract import BY_NAME
from core.contract import LEAD_FEATURE_SOURCES as LEAD_SOURCES
from core.warehouse import (
    Connection,
    create_table_if_missing,
    files_relation,
    is_spark,
    query_columns,
    quote_column,
    row_count,
    table_exists,
    transaction,
    update_rows,
    write_frame,
)
from ingest.topics import model_path

WATERMARKS = "raw._build_watermarks"


class IncrementalError(RuntimeError):
    """The raw data no longer extends what the previous build saw: an incremental run would be wrong."""


def _lead_sources_loaded_through(con) -> object:
    parts = " union all ".join(f"select max(_loaded_at) as loaded from raw.{t}" for t in LEAD_SOURCES)
    return con.execute(f"select max(loaded) from ({parts})").fetchone()[0]


def build_settings(settings: Settings) -> str:
    """What else a build depends on: the dbt vars and the content topic model. A change needs a full build."""
    topics = model_path(settings)
    fingerprint = {"vars": settings.dbt_vars(),
                   "topic_model_sha256": hashlib.sha256(topics.read_bytes()).hexdigest() if topics.exists() else None}
    return json.dumps(fingerprint, sort_keys=True)


def record_watermarks(con: Connection, settings: Settings) -> dict[str, int]:
    """After a build: remember the lead sources' latest load time, each table's row count and the settings."""
    loaded_through = _lead_sources_loaded_through(con)
    rows = {t: row_count(con, f"raw.{t}") for t in LEAD_SOURCES}
    write_frame(con, WATERMARKS, pd.DataFrame({
        "source_table": pd.Series(list(rows), dtype=object),
        "loaded_through": pd.Series([loaded_through] * len(rows), dtype="datetime64[us]"),
        "rows_loaded": pd.Series(list(rows.values()), dtype="int64"),
        "build_settings": pd.Series([build_settings(settings)] * len(rows), dtype=object),
    }))
    return rows


def check_extends_previous_build(con: Connection, settings: Settings) -> None:
    """Before an incremental build: every raw row the previous build saw is still there, and every row
    added since was loaded after the previous build's latest load. Raises IncrementalError otherwise."""
    if not table_exists(con, "raw", "_build_watermarks"):
        raise IncrementalError("no previous build recorded in raw._build_watermarks: run a full build first "
                               "(scorehouse build)")
    marks = con.execute(f"select source_table, loaded_through, rows_loaded, build_settings from {WATERMARKS}").fetchall()
    problems = []
    if marks and marks[0][3] != build_settings(settings):
        problems.append(f"the settings or the content topic model changed since the previous build "
                        f"(then {marks[0][3]}, now {build_settings(settings)})")
    for table, loaded_through, rows, _ in marks:
        now = int(con.execute(f"select count(*) from raw.{table} where _loaded_at <= ?",
                              [loaded_through]).fetchone()[0]) if loaded_through is not None else 0
        if now != rows:
            problems.append(f"raw.{table} has {now:,} rows loaded at or before {loaded_through}, "
                            f"the previous build saw {rows:,}")
    if problems:
        raise IncrementalError(
            "an incremental build needs the raw data of the previous build plus rows loaded after it; "
            + "; ".join(problems) + ". Run a full build (scorehouse build) instead."
        )


REFRESH_LOG = "raw._refresh_log"
REFRESH_LOG_COLUMNS = [("source_table", "varchar"), ("file", "varchar"), ("file_sha256", "varchar"),
                       ("appended_at", "timestamp"), ("completed_at", "timestamp")]


def _folder_files(folder: Path) -> list[Path]:
    """The files files_sql reads in a table folder: its Parquet files, else its CSV files."""
    return sorted(folder.glob("*.parquet")) or sorted(folder.glob("*.csv"))


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class Appended:
    """What a refresh appended: rows per table from files new to the warehouse, and the files an earlier refresh
    had appended already (skipped), with whether that refresh finished its build and scoring."""

    rows: dict[str, int] = field(default_factory=dict)
    files_new: int = 0
    files_seen: int = 0
    seen_unfinished: int = 0  # skipped files whose refresh stopped before scoring: this run finishes it
    hashes: list[str] = field(default_factory=list)  # every file of the folder, new or skipped

    @property
    def nothing_to_do(self) -> bool:
        return self.files_new == 0 and self.seen_unfinished == 0


@dataclass
class _Checked:
    """One table's new files, checked and ready to append."""

    table: str
    relation: str
    columns: str  # the columns both the table and the files have, quoted


def _check_folder(con: Connection, folder: Path, files: list[Path], latest) -> _Checked:
    """One table's new files may be appended to raw.<table>: the table exists, the files have its required
    columns, and new rows of the lead sources were loaded after every earlier load."""
    table = folder.name
    if not table_exists(con, "raw", table):
        raise IncrementalError(f"{folder}: raw.{table} does not exist; land the full data first")
    try:
        relation = files_relation(con, folder, files, f"_appended_{table}")
    except ValueError as error:
        raise IncrementalError(f"{error}; nothing was appended") from error
    if table in LEAD_SOURCES and latest is not None:
        stale = con.execute(f"select count(*) from {relation} where _loaded_at <= ?", [latest]).fetchone()[0]
        if stale:
            raise IncrementalError(f"{folder}: {stale:,} rows have _loaded_at at or before the lead "
                                   f"sources' latest load ({latest}); nothing was appended")
    # The columns both sides have; the contract's required ones must be among them (optional and lineage
    # columns a file lacks stay empty).
    table_columns = query_columns(con, f"select * from raw.{table}")
    present = set(query_columns(con, f"select * from {relation}"))
    missing = [c for c in BY_NAME[table].required if c not in present] if table in BY_NAME else []
    if missing:
        raise IncrementalError(f"{folder}: missing columns of raw.{table}: {', '.join(missing)}; "
                               "nothing was appended")
    return _Checked(table, relation, ", ".join(quote_column(con, c) for c in table_columns if c in present))


def _append_checked(con: Connection, checked: _Checked) -> int:
    before = row_count(con, f"raw.{checked.table}")
    con.execute(f"insert into raw.{checked.table} ({checked.columns}) select {checked.columns} from {checked.relation}")
    return row_count(con, f"raw.{checked.table}") - before


def append_raw(con: Connection, new_dir: Path) -> Appended:
    """Append the files under new_dir/<table>/ to raw.<table>, each file once: a file whose content an earlier
    refresh appended is skipped (raw._refresh_log), so the same folder refreshed twice, or a refresh re-run
    after it was killed, appends nothing twice.

    Every folder is checked before anything is appended, so nothing is written when a folder is wrong: each must
    have its table's columns, and new rows of the lead sources must have been loaded after the latest load of any
    lead source so far. On DuckDB the appends then commit together, in one transaction.
    """
    folders = sorted(p for p in new_dir.iterdir() if p.is_dir() and not p.name.startswith("_"))
    if not folders:
        raise FileNotFoundError(f"{new_dir}: no table folders with new rows")
    create_table_if_missing(con, REFRESH_LOG, REFRESH_LOG_COLUMNS)
    done = {(t, h): finished for t, h, finished in con.execute(
        f"select source_table, file_sha256, bool_and(completed_at is not null) from {REFRESH_LOG} group by all"
    ).fetchall()}
    latest = _lead_sources_loaded_through(con)
    appended = Appended()
    now = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    checked: list[tuple[_Checked, list[tuple[Path, str]]]] = []
    for folder in folders:
        hashed = [(path, _sha256(path)) for path in _folder_files(folder)]
        appended.hashes += [digest for _, digest in hashed]
        new = [(path, digest) for path, digest in hashed if (folder.name, digest) not in done]
        appended.files_seen += len(hashed) - len(new)
        appended.seen_unfinished += sum(1 for _, d in hashed if done.get((folder.name, d)) is False)
        appended.files_new += len(new)
        appended.rows[f"raw.{folder.name}"] = 0
        if new:
            checked.append((_check_folder(con, folder, [path for path, _ in new], latest), new))
    with transaction(con):
        for table, new in checked:
            appended.rows[f"raw.{table.table}"] = _append_checked(con, table)
            for path, digest in new:
                con.execute(f"insert into {REFRESH_LOG} values (?, ?, ?, ?, null)", [table.table, str(path), digest, now])
    return appended


def mark_refresh_finished(con: Connection, appended: Appended) -> None:
    """After a refresh has built and scored: its files' refresh is complete (a re-run has nothing to do)."""
    now = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    update_rows(con, REFRESH_LOG, "completed_at", f"timestamp '{now:%Y-%m-%d %H:%M:%S}'",
                "completed_at is null and array_contains(?, file_sha256)", [appended.hashes])


# Open-lead time up to each instant, from the raw leads and their terminal status changes: a lead is on the
# spine from when it was known until it was known to be closed, and a step's work (spine rows, and the
# touches of the leads then open) grows with the open leads it covers. Returns the instants that split it
# into $steps equal parts. It reads raw tables because it runs before the first dbt step, so it restates
# what staging decides: known_from, and stg_crm__lead_status_changes.is_terminal (normalize_label, then the
# dbt var terminal_lead_statuses, passed as $terminal). An estimate only: the steps' boundaries never
# change what a build computes, so a drift there costs balance, not correctness.
_BALANCED_MARKS_SQL = """
with leads as (
    select lead_id, greatest(try_cast(created_at as timestamp), _loaded_at) as opens
    from raw.crm_leads
),
closed as (
    select lead_id, min(greatest(try_cast(changed_at as timestamp), _loaded_at)) as closes
    from raw.crm_lead_status_history
    where list_contains($terminal, replace(replace(lower(trim(status)), ' ', '_'), '-', '_'))
    group by lead_id
),
spans as (
    select leads.opens, least(coalesce(closed.closes, $last), $last) as closes
    from leads
    left join closed on leads.lead_id = closed.lead_id
),
changes as (
    select opens as instant, 1 as change from spans where closes > opens
    union all
    select closes as instant, -1 as change from spans where closes > opens
),
open_leads as (
    select instant, sum(sum(change)) over (order by instant) as open_leads from changes group by instant
),
segments as (
    select instant as starts, open_leads * epoch(lead(instant) over (order by instant) - instant) as lead_seconds,
        open_leads
    from open_leads
),
cumulative as (
    select starts, open_leads, lead_seconds, sum(lead_seconds) over (order by starts) as through_end
    from segments
    where lead_seconds > 0
),
targets as (
    select k, k * (select max(through_end) from cumulative) / $steps as target
    from range(1, $steps) as steps(k)
)
select starts + to_microseconds(cast((target - (through_end - lead_seconds)) / open_leads * 1e6 as bigint))
from targets
inner join cumulative on target > through_end - lead_seconds and target <= through_end
order by k
"""


def time_chunks(con: Connection, settings: Settings) -> list[str]:
    """High-water marks at which a large full build stops and continues incrementally: one step per
    settings.build_chunk_leads leads, each holding about the same share of the weeks in memory (none when
    one step is small enough).

    Every feature row depends only on rows loaded by its as-of time, so building the weeks up to a
    high-water mark, then the next weeks from the state reached, gives exactly the rows of one full build.
    The steps split the open-lead time evenly rather than the calendar: open leads pile up, and equal
    spans of time would leave the last steps several times larger than the first.

    On Spark a full build is one step: the steps bound DuckDB's memory, while Spark spills to disk what its
    executors cannot hold (and this query is written in DuckDB's SQL)."""
    if is_spark(con) or not table_exists(con, "raw", "crm_leads"):
        return []
    leads = row_count(con, "raw.crm_leads")
    last = _lead_sources_loaded_through(con)
    if settings.observed_through and last is not None:
        last = min(last, datetime.fromisoformat(settings.observed_through))
    steps = -(-int(leads) // settings.build_chunk_leads)
    if steps <= 1 or last is None:
        return []
    terminal = list(dbt_project_vars(settings.project_root)["terminal_lead_statuses"])
    marks = [row[0] for row in con.execute(
        _BALANCED_MARKS_SQL, {"last": last, "steps": steps, "terminal": terminal}).fetchall()]
    return [str(mark) for mark in sorted(set(marks)) if mark < last]
