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
    rows = simulate(SimulationConfig(leads=args.leads, seed=args.seed), out, progress=print)
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
    build_features(settings)
    build_reports(settings)
    print(f"dbt build finished: {settings.warehouse_path}")
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
    p.set_defaults(func=cmd_simulate)

    p = sub.add_parser("land", help="load the raw folder's files into the warehouse's raw schema")
    p.set_defaults(func=cmd_land)

    p = sub.add_parser("build", help="dbt build: staging, intermediate, marts and reports, with tests")
    p.set_defaults(func=cmd_build)

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
