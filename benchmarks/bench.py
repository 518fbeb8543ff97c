"""Benchmark harness: time each stage of the lead pipeline at a given scale, with peak memory and row rates,
next to two reference points for the feature build:

- the floor: hand-written DuckDB queries that scan each raw event table once and aggregate it straight to
  the mart's (lead_id, as_of_date) grain — the least work any feature build of that grain must do;
- a straightforward pandas implementation of the core lead features (merge events onto the spine, filter,
  group), at the scales where it fits in memory.

The full build uses the data loaded by a Sunday noon; then the next day's rows (crossing a Monday, so every
open lead gets a new weekly row) are appended and the lead models built incrementally and scored again.

    python benchmarks/bench.py --leads 100000 [--pandas-max-leads 20000] [--json out.json]
    python benchmarks/bench.py --engine spark --leads 10000

With `--engine spark` the same stages run on Spark (the `spark` target of profiles.yml, local[2] unless
SCOREHOUSE_SPARK_MASTER says otherwise): landing reads the files loaded by the Sunday noon, the incremental
stage lands the grown files (Spark appends by landing, not by `refresh`), the floor runs on Spark too, training
reads its rows from Spark, and scoring explains the rows on Spark's executors.

Prints a table and writes JSON. It is a script, not a test: figures vary with the machine and its load.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import duckdb

from core.config import Settings
from core.contract import RAW_TABLES
from core.dbt import run_dbt
from core.warehouse import connect, quote_column
from ingest.incremental import append_raw, check_extends_previous_build, record_watermarks, time_chunks
from ingest.topics import refresh_page_topics
from ml.features import LEAD_CONVERSION
from ml.registry import ensure_registry
from ml.train import train_model
from scorehouse.pipeline import land
from scoring.batch import score_snapshot
from scoring.tables import ensure_score_tables
from scoring.writeback import write_scores
from simulator import SimulationConfig, simulate
from simulator.files import write_rows_loaded
from simulator.ground_truth import truth_for_rows


def on(settings: Settings, function, *args, read_only: bool = False):
    """function(con, *args) on one connection to the benchmark's warehouse."""
    with connect(settings, read_only=read_only) as con:
        return function(con, *args)

# The full build sees rows loaded by HELD_BACK_AFTER (a Sunday noon); the increment is the next day's loads.
HELD_BACK_AFTER = datetime(2026, 6, 28, 12)
INCREMENT_THROUGH = datetime(2026, 6, 29, 12)


def _process_rss_kb(pid: str) -> int:
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:  # the process ended while it was read
        pass
    return 0


def _descendants(pid: int) -> list[str]:
    """The processes started by `pid`, at any depth (Spark's JVM is a child of this one)."""
    children: dict[str, list[str]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    parent = stat.read().rsplit(")", 1)[1].split()[1]
            except (OSError, IndexError):
                continue
            children.setdefault(parent, []).append(entry)
    found, queue = [], [str(pid)]
    while queue:
        for child in children.get(queue.pop(), []):
            found.append(child)
            queue.append(child)
    return found


class PeakMemory:
    """Samples the resident memory (VmRSS, in KiB) of this process and the processes it started (Spark's JVM)
    while a stage runs."""

    def __init__(self) -> None:
        self.peak_kb = 0
        self._stop = threading.Event()

    @staticmethod
    def _rss_kb() -> int:
        return sum(_process_rss_kb(pid) for pid in [str(os.getpid()), *_descendants(os.getpid())])

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, self._rss_kb())
            time.sleep(0.1)

    def __enter__(self):
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak_kb = max(self.peak_kb, self._rss_kb())


def _count(settings: Settings, sql: str) -> int:
    with connect(settings, read_only=True) as con:
        return int(con.execute(sql).fetchall()[0][0])


