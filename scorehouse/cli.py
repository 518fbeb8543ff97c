"""The `scorehouse` command line: the application layer's entry point."""

from __future__ import annotations

import argparse
import os
import sys
import webbrowser
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from core.config import Settings
from core.contract import generated_files
from core.publish import publish
from core.runlock import exclusive_run
from core.warehouse import connect
from expectations.context import docs_index, stale_suites, write_context
from expectations.gates import GateFailure, run_gates
from ingest.loader import LoadError, load_file, unload_file
from ingest.mapping import MappingError
from ingest.topics import refresh_page_topics
from ml.features import MODELS
from ml.flat import FlatExport, flat_name, run_flat
from ml.registry import active_report
from ml.train import train_model
from scorehouse import __version__
from scorehouse.pipeline import build_features, build_reports, land, refresh, run_all, summary_text
from scoring.batch import score_model
from scoring.crm_export import FORMATS, export_crm
from simulator import SimulationConfig, simulate
from simulator.ground_truth import truth_for_rows


@dataclass(frozen=True)
class SettingFlag:
    """A command-line option for one Settings field; every environment setting has one."""

    flag: str
    field: str
    parse: Callable[[str], object]
    help: str


def _path(text: str) -> Path:
    return Path(text).expanduser().resolve()


def _names(text: str) -> tuple[str, ...]:
    return tuple(c.strip() for c in text.split(",") if c.strip())


SETTING_FLAGS = (
    SettingFlag("--engine", "engine", str,
                "duckdb (default) or spark: the warehouse dbt builds and the jobs read and write ($SCOREHOUSE_ENGINE)"),
    SettingFlag("--spark-dir", "spark_dir", _path,
                "Spark's tables and catalog (default warehouse/spark or $SCOREHOUSE_SPARK_DIR)"),
    SettingFlag("--warehouse", "warehouse_path", _path,
                "DuckDB file (default warehouse/scorehouse.duckdb or $SCOREHOUSE_WAREHOUSE)"),
    SettingFlag("--raw-dir", "raw_dir", _path, "folder of raw tables (default data/raw or $SCOREHOUSE_RAW_DIR)"),
    SettingFlag("--artifacts", "artifacts_dir", _path,
                "folder for models, reports and gate results (default artifacts or $SCOREHOUSE_ARTIFACTS)"),
    SettingFlag("--horizon-days", "lead_horizon_days", int,
                "lead conversion label horizon in days (default: dbt var lead_horizon_days or $SCOREHOUSE_HORIZON_DAYS)"),
    SettingFlag("--churn-horizon-days", "churn_horizon_days", int,
                "churn label horizon in days (default: dbt var churn_horizon_days or $SCOREHOUSE_CHURN_HORIZON_DAYS)"),
    SettingFlag("--control-share", "control_share", float,
                "share of call slots given to a random control group (default 0.05 or $SCOREHOUSE_CONTROL_SHARE)"),
    SettingFlag("--threshold-policy", "threshold_policy", str,
                "f1, precision:P, recall:R or capacity:N (default f1 or $SCOREHOUSE_THRESHOLD_POLICY)"),
    SettingFlag("--keep-columns", "keep_columns", _names,
                "comma-separated columns the leakage audit may flag but must keep ($SCOREHOUSE_KEEP_COLUMNS)"),
    SettingFlag("--drop-columns", "drop_columns", _names,
                "comma-separated columns to leave out of training, e.g. ones the audit warned about "
                "($SCOREHOUSE_DROP_COLUMNS)"),
    SettingFlag("--memory-limit", "duckdb_memory_limit", str, "DuckDB memory limit (default 7GB or $SCOREHOUSE_MEMORY_LIMIT)"),
    SettingFlag("--threads", "duckdb_threads", int, "threads for DuckDB and model fits (default: cores, $SCOREHOUSE_THREADS)"),
    SettingFlag("--build-chunk-leads", "build_chunk_leads", int,
                "a full build of more leads runs in time steps of about this many (default 100000, "
                "$SCOREHOUSE_BUILD_CHUNK_LEADS)"),
)


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {f.field: getattr(args, f.field) for f in SETTING_FLAGS if getattr(args, f.field, None) is not None}
    return Settings().with_overrides(**overrides)


