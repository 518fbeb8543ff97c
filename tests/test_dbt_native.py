"""The project as a data team's dbt CI sees it: plain `dbt build` and `dbt test` on a warehouse holding only raw
data, and every public table documented, in dbt's manifest and as comments in the warehouse."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from core.config import PROJECT_ROOT
from core.outputs import output_tables
from ingest.landing import land_raw
from simulator import SimulationConfig, simulate
from tests.conftest import isolated_settings

pytestmark = pytest.mark.slow
DBT = Path(sys.executable).parent / "dbt"


def _public_tables() -> list[str]:
    """`schema.table` for every row of the README's table list (the first table under "## The tables")."""
    text = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## The tables", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| `")]
    names = [name for row in rows for name in re.findall(r"`([a-z_]+\.[a-z_]+)`", row.split("|")[1])]
    assert len(names) >= 24, names
    return names


def _dbt(command: str, root: Path, warehouse: Path) -> subprocess.CompletedProcess:
    """`dbt <command>` from the project folder, as a CI job runs it: only the warehouse path and where dbt writes its
    own files come from the environment."""
    env = {**os.environ, "SCOREHOUSE_WAREHOUSE": str(warehouse), "DBT_TARGET_PATH": str(root / "target"),
           "DBT_LOG_PATH": str(root / "logs"), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    return subprocess.run([str(DBT), command], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def plain_dbt(tmp_path_factory):
    """Raw data landed, then `dbt build` and `dbt test` and nothing else: no topics, training or scoring."""
    root = tmp_path_factory.mktemp("plain_dbt")
    settings = isolated_settings(root)
    simulate(SimulationConfig(leads=300, seed=5), settings.raw_dir)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        land_raw(con, settings.raw_dir)
    runs = {command: _dbt(command, root, settings.warehouse_path) for command in ("build", "test")}
    return settings.warehouse_path, root, runs


def test_plain_dbt_build_then_dbt_test_pass_on_a_warehouse_with_only_raw_data(plain_dbt):
    warehouse, root, runs = plain_dbt
    for command, run in runs.items():
        assert run.returncode == 0, f"dbt {command} failed:\n{run.stdout[-4000:]}\n{run.stderr[-2000:]}"
    results = json.loads((root / "target" / "run_results.json").read_text())["results"]  # dbt test's
    tests = [r for r in results if r["unique_id"].split(".")[0] in ("test", "unit_test")]
    assert len(tests) > 100 and {r["status"] for r in tests} == {"pass"}
    # the score tables' own tests ran too, on the empty tables the hook made
    assert any("source_not_null_scores_lead_scores_lead_id" in r["unique_id"] for r in tests)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        # the reports were built, over score tables the hook created empty
        assert con.execute("select count(*) from scores.lead_scores").fetchone()[0] == 0
        assert con.execute("select count(*) from marts.rpt_lead_worklist").fetchone()[0] == 0
        assert con.execute("select count(*) from marts.fct_lead_features").fetchone()[0] > 1000
        for table in output_tables().values():
            columns = con.execute("select column_name, data_type, is_nullable from information_schema.columns "
                                  "where table_schema = ? and table_name = ? order by ordinal_position",
                                  [table.schema, table.name]).fetchall()
            assert [(c.name, c.data_type.upper(), "NO" if c.not_null else "YES") for c in table.columns] == columns, \
                table.qualified


def _undocumented(manifest: dict, con, public: list[str]) -> list[str]:
    """Every public table's columns that lack a description in the manifest or a comment in the warehouse."""
    described: dict[str, dict[str, str]] = {}
    for node in [*manifest["nodes"].values(), *manifest["sources"].values()]:
        if node["resource_type"] in ("model", "seed", "source"):
            name = f"{node['schema']}.{node.get('identifier') or node.get('alias') or node['name']}"
            described[name] = {c: v.get("description", "") for c, v in node["columns"].items()}
    missing = []
    for table in public:
        schema, name = table.split(".")
        comments = dict(con.execute("select column_name, comment from duckdb_columns() "
                                    "where schema_name = ? and table_name = ?", [schema, name]).fetchall())
        if not comments:
            missing.append(f"{table}: not in the warehouse")
        for column, comment in comments.items():
            if not described.get(table, {}).get(column, "").strip():
                missing.append(f"{table}.{column}: no description in the manifest")
            if not (comment or "").strip():
                missing.append(f"{table}.{column}: no comment in the warehouse")
    return missing


def test_every_public_table_has_column_docs_in_the_manifest_and_comments_in_the_warehouse(plain_dbt, pipeline_run):
    """Both warehouses: the one plain dbt built (tables made by the hook), and a whole run (made by Python)."""
    public = _public_tables()
    warehouse, root, _runs = plain_dbt
    dbt_manifest = json.loads((root / "target" / "manifest.json").read_text())
    settings, _report = pipeline_run
    run_manifest = json.loads((settings.artifacts_dir / "dbt_target" / "manifest.json").read_text())
    with duckdb.connect(str(warehouse), read_only=True) as con:
        plain = _undocumented(dbt_manifest, con, public)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        whole = _undocumented(run_manifest, con, public)
    assert plain == [] and whole == [], (plain, whole)