def floor_build(settings: Settings) -> int:
    """One scan per raw event table, straight to (lead_id, first visible Monday) counts (SQL both engines run)."""
    events = {
        "crm_activities": ("lead_id", "occurred_at"),
        "marketing_touches": ("lead_id", "touched_at"),
        "web_pages": ("user_id", "timestamp"),
        "web_tracks": ("user_id", "timestamp"),
        "crm_lead_status_history": ("lead_id", "changed_at"),
    }
    with connect(settings) as con:
        con.execute("create schema if not exists reference_floor")
        parts = []
        for table, (lead, column) in events.items():
            at = quote_column(con, column)
            parts.append(
                f"select {lead} as lead_id, date_trunc('week', greatest({at}, _loaded_at) + interval 6 day) as as_of_date, "
                f"count(*) as events from raw.{table} where {lead} is not null group by all"
            )
        con.execute("drop table if exists reference_floor.lead_events")
        con.execute("create table reference_floor.lead_events as " + " union all ".join(parts))
        return int(con.execute("select count(*) from reference_floor.lead_events").fetchall()[0][0])


def hold_back_last_day(settings: Settings, increment_dir: Path) -> int:
    """Keep the day after HELD_BACK_AFTER out of the warehouse, as files for the incremental run."""
    held = 0
    with duckdb.connect(str(settings.warehouse_path)) as con:
        for table in RAW_TABLES:
            (increment_dir / table).mkdir(parents=True, exist_ok=True)
            day = (f"select * from raw.{table} where _loaded_at > timestamp '{HELD_BACK_AFTER}' "
                   f"and _loaded_at <= timestamp '{INCREMENT_THROUGH}'")
            con.execute(f"copy ({day}) to '{increment_dir}/{table}/rows.parquet' (format parquet)")
            held += con.execute(f"delete from raw.{table} where _loaded_at > ?", [HELD_BACK_AFTER]).fetchone()[0]
    return held


def model_timings(settings: Settings) -> dict[str, float]:
    """Seconds per model of the last dbt invocation (from its run_results.json), slowest first."""
    results = json.loads((settings.artifacts_dir / "dbt_target" / "run_results.json").read_text())["results"]
    timings = {r["unique_id"].split(".")[-1]: round(r["execution_time"], 2) for r in results}
    return dict(sorted(timings.items(), key=lambda item: -item[1]))


def pandas_features(settings: Settings) -> int:
    """The notebook way: merge every touch onto every spine row of its lead, filter by time, group."""
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        spine = con.execute("select lead_id, as_of_at from intermediate.int_lead_spine").df()
        touches = con.execute("select lead_id, touch_type, page_type, event_at, _loaded_at from intermediate.int_touchpoints").df()
    merged = spine.merge(touches, on="lead_id", how="left")
    visible = merged[(merged.event_at <= merged.as_of_at) & (merged._loaded_at <= merged.as_of_at)]
    age = (visible.as_of_at - visible.event_at).dt.total_seconds() / 86400
    visible = visible.assign(
        opened_30d=(visible.touch_type == "email_opened") & (age < 30),
        pricing_30d=(visible.page_type == "pricing") & (age < 30),
        meetings_90d=(visible.touch_type == "meeting") & (age < 90),
    )
    features = visible.groupby(["lead_id", "as_of_at"]).agg(
        touchpoints_total=("event_at", "size"), last_touch_at=("event_at", "max"),
        emails_opened_30d=("opened_30d", "sum"), pricing_page_views_30d=("pricing_30d", "sum"),
        meetings_90d=("meetings_90d", "sum"),
    )
    return len(spine.merge(features.reset_index(), on=["lead_id", "as_of_at"], how="left"))


