"""The whole job, stage by stage: land raw data, build features, train, score, build reports."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from core.config import Settings
from core.dbt import run_dbt
from core.publish import publish, published_path
from core.warehouse import connect, row_count, table_exists
from expectations.gates import run_gates
from ingest.incremental import (
    Appended,
    append_raw,
    check_extends_previous_build,
    mark_refresh_finished,
    record_watermarks,
    time_chunks,
)
from ingest.landing import ensure_raw_tables, land_raw, present_raw_folders
from ingest.topics import refresh_page_topics
from ml.diagnostics import ENTITY_SOURCES, InsufficientData, present_sources, why_no_rows
from ml.features import MODELS, ModelSpec
from ml.registry import ensure_registry, has_active
from ml.train import train_model
from scoring.batch import score_model
from scoring.tables import ensure_score_tables
from simulator import SimulationConfig, simulate
from simulator.ground_truth import land_truth, truth_for_rows

# dbt selectors: everything that reads score or registry tables is built after scoring.
AFTER_SCORING = ["source:scores+", "source:ml+"]

SUMMARY_TABLES = (
    "marts.fct_lead_features",
    "scores.lead_scores",
    "scores.lead_score_history",
    "marts.rpt_high_priority_leads",
    "marts.fct_customer_features",
    "scores.customer_churn_scores",
    "scores.customer_churn_score_history",
    "marts.rpt_at_risk_customers",
    "marts.rpt_lead_worklist",
    "marts.rpt_segments",
    "marts.rpt_score_monitoring",
    "scores.score_reasons",
    "scores.score_drift",
    "ml.model_registry",
    "staging.stg_rejected_rows",
)


@dataclass
class RunReport:
    stage_seconds: dict[str, float] = field(default_factory=dict)
    training: dict[str, dict] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=dict)
    not_trained: dict[str, str] = field(default_factory=dict)  # model name -> why (too little data)


class _Stages:
    def __init__(self, report: RunReport, say: Callable[[str], None]) -> None:
        self.report, self.say = report, say

    def run(self, name: str, action: Callable[[], object]) -> object:
        self.say(f"[{name}] ...")
        started = time.perf_counter()
        result = action()
        elapsed = time.perf_counter() - started
        self.report.stage_seconds[name] = elapsed
        self.say(f"[{name}] done in {elapsed:.1f}s")
        return result


def has_raw_files(raw_dir: Path) -> bool:
    return (raw_dir / "crm_leads").is_dir()


def land(settings: Settings) -> dict[str, int]:
    """The raw folder into the warehouse (and a simulation's hidden truth beside it, for evaluation only)."""
    present_raw_folders(settings.raw_dir)  # before the warehouse is opened (or created)
    with connect(settings) as con:
        return {**land_raw(con, settings.raw_dir), **land_truth(con, settings.raw_dir)}


def _prepare_build(settings: Settings, incremental: bool) -> list[str]:
    """Before dbt: check an incremental build may run, create the Python-owned tables dbt reads, map pages to
    topics; returns the high-water marks of a large full build's time steps."""
    with connect(settings) as con:
        if incremental:
            if settings.observed_through:
                raise ValueError("an incremental build extends the data's own high-water mark; --as-of needs a "
                                 "full build")
            check_extends_previous_build(con, settings)
        # Every source, score and registry table exists (possibly empty) before dbt reads them as sources.
        ensure_raw_tables(con)
        ensure_score_tables(con)
        ensure_registry(con)
        refresh_page_topics(con, settings)
        return [] if incremental else time_chunks(con, settings)


def build_features(settings: Settings, incremental: bool = False) -> dict[str, str]:
    """dbt build up to the feature marts. Full by default (raw tables may have been replaced); incremental
    runs add only what appended raw rows change, after checking that they extend the previous build.

    Returns, by model key, why a model whose entities are loaded has no rows or no labels to train on; stops
    (InsufficientData) when no model has any."""
    steps = _prepare_build(settings, incremental)
    for k, high_water in enumerate(steps):
        # a large full build: the lead models up to each high-water mark in turn, each step from the last
        run_dbt(settings.with_overrides(observed_through=high_water), "run",
                ["--select", "+fct_lead_features", *(["--full-refresh"] if k == 0 else [])], quiet=True)
    refresh = [] if incremental or steps else ["--full-refresh"]
    run_dbt(settings, "build", ["--exclude", *AFTER_SCORING, *refresh], quiet=True)
    with connect(settings) as con:
        record_watermarks(con, settings)
        models = trainable_models(con)
        problems = {key: p for key, p in ((key, why_no_rows(con, spec)) for key, spec in models.items()) if p}
    if not models:
        raise InsufficientData(why_no_rows_anywhere(settings))
    if len(problems) == len(models):  # entities loaded but no rows or no labels anywhere: say why in data terms
        raise InsufficientData("; ".join(problems.values()))
    return problems


def trainable_models(con) -> dict[str, ModelSpec]:
    """The models whose entities are loaded (leads for lead scoring, contracts for churn)."""
    present = set(present_sources(con))
    return {key: spec for key, spec in MODELS.items() if ENTITY_SOURCES[spec.mart][0] in present}


def why_no_rows_anywhere(settings: Settings) -> str:
    return (f"nothing to build in {settings.warehouse_path}: neither leads (raw.crm_leads) nor customer contracts "
            "(raw.crm_contracts) are loaded; load them with `scorehouse load` (see docs/source_contract.md)")


def build_reports(settings: Settings) -> None:
    run_dbt(settings, "build", ["--select", *AFTER_SCORING], quiet=True)


def run_all(settings: Settings, simulation: SimulationConfig, resimulate: bool = False,
            progress: Callable[[str], None] = print) -> RunReport:
    """simulate (if no raw data yet) -> land -> dbt build -> train and score each model -> dbt build of the reports."""
    report = RunReport()
    stages = _Stages(report, progress)
    if resimulate or not has_raw_files(settings.raw_dir):
        stages.run(
            f"simulate {simulation.leads:,} leads",
            lambda: simulate(simulation, settings.raw_dir, progress=lambda m: progress(f"  {m}")),
        )
    else:
        progress(f"[simulate] skipped: raw files already in {settings.raw_dir} (use --resimulate to replace them)")
    stages.run("land raw files", lambda: land(settings))
    stages.run("gates on raw sources (Great Expectations)", lambda: run_gates(settings, "raw"))
    unable = stages.run("dbt build (staging, intermediate, marts)", lambda: build_features(settings))
    with connect(settings, read_only=True) as con:
        models = trainable_models(con)
    for key, spec in MODELS.items():
        if key not in models:
            progress(f"[train {key}] skipped: raw.{ENTITY_SOURCES[spec.mart][0]} is empty")
            continue
        reason = unable.get(key)
        if reason is None:
            try:
                report.training[spec.name] = stages.run(
                    f"train {key}",
                    lambda spec=spec: train_model(settings, spec, lambda m: progress(f"  {m}"), truth_for_rows))
            except InsufficientData as error:  # one model short of data must not cost the other one its run
                reason = str(error)
        if reason is not None:
            with connect(settings, read_only=True) as con:
                kept = " (its active version from an earlier run still scores)" if has_active(con, spec.name) else ""
            report.not_trained[spec.name] = f"{reason}{kept}"
            progress(f"[train {key}] not trained: {reason}{kept}")
    if report.not_trained and not report.training:
        raise InsufficientData("; ".join(report.not_trained.values()))
    score_and_report(settings, stages, "run")
    return report


def score_and_report(settings: Settings, stages: _Stages, command: str) -> None:
    """Score each model whose entities are loaded with its active version, gate the score tables, build the
    reports, count rows and publish the result for readers (the full run and the daily refresh alike)."""
    with connect(settings, read_only=True) as con:
        models = trainable_models(con)
        unscored = {key for key, spec in models.items() if not has_active(con, spec.name)}
    for key, spec in MODELS.items():
        if key not in models:
            continue
        if key in unscored:
            stages.say(f"[score {key}] skipped: no {spec.name} model has been trained on this warehouse yet, so "
                       f"scores.{spec.score_table} stays empty")
            continue
        stages.run(f"score {key}", lambda spec=spec: score_model(settings, spec, lambda m: stages.say(f"  {m}")))
    stages.run("gates on score tables (Great Expectations)", lambda: run_gates(settings, "scores"))
    stages.run("dbt build (score marts)", lambda: build_reports(settings))
    stages.report.rows = table_rows(settings)
    published = stages.run("publish for readers", lambda: publish(settings, command, stages.say))
    stages.say(f"  published run {published.run_id} to {published.where()}")


def refresh(settings: Settings, new_dir: Path, progress: Callable[[str], None] = print) -> RunReport:
    """The daily job: append newly arrived raw files, build the lead models incrementally, score every
    model with its active version and rebuild the reports. Training stays a separate, periodic job."""
    report = RunReport()
    stages = _Stages(report, progress)
    appended = stages.run("append new raw files", lambda: _append(settings, new_dir))
    progress("  " + ", ".join(f"{table} +{rows:,}" for table, rows in appended.rows.items()))
    if appended.files_seen:
        progress(f"  {appended.files_seen} file(s) were appended by an earlier refresh and are skipped"
                 + (f"; {appended.seen_unfinished} of them by one that stopped before scoring, which this run "
                    "finishes" if appended.seen_unfinished else ""))
    if appended.nothing_to_do:
        progress(f"  nothing to do: every file in {new_dir} was appended and scored by an earlier refresh")
        return report
    stages.run("gates on raw sources (Great Expectations)", lambda: run_gates(settings, "raw"))
    stages.run("dbt build, incremental (staging, intermediate, marts)",
               lambda: build_features(settings, incremental=True))
    score_and_report(settings, stages, "refresh")
    with connect(settings) as con:
        mark_refresh_finished(con, appended)
    return report


def _append(settings: Settings, new_dir: Path) -> Appended:
    with connect(settings) as con:
        # Checked before anything is appended, so a warehouse that needs a full build is left as it was.
        check_extends_previous_build(con, settings)
        return append_raw(con, new_dir)


def table_rows(settings: Settings) -> dict[str, int]:
    with connect(settings, read_only=True) as con:
        return {name: row_count(con, name) for name in SUMMARY_TABLES if table_exists(con, *name.split("."))}


EXAMPLE_QUERY = (
    "select lead_id, priority_rank, owner_id, company_name, title, score, tier\n"
    "  from marts.rpt_high_priority_leads order by priority_rank limit 20;"
)


def summary_text(settings: Settings, report: RunReport) -> str:
    lines = ["", "scorehouse run finished", ""]
    lines.append("Stage timings:")
    lines += [f"  {name:<45} {seconds:8.1f}s" for name, seconds in report.stage_seconds.items()]
    lines.append(f"  {'total':<45} {sum(report.stage_seconds.values()):8.1f}s")
    lines.append("")
    lines.append("Rows per table:")
    lines += [f"  {name:<45} {count:>12,}" for name, count in report.rows.items()]
    for t in report.training.values():
        lines.append("")
        lines.append(f"Model {t['model_version']} ({t['algorithm']}), out-of-time test period:")
        lines.append(
            f"  ROC-AUC {t['test']['roc_auc']:.3f}  PR-AUC {t['test']['pr_auc']:.3f}  Brier {t['test']['brier']:.4f}  "
            f"lift@top10% {t['test']['lift_top_decile']:.2f}  threshold {t['threshold']:.3f}"
        )
        lines.append(
            f"  at the threshold: precision {t['test']['precision_at_threshold']:.3f}  recall "
            f"{t['test']['recall_at_threshold']:.3f}  F1 {t['test']['f1_at_threshold']:.3f}  "
            f"flagged {t['test']['share_flagged']:.1%}"
        )
        lines.append(f"  logistic baseline ROC-AUC {t['baseline']['roc_auc']:.3f}; {t['promotion']}")
        lines.append(f"  {t['signal']}")
        lines.append(f"  sources with rows: {', '.join(t['sources_present'])}")
        leakage = t.get("leakage") or {}
        if leakage.get("excluded"):
            lines.append(f"  leakage audit excluded: {', '.join(leakage['excluded'])}")
        for column, reason in (leakage.get("export_columns") or {}).items():
            lines.append(f"  leakage audit: {column}: {reason}")
        for column, evidence in (leakage.get("warned") or {}).items():
            lines.append(f"  leakage audit warns about {column}: {evidence['reason']}")
        if t.get("ground_truth"):
            lines.append(f"  simulator ground truth on the same rows: ROC-AUC {t['ground_truth']['roc_auc']:.3f}")
    for name, reason in report.not_trained.items():
        lines.append("")
        lines.append(f"Model {name} was not trained: {reason}")
    lines.append("")
    query = " ".join(EXAMPLE_QUERY.split())
    if settings.engine == "spark":
        lines.append(f"Warehouse: Spark tables and catalog under {settings.spark_dir}")
        lines.append("Try, in a Spark session with the same settings (profiles.yml, target spark):")
        lines.append(f"  spark.sql(\"{query}\").show()")
        return "\n".join(lines)
    lines.append(f"Warehouse: {settings.warehouse_path} (readers: {published_path(settings)})")
    lines.append("Try:")
    lines.append(
        f"  python -c \"import duckdb; duckdb.connect('{published_path(settings)}', read_only=True)"
        f".sql('{query}').show()\""
    )
    return "\n".join(lines)
