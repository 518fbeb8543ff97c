"""The `scorehouse` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from scorehouse.config import Settings
from scorehouse.simulate import SimulationConfig


def _settings(args: argparse.Namespace) -> Settings:
    settings = Settings()
    if getattr(args, "warehouse", None):
        settings = settings.with_overrides(warehouse_path=Path(args.warehouse).resolve())
    if getattr(args, "raw_dir", None):
        settings = settings.with_overrides(raw_dir=Path(args.raw_dir).resolve())
    return settings


def _spec(name: str):
    from ml.features import MODELS

    return MODELS[name]


def cmd_simulate(args: argparse.Namespace) -> int:
    from scorehouse.simulate import simulate

    out = Path(args.out).resolve() if args.out else _settings(args).raw_dir
    rows = simulate(SimulationConfig(leads=args.leads, seed=args.seed, conversion_offset=args.conversion_offset), out,
                    progress=print)
    for table, count in rows.items():
        print(f"  {table:<35} {count:>12,}")
    print(f"wrote {out}")
    return 0


def cmd_land(args: argparse.Namespace) -> int:
    from scorehouse.landing import land_raw

    settings = _settings(args)
    for table, count in land_raw(settings, settings.raw_dir).items():
        print(f"  {table:<40} {count:>12,}")
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from scorehouse.pipeline import build_features, build_reports

    settings = _settings(args)
    build_features(settings, incremental=args.incremental)
    build_reports(settings)
    print(f"dbt build ({'incremental' if args.incremental else 'full'}) finished: {settings.warehouse_path}")
    return 0


def cmd_refresh(args: argparse.Namespace) -> int:
    from scorehouse.pipeline import refresh, summary_text

    settings = _settings(args)
    report = refresh(settings, Path(args.new_data).expanduser().resolve())
    print(summary_text(settings, report))
    return 0


def cmd_topics(args: argparse.Namespace) -> int:
    from scorehouse.topics import refresh_page_topics

    settings = _settings(args)
    result = refresh_page_topics(settings, refit=args.refit)
    action = "fitted and applied" if result.fitted else "applied the saved topic model"
    print(f"content topics: {action}: {result.pages:,} page URLs in {result.topics} topics "
          "(content.page_topics, content.content_topics); run `scorehouse build` to refresh the features")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from ml.train import train_model

    train_model(_settings(args), _spec(args.model), progress=print)
    return 0


def cmd_score(args: argparse.Namespace) -> int:
    from scoring.batch import score_model
    from scorehouse.pipeline import build_reports

    settings = _settings(args)
    spec = _spec(args.model)
    rows = score_model(settings, spec, progress=print)
    build_reports(settings)
    print(f"wrote {rows:,} rows to scores.{spec.score_table} (history in scores.{spec.history_table})")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from scorehouse.pipeline import run_all, summary_text

    settings = _settings(args)
    if args.as_of:
        settings = settings.with_overrides(observed_through=args.as_of)
    report = run_all(settings, SimulationConfig(leads=args.leads, seed=args.seed), resimulate=args.resimulate)
    print(summary_text(settings, report))
    return 0


def cmd_load(args: argparse.Namespace) -> int:
    from scorehouse.loader import LoadError, load_file

    try:
        report = load_file(_settings(args), args.source, Path(args.path),
                           Path(args.mapping) if args.mapping else None)
    except LoadError as error:
        print(f"scorehouse load: error: {error}", file=sys.stderr)
        return 2
    if report.already_loaded:
        print(f"{args.path}: already loaded into raw.{args.source}; nothing added")
        return 0
    for warning in report.warnings:
        print(f"warning: {warning}")
    print(f"{args.path} -> raw.{args.source}: {report.rows_read:,} rows read = {report.rows_loaded:,} loaded + "
          f"{report.rows_rejected:,} rejected (see raw._load_rejects)")
    for reason, count in report.reasons.items():
        print(f"  rejected {count:,}: {reason}")
    return 0


def cmd_load_flat(args: argparse.Namespace) -> int:
    from ml.flat import run_flat

    name = args.name or Path(args.path).stem.lower().replace("-", "_").replace(" ", "_")
    result = run_flat(_settings(args), Path(args.path), args.id, args.label, name, args.created_at,
                      tuple(args.keep_column or ()), progress=print)
    print(f"{args.path}: {result.rows_read:,} rows read = {result.rows_used:,} used + {result.rows_rejected:,} rejected "
          f"(raw.flat_{name}_rejects)")
    print(f"evaluation: {result.evaluation}")
    flagged = result.audit[result.audit.flagged_reason.notna()]
    for row in flagged.itertuples():
        print(f"  audit: {row.column_name}: {row.flagged_reason}{'' if row.is_excluded else ' (kept by request)'}")
    best = result.metrics[result.winner]
    print(f"model {result.model_version} ({result.winner}): ROC-AUC {best['roc_auc']:.3f}, PR-AUC {best['pr_auc']:.3f}")
    print(f"tables: raw.flat_{name}, marts.fct_flat_{name}, scores.flat_{name}_scores, ml.leakage_audit")
    return 0


def cmd_validate(args: argparse.Namespace) -> int:
    from expectations.gates import GateFailure, run_gates

    try:
        results = run_gates(_settings(args), args.which)
    except GateFailure as failure:
        print(f"scorehouse validate: {failure}", file=sys.stderr)
        return 1
    for r in results:
        print(f"  {r.table:<40} passed ({r.checks} checks)")
    return 0


def cmd_contract(args: argparse.Namespace) -> int:
    from scorehouse.contract import generated_files

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
    return 0 if (args.write or not stale) else 1


def cmd_report(args: argparse.Namespace) -> int:
    from ml.registry import active_report

    spec = _spec(args.model)
    path = active_report(_settings(args), spec.name)
    if not path.exists():
        raise FileNotFoundError(f"report {path} listed in ml.model_registry is missing")
    print(path)
    if args.open:
        import webbrowser

        webbrowser.open(path.as_uri())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="scorehouse", description="Warehouse-native lead scoring.")
    parser.add_argument("--warehouse", help="DuckDB file (default warehouse/scorehouse.duckdb or $SCOREHOUSE_WAREHOUSE)")
    parser.add_argument("--raw-dir", help="folder of raw tables (default data/raw or $SCOREHOUSE_RAW_DIR)")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("simulate", help="write simulated raw source files")
    p.add_argument("--leads", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--out", help="output folder (default: the raw folder)")
    p.add_argument("--conversion-offset", type=float, default=0.0,
                   help="added to every lead's conversion logit; about -2.4 gives ~1%% positive rows")
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("land", help="load the raw folder's files into the warehouse's raw schema")
    p.set_defaults(func=cmd_land)

    p = sub.add_parser("build", help="dbt build: staging, intermediate, marts and reports, with tests")
    p.add_argument("--incremental", action="store_true",
                   help="add only what rows appended since the last build change (default: rebuild everything)")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser("refresh", help="the daily job: append newly arrived raw files, build incrementally, "
                                       "score with the active models, rebuild the reports")
    p.add_argument("new_data", help="folder of new rows, one sub-folder of CSV/Parquet files per raw table")
    p.set_defaults(func=cmd_refresh)

    p = sub.add_parser("topics", help="map page URLs to content topics (fits the topic model if there is none)")
    p.add_argument("--refit", action="store_true", help="fit the topic model again on the pages seen so far")
    p.set_defaults(func=cmd_topics)

    for name, func, text in (("train", cmd_train, "train and register a model"),
                             ("score", cmd_score, "score the latest snapshot and write score tables")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--model", choices=["lead", "churn"], default="lead")
        p.set_defaults(func=func)

    p = sub.add_parser("load", help="load a CSV or Parquet export into raw.SOURCE, checked against the contract")
    p.add_argument("source", help="raw table name, e.g. crm_leads (see docs/source_contract.md)")
    p.add_argument("path")
    p.add_argument("--mapping", help="YAML mapping of your column names, values and CSV dialect")
    p.set_defaults(func=cmd_load)

    p = sub.add_parser("load-flat", help="train and score a flat one-row-per-lead export (CSV or Parquet)")
    p.add_argument("path")
    p.add_argument("--id", required=True, help="the id column")
    p.add_argument("--label", required=True, help="the outcome column (yes/no, 1/0, true/false)")
    p.add_argument("--created-at", help="a creation date column: evaluate out of time instead of cross-validated")
    p.add_argument("--name", help="name for the tables (default: the file name)")
    p.add_argument("--keep-column", action="append", help="keep a column the leakage audit would exclude")
    p.set_defaults(func=cmd_load_flat)

    p = sub.add_parser("validate", help="run the Great Expectations gates on raw sources and score tables")
    p.add_argument("--which", choices=["raw", "scores", "all"], default="all")
    p.set_defaults(func=cmd_validate)

    p = sub.add_parser("contract", help="check (or --write) the source contract's generated doc and dbt macro")
    p.add_argument("--write", action="store_true")
    p.set_defaults(func=cmd_contract)

    p = sub.add_parser("report", help="print the path of the active model's HTML report")
    p.add_argument("--model", choices=["lead", "churn"], default="lead")
    p.add_argument("--open", action="store_true", help="also open it in a browser")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("run", help="the whole job: simulate if needed, land, build, train, score, report")
    p.add_argument("--leads", type=int, default=10_000, help="leads to simulate when there is no raw data yet")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--resimulate", action="store_true", help="replace existing raw files with a new simulation")
    p.add_argument("--as-of", help="run as if the data ended at this date (YYYY-MM-DD): features, labels, "
                                   "training and scores see nothing loaded after it")
    p.set_defaults(func=cmd_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (FileNotFoundError, LookupError, ValueError, RuntimeError) as error:
        print(f"scorehouse {args.command}: error: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