class Harness:
    """Times each stage with its memory, and collects the figures."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.rows: list[dict] = []
        self.models: dict[str, dict[str, float]] = {}

    def stage(self, name: str, action, count_sql: str | None = None, rows_of=None):
        start_kb = PeakMemory._rss_kb()
        with PeakMemory() as memory:
            started = time.perf_counter()
            result = action()
            seconds = time.perf_counter() - started
        if rows_of is not None:
            processed = rows_of(result)
        elif count_sql:
            processed = _count(self.settings, count_sql)
        else:
            processed = result if isinstance(result, int) and not isinstance(result, bool) else None
        self.rows.append({"stage": name, "seconds": round(seconds, 2), "start_rss_mib": round(start_kb / 1024),
                          "peak_rss_mib": round(memory.peak_kb / 1024),
                          "rows": processed, "rows_per_second": round(processed / seconds) if processed else None})
        print(f"  {name:<38} {seconds:8.1f}s  start {start_kb / 1024:7.0f} MiB  peak {memory.peak_kb / 1024:7.0f} MiB  "
              f"rows {processed or '':>12}",
              flush=True)
        return result

    def dbt_stage(self, name: str, args_: list[str], step_settings: Settings | None = None) -> None:
        self.stage(name, lambda: run_dbt(step_settings or self.settings, "run", args_, quiet=True))
        self.models[name] = model_timings(self.settings)
        print("      slowest: " + ", ".join(f"{m} {t:.1f}s" for m, t in list(self.models[name].items())[:4]), flush=True)


def feature_stages(h: Harness, args: argparse.Namespace, root: Path) -> int:
    """Simulate, land, hold back a day, and build the lead features (in time steps when large, as
    `scorehouse build` does), then the floor and the pandas reference they are compared with; returns the
    mart's rows."""
    settings = h.settings
    h.stage("simulate", lambda: sum(simulate(SimulationConfig(leads=args.leads, seed=args.seed), settings.raw_dir).values()))
    if settings.engine == "spark":  # Spark lands the files loaded by the Sunday noon; the grown files come later
        h.stage("hold back the last day", lambda: write_rows_loaded(settings.raw_dir, None, HELD_BACK_AFTER,
                                                                  root / "loaded_by_sunday"))
        h.stage("land raw files", lambda: sum(land(settings.with_overrides(raw_dir=root / "loaded_by_sunday")).values()))
    else:
        h.stage("land raw files", lambda: sum(land(settings).values()))
        h.stage("hold back the last day", lambda: hold_back_last_day(settings, root / "increment"))
    on(settings, ensure_score_tables)
    on(settings, ensure_registry)
    h.stage("content topics (fit + map pages)", lambda: on(settings, refresh_page_topics, settings).pages)
    steps = on(settings, time_chunks, settings)
    if steps:
        print(f"  {len(steps) + 1} time steps, high-water marks: {', '.join(steps)}", flush=True)
    for k, high_water in enumerate([*steps, None]):
        h.dbt_stage(f"dbt run lead models, step {k + 1}/{len(steps) + 1}",
                    ["--select", "+fct_lead_features", *(["--full-refresh"] if k == 0 else [])],
                    settings.with_overrides(observed_through=high_water))
    on(settings, record_watermarks, settings)
    feature_rows = _count(settings, "select count(*) from marts.fct_lead_features")
    h.rows[-1]["rows"] = feature_rows
    h.stage("floor: one scan per event table", lambda: floor_build(settings))
    if args.leads <= args.pandas_max_leads and settings.engine == "duckdb":
        h.stage("pandas reference (core lead features)", lambda: pandas_features(settings))
    return feature_rows


