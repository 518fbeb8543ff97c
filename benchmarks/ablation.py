"""Ablation: how much each feature family adds to the lead model, out of time, with the ground truth as ceiling.

For each base rate (the simulator's default, and a conversion offset giving ~1% positive rows) it simulates
leads whose ground truth has journey effects, builds the feature mart, and trains the same learner on the
same out-of-time split with five feature sets, each adding a family to the one before:

    foundation   counts over trailing windows, recency, fit, stage, budget/decision maker
    + journey    path steps and order, transitions, time between steps, channel diversity, engagement dynamics
    + content    content-topic shares and downloads (TF-IDF topics of page URLs and titles)
    + encodings  target-encoded city / campaign, colleagues at the company, profile completeness
    + landing    the landing page by its frequent values (the rest pooled)

    python benchmarks/ablation.py --leads 30000 [--offsets 0 -2.4] [--json ablation.json]

A script, not a test: it prints a table (Markdown) and writes JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sklearn.metrics import average_precision_score, roc_auc_score

from core.config import Settings
from core.dbt import run_dbt
from core.warehouse import connect
from ingest.topics import refresh_page_topics
from ml.dataset import load_labelled
from ml.features import LEAD_CONVERSION, ModelSpec
from ml.pipeline import CANDIDATES, make_pipeline_for
from ml.registry import ensure_registry
from ml.selection import fit_weighted
from ml.split import out_of_time_split
from scorehouse.pipeline import land
from scoring.tables import ensure_score_tables
from simulator import SimulationConfig, simulate
from simulator.ground_truth import truth_for_rows

LEARNER = ("hist_gradient_boosting", {"learning_rate": 0.05})
# The families the study adds one at a time, in the order they joined the lead model.
LANDING = ("landing_page_path",)
JOURNEY = (*(c for c in LEAD_CONVERSION.columns_of(("journey", "engagement_momentum")) if c not in LANDING),
           "sessions_total", "page_views_total", "avg_pages_per_session", "avg_session_minutes", "bounce_rate",
           "days_since_trial_activity")
CONTENT = LEAD_CONVERSION.columns_of(("content_interest",))
ENCODINGS = ("colleagues_known", "profile_completeness", "city", "first_touch_campaign")


def feature_sets() -> list[tuple[str, ModelSpec]]:
    """Five specs, each adding one family; the last is the production lead model's feature set."""
    journey, content, encodings = JOURNEY, CONTENT, ENCODINGS + LANDING

    only = LEAD_CONVERSION.restricted_to
    everything = set(LEAD_CONVERSION.features)
    foundation = everything - set(journey) - set(content) - set(encodings)
    return [
        ("foundation", only(foundation)),
        ("+ journey", only(foundation | set(journey))),
        ("+ content topics", only(foundation | set(journey) | set(content))),
        ("+ encodings", only(foundation | set(journey) | set(content) | set(ENCODINGS))),
        ("+ landing page (all)", only(everything)),
    ]


def build(settings: Settings, leads: int, offset: float, seed: int) -> None:
    simulate(SimulationConfig(leads=leads, seed=seed, conversion_offset=offset), settings.raw_dir)
    land(settings)
    with connect(settings) as con:
        ensure_score_tables(con)
        ensure_registry(con)
        refresh_page_topics(con, settings)
    run_dbt(settings, "run", ["--select", "+fct_lead_features", "stg_crm__opportunities"], quiet=True)


def ablate(settings: Settings) -> dict:
    with connect(settings, read_only=True) as con:
        frame = load_labelled(con, LEAD_CONVERSION).frame()
    split = out_of_time_split(frame[LEAD_CONVERSION.date_column], settings.lead_horizon_days,
                              settings.test_fraction, settings.validation_fraction)
    train, test = frame[split.fit | split.validation], frame[split.test]
    y_test = test[LEAD_CONVERSION.label].astype(int).to_numpy()
    with connect(settings, read_only=True) as con:
        truth = truth_for_rows(con, LEAD_CONVERSION.entity_key, test, settings.lead_horizon_days)
    result = {
        "labelled_rows": len(frame),
        "positive_rate": float(frame[LEAD_CONVERSION.label].mean()),
        "test_rows": len(test),
        "test_positives": int(y_test.sum()),
        "ground_truth": None if truth is None else {
            "roc_auc": float(roc_auc_score(y_test, truth)), "pr_auc": float(average_precision_score(y_test, truth))},
        "sets": [],
    }
    candidate = next(c for c in CANDIDATES if c.name == LEARNER[0])
    for name, spec in feature_sets():
        started = time.perf_counter()
        model = fit_weighted(make_pipeline_for(candidate, LEARNER[1], spec, settings.random_seed,
                                               settings.duckdb_threads), train, spec)
        proba = model.predict_proba(test[list(spec.features)])[:, 1]
        result["sets"].append({
            "features": name, "columns": len(spec.features),
            "roc_auc": float(roc_auc_score(y_test, proba)), "pr_auc": float(average_precision_score(y_test, proba)),
            "seconds": round(time.perf_counter() - started, 1),
        })
        print(f"  {name:<20} ROC-AUC {result['sets'][-1]['roc_auc']:.3f}  PR-AUC {result['sets'][-1]['pr_auc']:.3f}",
              flush=True)
    return result


def markdown(runs: list[dict]) -> str:
    lines = ["| base rate | feature set | columns | ROC-AUC | PR-AUC |", "|---|---|---:|---:|---:|"]
    for run in runs:
        rate = f"offset {run['offset']:+g} ({run['positive_rate']:.1%} positive rows)"
        for s in run["sets"]:
            lines.append(f"| {rate} | {s['features']} | {s['columns']} | {s['roc_auc']:.3f} | {s['pr_auc']:.3f} |")
        if run["ground_truth"]:
            g = run["ground_truth"]
            lines.append(f"| {rate} | ground truth (ceiling) | | {g['roc_auc']:.3f} | {g['pr_auc']:.3f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--leads", type=int, default=30_000)
    parser.add_argument("--offsets", type=float, nargs="+", default=[0.0, -2.4],
                        help="conversion logit offsets: 0 is the default base rate, -2.4 gives ~1%% positive rows")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--json", help="write the results here as JSON")
    parser.add_argument("--work", help="keep warehouses here (and reuse them when they exist) instead of a temporary folder")
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory(prefix="scorehouse-ablation-") as tmp:
        for offset in args.offsets:
            work = Path(args.work or tmp) / f"leads{args.leads}-seed{args.seed}-offset{offset:+g}"
            settings = Settings(warehouse_path=work / "warehouse.duckdb", raw_dir=work / "raw",
                                artifacts_dir=work / "artifacts")
            if not settings.warehouse_path.exists():
                print(f"offset {offset:+g}: simulating {args.leads:,} leads and building the mart ...", flush=True)
                started = time.perf_counter()
                build(settings, args.leads, offset, args.seed)
                print(f"  built in {time.perf_counter() - started:.0f}s", flush=True)
            run = {"offset": offset, "leads": args.leads, **ablate(settings)}
            runs.append(run)
    print()
    print(markdown(runs))
    if args.json:
        Path(args.json).write_text(json.dumps(runs, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
