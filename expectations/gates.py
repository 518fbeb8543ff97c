"""Great Expectations gates: suites for every raw source and every score table, run on DataFrames read from
DuckDB (GX's SQL datasource returns empty results on DuckDB, so the data is handed over as DataFrames).

Raw suites check what must hold for the pipeline to make sense — the contract's columns exist, required
fields are (almost always) present, keys are (almost always) unique, and no event is dated after the
export — while single bad rows are left to the rejects. Score suites are strict: one row per entity,
probabilities in [0, 1], valid tiers, a model version on every row. Results go to
artifacts/gx/<timestamp>/ as JSON plus an HTML summary; a failing gate raises GateFailure naming the
check, the table and example values.
"""

from __future__ import annotations

import html
import json
import os
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pandas as pd

from core.config import Settings
from core.contract import SOURCES
from core.warehouse import connect, table_exists
from ml.features import MODELS

os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")  # no usage statistics leave the machine

SAMPLE_ROWS = 200_000  # row-level checks on raw tables use a fixed sample; score tables are checked whole
MOSTLY = 0.98


class GateFailure(RuntimeError):
    pass


@dataclass
class GateResult:
    table: str
    success: bool
    failures: list[str]
    checks: int


def _raw_suite(gx, source, now: datetime):
    e = gx.expectations
    suite = gx.ExpectationSuite(f"raw.{source.name}")
    for column in source.columns:
        suite.add_expectation(e.ExpectColumnToExist(column=column.name))
        if column.required:
            suite.add_expectation(e.ExpectColumnValuesToNotBeNull(column=column.name, mostly=MOSTLY))
    if source.key in {c.name for c in source.columns}:
        suite.add_expectation(e.ExpectColumnValuesToBeUnique(column=source.key, mostly=MOSTLY))
    suite.add_expectation(e.ExpectColumnValuesToBeBetween(column=source.event_time, max_value=now + timedelta(days=1)))
    return suite


# Each model's current score table: its key, probability column, tier column and tiers.
SCORE_TABLES = {spec.score_table: (spec.entity_key, spec.probability_column, spec.tier_column, list(spec.tier_labels))
                for spec in MODELS.values()}


def _score_suite(gx, table: str):
    key, probability, tier, tiers = SCORE_TABLES[table]
    e = gx.expectations
    suite = gx.ExpectationSuite(f"scores.{table}")
    suite.add_expectation(e.ExpectColumnValuesToNotBeNull(column=key))
    suite.add_expectation(e.ExpectColumnValuesToBeUnique(column=key))
    suite.add_expectation(e.ExpectColumnValuesToBeBetween(column=probability, min_value=0, max_value=1))
    suite.add_expectation(e.ExpectColumnValuesToBeInSet(column=tier, value_set=tiers))
    suite.add_expectation(e.ExpectColumnValuesToNotBeNull(column="model_version"))
    suite.add_expectation(e.ExpectColumnValuesToBeBetween(column="score", min_value=1, max_value=99))
    return suite


def _validate(gx, context, name: str, frame: pd.DataFrame, suite) -> tuple[GateResult, dict]:
    source = context.data_sources.add_pandas(name=f"src_{name}")
    batch = source.add_dataframe_asset(name=name).add_batch_definition_whole_dataframe("all")
    result = batch.get_batch(batch_parameters={"dataframe": frame}).validate(suite)
    failures = []
    for r in result.results:
        if not r.success:
            config = r.expectation_config
            column = config.kwargs.get("column", "")
            examples = (r.result or {}).get("partial_unexpected_list") or []
            failures.append(f"{config.type} on {name}.{column} failed; examples: {examples[:5]}")
    return GateResult(name, bool(result.success), failures, len(result.results)), result.to_json_dict()


def run_gates(settings: Settings, which: str = "all", raise_on_failure: bool = True) -> list[GateResult]:
    """which: 'raw', 'scores' or 'all'."""
    # Imported here, not at the top: Great Expectations takes seconds to import, and every `scorehouse` command
    # loads this module through the CLI, most of them without running a gate.
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    out_dir = settings.artifacts_dir / "gx" / now.strftime("%Y%m%dT%H%M%S")
    out_dir.mkdir(parents=True, exist_ok=True)
    results = []
    with connect(settings, read_only=True) as con:
        if which in ("raw", "all"):
            for source in SOURCES:
                if not table_exists(con, "raw", source.name):
                    continue
                frame = con.execute(
                    f"select * from raw.{source.name} using sample reservoir({SAMPLE_ROWS} rows) repeatable (7)"
                ).df()
                gate, payload = _validate(gx, context, f"raw_{source.name}", frame, _raw_suite(gx, source, now))
                results.append(gate)
                (out_dir / f"raw.{source.name}.json").write_text(json.dumps(payload, default=str, indent=1))
        if which in ("scores", "all"):
            for table in SCORE_TABLES:
                if not table_exists(con, "scores", table):
                    continue
                frame = con.execute(f"select * from scores.{table}").df()
                if frame.empty:
                    continue
                gate, payload = _validate(gx, context, f"scores_{table}", frame, _score_suite(gx, table))
                results.append(gate)
                (out_dir / f"scores.{table}.json").write_text(json.dumps(payload, default=str, indent=1))
    rows = "".join(
        f"<tr><td>{html.escape(r.table)}</td><td>{'passed' if r.success else 'FAILED'}</td><td>{r.checks}</td>"
        f"<td>{html.escape('; '.join(r.failures))}</td></tr>" for r in results
    )
    (out_dir / "index.html").write_text(
        f"<!doctype html><meta charset='utf-8'><title>scorehouse gates</title><h1>Gates {now:%Y-%m-%d %H:%M}</h1>"
        f"<table border=1 cellpadding=4><tr><th>table</th><th>result</th><th>checks</th><th>failures</th></tr>{rows}</table>"
    )
    failed = [r for r in results if not r.success]
    if failed and raise_on_failure:
        detail = "\n".join(f"  - {f}" for r in failed for f in r.failures)
        raise GateFailure(f"{len(failed)} gate(s) failed (results in {out_dir}):\n{detail}")
    return results
