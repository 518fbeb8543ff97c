"""Great Expectations gates on raw sources and score tables, run through the file data context
(`expectations/context.py`; the suites are `expectations/suites.py`) on DataFrames read from the warehouse (GX's SQL
datasource returns empty results on DuckDB, so the data is handed over as DataFrames, the same way on either engine).

Each run's validation results are kept in the context's copy under the artifacts folder, and the Data Docs site
there (`<artifacts>/gx/context/gx/uncommitted/data_docs/local_site/index.html`) is rebuilt from them. A failing
gate raises GateFailure naming the check, the table and example values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pandas as pd

from core.config import Settings
from core.contract import SOURCES
from core.warehouse import connect, fixed_sample_sql, table_exists
from expectations.context import docs_index, open_context
from expectations.suites import LATEST_EVENT_TIME, SCORE_TABLES, suite_definitions

SAMPLE_ROWS = 200_000  # row-level checks on raw tables use a fixed sample; score tables are checked whole


class GateFailure(RuntimeError):
    pass


@dataclass
class GateResult:
    table: str
    success: bool
    failures: list[str]
    checks: int


def _validate(context, suite: str, frame: pd.DataFrame, parameters: dict, stored: list) -> GateResult:
    name = suite.replace(".", "_")
    result = context.checkpoints.get(suite).run(batch_parameters={"dataframe": frame},
                                                expectation_parameters=parameters)
    stored += list(result.run_results)
    failures, checks = [], 0
    for validation in result.run_results.values():
        checks += len(validation.results)
        for r in validation.results:
            if not r.success:
                config = r.expectation_config
                column = config.kwargs.get("column", "")
                examples = (r.result or {}).get("partial_unexpected_list") or []
                failures.append(f"{config.type} on {name}.{column} failed; examples: {examples[:5]}")
    return GateResult(name, bool(result.success), failures, checks)


def run_gates(settings: Settings, which: str = "all", raise_on_failure: bool = True) -> list[GateResult]:
    """which: 'raw', 'scores' or 'all'. Rebuilds the Data Docs site with this run's results."""
    context = open_context(settings)
    latest = datetime.now(timezone.utc).replace(tzinfo=None) + timedelta(days=1)
    results, stored = [], []
    with connect(settings, read_only=True) as con:
        if which in ("raw", "all"):
            for source in SOURCES:
                if not table_exists(con, "raw", source.name):
                    continue
                frame = con.execute(fixed_sample_sql(con, f"select * from raw.{source.name}", SAMPLE_ROWS,
                                                     source.key)).df()
                results.append(_validate(context, f"raw.{source.name}", frame, {LATEST_EVENT_TIME: latest}, stored))
        if which in ("scores", "all"):
            for table in SCORE_TABLES:
                if not table_exists(con, "scores", table):
                    continue
                frame = con.execute(f"select * from scores.{table}").df()
                if frame.empty:
                    continue
                results.append(_validate(context, f"scores.{table}", frame, {}, stored))
    # the suites' pages and this run's results only (the index still lists every earlier run): rebuilding every
    # earlier run's pages would take longer with each run
    from great_expectations.data_context.types.resource_identifiers import ExpectationSuiteIdentifier

    suites = [ExpectationSuiteIdentifier(name) for name in suite_definitions()]
    context.build_data_docs(resource_identifiers=[*suites, *stored])
    failed = [r for r in results if not r.success]
    if failed and raise_on_failure:
        detail = "\n".join(f"  - {f}" for r in failed for f in r.failures)
        raise GateFailure(f"{len(failed)} gate(s) failed (Data Docs: {docs_index(settings)}):\n{detail}")
    return results