def cmd_simulate(args: argparse.Namespace) -> int:
    out = Path(args.out).resolve() if args.out else _settings(args).raw_dir
    rows = simulate(SimulationConfig(leads=args.leads, seed=args.seed, conversion_offset=args.conversion_offset), out,
                    progress=print)
    for table, count in rows.items():
        print(f"  {table:<35} {count:>12,}")
    print(f"wrote {out}")
    return 0


def cmd_land(args: argparse.Namespace) -> int:
    for table, count in land(_settings(args)).items():
        print(f"  {table:<40} {count:>12,}")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    settings = _settings(args)
    for key, reason in build_features(settings, incremental=args.incremental).items():
        print(f"warning: the {key} model has nothing to train on: {reason}")
    build_reports(settings)
    print(f"dbt build ({'incremental' if args.incremental else 'full'}) finished: {settings.warehouse_name}")
    return 0


def cmd_refresh(args: argparse.Namespace) -> int:
    settings = _settings(args)
    report = refresh(settings, Path(args.new_data).expanduser().resolve())
    if len(report.stage_seconds) > 1:  # not when every file had been refreshed already
        print(summary_text(settings, report))
    return 0


def cmd_topics(args: argparse.Namespace) -> int:
    settings = _settings(args)
    with connect(settings) as con:
        result = refresh_page_topics(con, settings, refit=args.refit)
    action = "fitted and applied" if result.fitted else "applied the saved topic model"
    print(f"content topics: {action}: {result.pages:,} page URLs in {result.topics} topics "
          "(content.page_topics, content.content_topics); run `scorehouse build` to refresh the features")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    train_model(_settings(args), MODELS[args.model], progress=print, truth=truth_for_rows)
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    settings = _settings(args)
    spec = MODELS[args.model]
    rows = score_model(settings, spec, progress=print)
    build_reports(settings)
    print(f"wrote {rows:,} rows to scores.{spec.score_table} (history in scores.{spec.history_table})")
    published = publish(settings, f"score {args.model}", print)
    print(f"published run {published.run_id} to {published.where()}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    if args.as_of:
        settings = settings.with_overrides(observed_through=args.as_of)
    report = run_all(settings, SimulationConfig(leads=args.leads, seed=args.seed), resimulate=args.resimulate)
    print(summary_text(settings, report))
    return 0


def cmd_load(args: argparse.Namespace) -> int:
    try:
        with connect(_settings(args)) as con:
            report = load_file(con, args.source, Path(args.path), Path(args.mapping) if args.mapping else None,
                               historical=args.historical)
    except (LoadError, MappingError) as error:
        print(f"scorehouse load: error: {error}", file=sys.stderr)
        return 2
    if report.already_loaded:
        print(f"{args.path}: already loaded into raw.{args.source} with the same mapping and options; nothing added "
              "(a corrected mapping loads it again; `scorehouse unload` takes the first load out)")
        return 0
    for warning in report.warnings:
        print(f"warning: {warning}")
    print(f"{args.path} -> raw.{args.source}: {report.rows_read:,} rows read = {report.rows_loaded:,} loaded + "
          f"{report.rows_rejected:,} rejected (see raw._load_rejects)")
    for reason, count in report.reasons.items():
        print(f"  rejected {count:,}: {reason}")
    if report.derived_status_changes:
        print(f"  derived {report.derived_status_changes:,} status changes (converted_at, disqualified_at) into "
              "raw.crm_lead_status_history")
    return 0


def cmd_unload(args: argparse.Namespace) -> int:
    try:
        with connect(_settings(args)) as con:
            report = unload_file(con, args.file)
    except LoadError as error:
        print(f"scorehouse unload: error: {error}", file=sys.stderr)
        return 2
    print(f"{report.file}: removed {report.rows_removed:,} rows from raw.{report.source}"
          + (f", {report.derived_removed:,} derived status changes" if report.derived_removed else "")
          + f" and {report.rejects_removed:,} rejects; load {report.load_id} is forgotten, so a corrected file can be "
          "loaded. Features built from these rows stay until `scorehouse build` (a full build) runs again.")
    return 0


def cmd_load_flat(args: argparse.Namespace) -> int:
    name = flat_name(args.name, Path(args.path))
    export = FlatExport(Path(args.path), args.id, args.label, name, args.created_at, tuple(args.keep_column or ()),
                        tuple(args.drop_column or ()), tuple(args.after_outcome or ()), tuple(args.open_label or ()))
    result = run_flat(_settings(args), export, progress=print)
    print(f"{args.path}: {result.rows_read:,} rows read = {result.rows_used:,} used + {result.rows_open:,} open "
          f"(scored, not trained on) + {result.rows_rejected:,} rejected (raw.flat_{name}_rejects)")
    print(f"evaluation: {result.evaluation}")
    for line in result.audit_lines():
        print(f"  {line}")
    best = result.metrics[result.winner]
    print(f"model {result.model_version} ({result.winner}): ROC-AUC {best['roc_auc']:.3f}, PR-AUC {best['pr_auc']:.3f}"
          f" (base rate {result.base_rate:.3f}){result.leak_note()}")
    print(result.signal[1])
    print(f"tables: raw.flat_{name}, marts.fct_flat_{name}, scores.flat_{name}_scores, ml.model_registry, "
          "ml.model_metrics, ml.leakage_audit")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    try:
        results = run_gates(_settings(args), args.which)
    except GateFailure as failure:
        print(f"scorehouse validate: {failure}", file=sys.stderr)
        return 1
    for r in results:
        print(f"  {r.table:<40} passed ({r.checks} checks)")
    print(f"Data Docs: {docs_index(_settings(args))}")
    return 0


def cmd_contract(args: argparse.Namespace) -> int:
    stale = []
    for path, text in generated_files(_settings(args).project_root).items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current != text:
            stale.append(path)
            if args.write:
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(text, encoding="utf-8")
    for path in stale:
        print(f"{'wrote' if args.write else 'stale'}: {path}")
    suites = stale_suites()  # the Great Expectations suites in expectations/gx, written from the same contract
    for suite in suites:
        print(f"{'wrote' if args.write else 'stale'}: expectations/gx suite {suite}")
    if suites and args.write:
        write_context()
    return 0 if (args.write or not (stale or suites)) else 1


def cmd_export(args: argparse.Namespace) -> int:
    done = export_crm(_settings(args), args.format, Path(args.out).resolve() if args.out else None, args.all)
    if done.path is None:
        print(f"no lead's {done.format} values changed since the last export ({done.unchanged:,} unchanged); "
              "no file written")
    else:
        print(f"wrote {done.rows:,} new or changed leads ({done.unchanged:,} unchanged) for {done.format}: {done.path}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    with connect(_settings(args), read_only=True) as con:
        path = active_report(con, MODELS[args.model].name)
    if not path.exists():
        raise FileNotFoundError(f"report {path} listed in ml.model_registry is missing")
    print(path)
    if args.open:
        webbrowser.open(path.as_uri())
    return 0


def _service_token(args: argparse.Namespace) -> str | None:
    """The API token: --token-file, else SCOREHOUSE_API_TOKEN; none only with --insecure-local."""
    token = None
    if args.token_file:
        token = Path(args.token_file).read_text().strip()
        if not token:
            raise ValueError(f"token file {args.token_file} is empty")
    elif os.environ.get("SCOREHOUSE_API_TOKEN", "").strip():
        token = os.environ["SCOREHOUSE_API_TOKEN"].strip()
    if token is None and not args.insecure_local:
        raise ValueError("no API token: set SCOREHOUSE_API_TOKEN or pass --token-file FILE (or --insecure-local "
                         "to serve without one on 127.0.0.1 only)")
    if token is not None and len(token) < 16:
        raise ValueError("the API token is shorter than 16 characters; use a long random one "
                         "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')")
    if args.insecure_local and token is None and args.host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError("--insecure-local serves on 127.0.0.1 only; give a token to listen on " + args.host)
    return token


def cmd_serve(args: argparse.Namespace) -> int:
    import logging

    import uvicorn

    from scorehouse.api import NotFound, Scorehouse
    from scorehouse.service import Limits, create_app

    token = _service_token(args)
    house = Scorehouse(settings=_settings(args))  # the published copy of --warehouse
    print(f"compiling the lead features' online query and loading the models from {house.path} ...", flush=True)
    try:
        house.prepare()
    except NotFound as missing:  # stored scores can still be served
        print(f"warning: {missing}; fresh lead scores answer 404 until a run publishes a lead model", flush=True)
    limits = Limits(max_body_bytes=args.max_body_bytes, max_leads=args.max_leads,
                    timeout_seconds=args.timeout_seconds)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    app = create_app(house, token, limits)
    print(f"serving on http://{args.host}:{args.port} ({'token required' if token else 'NO token: local only'}); "
          f"API docs at /docs", flush=True)
    # uvicorn's access log would print each path, ids included: the service logs routes instead
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level="warning")
    return 0


def _add_setting_flags(parser: argparse.ArgumentParser) -> None:
    """The settings' options; SUPPRESS keeps an option given before the verb when the verb's parser runs."""
    group = parser.add_argument_group("settings (before or after the verb)")
    for f in SETTING_FLAGS:
        group.add_argument(f.flag, dest=f.field, type=f.parse, help=f.help, default=argparse.SUPPRESS,
                           metavar=f.flag[2:].upper().replace("-", "_"))


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


def _add_debug_flag(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument("--debug", action="store_true", default=default,
                        help="show the full traceback of an error instead of its one-line message")


# Verbs that only read the warehouse (or none): they need not wait for a writing command.
READING_VERBS = frozenset({"simulate", "contract", "report", "validate", "serve"})


def _verb(sub, name: str, func: Callable, text: str) -> argparse.ArgumentParser:
    parser = sub.add_parser(name, help=text, description=f"scorehouse {name}: {text}.")
    _add_setting_flags(parser)
    _add_debug_flag(parser, argparse.SUPPRESS)
    parser.set_defaults(func=func, writes=name not in READING_VERBS)
    return parser


# What the Spark engine runs today (README, "Another engine"); the other verbs still read or write DuckDB only.
SPARK_VERBS = ("simulate", "land", "build", "topics", "contract", "train", "score", "validate", "report", "run",
               "refresh")


def _dispatch(args: argparse.Namespace, argv: list[str]) -> int:
    """Run the verb; a writing verb holds the warehouse's run lock for its whole life (core/runlock.py)."""
    if _settings(args).engine == "spark" and args.command not in SPARK_VERBS:
        raise ValueError(f"`scorehouse {args.command}` does not run on the Spark engine yet (it runs: "
                         f"{', '.join(SPARK_VERBS)}); use the DuckDB engine for it")
    if not args.writes:
        return args.func(args)
    with exclusive_run(_settings(args), " ".join(["scorehouse", *argv])):
        return args.func(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scorehouse", description="Warehouse-native lead scoring and churn "
                                     "prediction: build features with dbt, train, score, write scores back.")
    parser.add_argument("--version", action="version", version=f"scorehouse {__version__}")
    _add_setting_flags(parser)
    _add_debug_flag(parser, False)
    sub = parser.add_subparsers(dest="command", required=True, metavar="VERB")

    p = _verb(sub, "simulate", cmd_simulate, "write simulated raw source files")
    p.add_argument("--leads", type=_positive_int, default=10_000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", help="output folder (default: the raw folder)")
    p.add_argument("--conversion-offset", type=float, default=0.0,
                   help="added to every lead's conversion logit; about -2.4 gives ~1%% positive rows")

    _verb(sub, "land", cmd_land, "load the raw folder's files into the warehouse's raw schema")

    p = _verb(sub, "build", cmd_build, "dbt build: staging, intermediate, marts and reports, with tests")
    p.add_argument("--incremental", action="store_true",
                   help="add only what rows appended since the last build change (default: rebuild everything)")

    p = _verb(sub, "refresh", cmd_refresh, "the daily job: append newly arrived raw files, build incrementally, "
                                           "score with the active models, rebuild the reports")
    p.add_argument("new_data", help="folder of new rows, one sub-folder of CSV/Parquet files per raw table")

    p = _verb(sub, "topics", cmd_topics, "map page URLs to content topics (fits the topic model if there is none)")
    p.add_argument("--refit", action="store_true", help="fit the topic model again on the pages seen so far")

    for name, func, text in (("train", cmd_train, "train and register a model"),
                             ("score", cmd_score, "score the latest snapshot and write score tables")):
        p = _verb(sub, name, func, text)
        p.add_argument("--model", choices=sorted(MODELS), default="lead")

    p = _verb(sub, "load", cmd_load, "load a CSV or Parquet export into raw.SOURCE, checked against the contract")
    p.add_argument("source", help="raw table name, e.g. crm_leads (see docs/source_contract.md)")
    p.add_argument("path")
    p.add_argument("--mapping", help="YAML mapping of your column names, values and CSV dialect")
    p.add_argument("--historical", metavar="FIELD",
                   help="a backfill: take each row's load time from this time field (e.g. created_at)")
    p = _verb(sub, "unload", cmd_unload, "take a loaded file's rows, rejects and log entry out again")
    p.add_argument("file", help="the file's path as loaded, its SHA-256 (at least 8 characters) or its load id "
                                "(raw._load_log)")

    p = _verb(sub, "load-flat", cmd_load_flat, "train and score a flat one-row-per-lead export (CSV or Parquet)")
    p.add_argument("path")
    p.add_argument("--id", help="the id column (default: none; rows are named by their line number)")
    p.add_argument("--label", required=True, help="the outcome column (yes/no, 1/0, true/false)")
    p.add_argument("--created-at", help="a creation date column: evaluate out of time instead of cross-validated")
    p.add_argument("--name", help="name for the tables (default: the file name)")
    p.add_argument("--keep-column", action="append", help="keep a column the leakage audit would exclude")
    p.add_argument("--drop-column", action="append", help="leave a column out (e.g. one the audit warned about)")
    p.add_argument("--open-label", action="append",
                   help="a label value meaning the outcome is not known yet (e.g. Engaging): such rows are scored, "
                        "not trained on")
    p.add_argument("--after-outcome", action="append",
                   help="a column known only after the outcome: never used, recorded as such in the audit")

    p = _verb(sub, "validate", cmd_validate,
              "run the Great Expectations gates on raw sources and score tables and build their Data Docs site")
    p.add_argument("--which", choices=["raw", "scores", "all"], default="all")

    p = _verb(sub, "contract", cmd_contract,
              "check (or --write) the source contract's generated doc, dbt macro and Great Expectations suites")
    p.add_argument("--write", action="store_true")

    p = _verb(sub, "export", cmd_export, "write the lead scores that changed since the last export as a CRM import file")
    p.add_argument("target", choices=["crm"], help="what to export (crm: the lead scores, for a reverse-ETL sync)")
    p.add_argument("--format", choices=sorted(FORMATS), required=True, help="the CRM whose field names to use")
    p.add_argument("--out", help="file to write (default artifacts/exports/crm_FORMAT_TIME.csv)")
    p.add_argument("--all", action="store_true", help="every open lead, changed or not (a full resync)")

    p = _verb(sub, "report", cmd_report, "print the path of the active model's HTML report")
    p.add_argument("--model", choices=sorted(MODELS), default="lead")
    p.add_argument("--open", action="store_true", help="also open it in a browser")

    p = _verb(sub, "serve", cmd_serve, "serve stored and fresh scores over HTTP (read-only on the published warehouse)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--token-file", help="file holding the API token (default: SCOREHOUSE_API_TOKEN)")
    p.add_argument("--insecure-local", action="store_true", help="serve without a token, on 127.0.0.1 only")
    p.add_argument("--max-body-bytes", type=_positive_int, default=1_000_000)
    p.add_argument("--max-leads", type=_positive_int, default=100, help="leads per fresh-score request")
    p.add_argument("--timeout-seconds", type=float, default=10.0, help="time limit of a fresh-score request")

    p = _verb(sub, "run", cmd_run, "the whole job: simulate if needed, land, build, train, score, report")
    p.add_argument("--leads", type=_positive_int, default=10_000, help="leads to simulate when there is no raw data yet")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--resimulate", action="store_true", help="replace existing raw files with a new simulation")
    p.add_argument("--as-of", help="run as if the data ended at this date (YYYY-MM-DD): features, labels, "
                                   "training and scores see nothing loaded after it")
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    if args.debug:
        return _dispatch(args, argv)
    try:
        return _dispatch(args, argv)
    except (FileNotFoundError, LookupError, ValueError, RuntimeError) as error:
        message = str(error)
    except OSError as error:  # unreadable file, full disk, ...: the file and the system's reason
        message = f"{error.filename}: {error.strerror}" if error.filename else str(error)
    except KeyboardInterrupt:
        message = "interrupted; transactions that did not finish were rolled back"
    except Exception as error:  # noqa: BLE001 - a user meets one line; --debug shows the rest
        first = next((line.strip() for line in str(error).splitlines() if line.strip()), "")
        message = f"unexpected {type(error).__name__}: {first} (run again with --debug for the traceback)"
    print(f"scorehouse {args.command}: error: {message}", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