def incremental_stages(h: Harness, root: Path, feature_rows: int) -> None:
    """The next day arrives: append it and refresh incrementally."""
    settings = h.settings
    if settings.engine == "spark":
        grown = root / "loaded_by_monday"
        write_rows_loaded(settings.raw_dir, None, INCREMENT_THROUGH, grown)
        h.stage("incremental: land the files grown by one day", lambda: sum(land(settings.with_overrides(raw_dir=grown)).values()))
    else:
        h.stage("incremental: append one day of raw rows",
                lambda: sum(on(settings, append_raw, root / "increment").rows.values()))
    h.stage("incremental: check watermarks + topics", lambda: on(settings, check_extends_previous_build, settings)
            or on(settings, refresh_page_topics, settings).pages)
    h.dbt_stage("incremental: dbt run lead models", ["--select", "+fct_lead_features"])
    h.rows[-1]["rows"] = _count(settings, "select count(*) from marts.fct_lead_features") - feature_rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--leads", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--pandas-max-leads", type=int, default=20_000,
                        help="run the pandas reference only up to this many leads (it must fit in memory)")
    parser.add_argument("--json", help="write the figures here as JSON")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark warehouse")
    parser.add_argument("--features-only", action="store_true",
                        help="stop after the feature build and its reference points (no training or scoring)")
    parser.add_argument("--engine", choices=("duckdb", "spark"), default="duckdb", help="the warehouse engine")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="scorehouse-bench-"))
    h = Harness(Settings().with_overrides(warehouse_path=root / "bench.duckdb", raw_dir=root / "raw",
                                          artifacts_dir=root / "artifacts", engine=args.engine,
                                          spark_dir=root / "spark"))
    print(f"benchmark at {args.leads:,} leads in {root} on {args.engine}", flush=True)
    feature_rows = feature_stages(h, args, root)
    incremental_stages(h, root, feature_rows)
    # Then train and score on the refreshed data (a daily refresh scores too: see the summary).
    if not args.features_only:
        model_stages(h.settings, h.stage)
    summary = summarise(args.leads, h.rows)
    print(json.dumps(summary, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps({"stages": h.rows, "summary": summary, "dbt_models": h.models}, indent=2))
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 0


def model_stages(settings: Settings, stage) -> None:
    stage("dbt run (rest of the marts)", lambda: run_dbt(settings, "run", ["--select", "stg_crm__opportunities"],
                                                          quiet=True))
    started = time.perf_counter()
    say = lambda message: print(f"      {time.perf_counter() - started:7.1f}s {message.strip()}", flush=True)
    stage("train lead model", lambda: train_model(settings, LEAD_CONVERSION, say, truth_for_rows) and None,
          "select count(*) from marts.fct_lead_features where is_label_observed")
    run = stage("score leads (with reasons)", lambda: on(settings, score_snapshot, settings, LEAD_CONVERSION),
                rows_of=lambda scored: len(scored.scores))
    stage("write back", lambda: on(settings, write_scores, LEAD_CONVERSION, run) or len(run.scores))


def summarise(leads: int, rows: list[dict]) -> dict:
    seconds = {r["stage"]: r["seconds"] for r in rows}
    features = seconds["content topics (fit + map pages)"] + sum(
        seconds[s] for s in seconds if s.startswith("dbt run lead models, step"))
    # the full pipeline's figures: everything but the incremental stages and the reference points
    full_stages = [r for r in rows if not r["stage"].startswith("incremental")]
    incremental_stages = [r for r in rows if r["stage"].startswith("incremental")]
    not_pipeline = ("simulate", "hold back the last day", "floor: one scan per event table",
                    "pandas reference (core lead features)")
    summary = {
        "leads": leads,
        "feature_build_seconds": round(features, 1),
        "floor_seconds": seconds["floor: one scan per event table"],
        "feature_build_vs_floor": round(features / seconds["floor: one scan per event table"], 1),
        "end_to_end_seconds_excluding_simulation": round(
            sum(r["seconds"] for r in full_stages if r["stage"] not in not_pipeline), 1),
        "peak_rss_mib": max(r["peak_rss_mib"] for r in full_stages),
    }
    if "pandas reference (core lead features)" in seconds:
        summary["pandas_vs_feature_build"] = round(seconds["pandas reference (core lead features)"] / features, 2)
    if "score leads (with reasons)" in seconds:
        scored = next(r["rows"] for r in rows if r["stage"] == "score leads (with reasons)")
        per_minute = scored / (seconds["score leads (with reasons)"] + seconds["write back"]) * 60
        summary["scoring_with_reasons_and_write_back_rows_per_minute"] = round(per_minute)
    incremental_features = sum(seconds[s] for s in ("incremental: check watermarks + topics",
                                                    "incremental: dbt run lead models"))
    summary["incremental_day_feature_build_seconds"] = round(incremental_features, 1)
    summary["incremental_vs_full_feature_build"] = round(incremental_features / features, 3)
    scoring = [seconds[s] for s in ("score leads (with reasons)", "write back") if s in seconds]
    summary["incremental_day_seconds_with_scoring"] = round(incremental_features + sum(scoring), 1) \
        if scoring else None
    summary["incremental_peak_rss_mib"] = max(r["peak_rss_mib"] for r in incremental_stages)
    return summary


if __name__ == "__main__":
    os.environ.setdefault("SCOREHOUSE_THREADS", str(os.cpu_count() or 2))
    sys.exit(main())
