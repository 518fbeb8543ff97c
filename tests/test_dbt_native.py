"""The project as a data team's dbt CI sees it: plain `dbt build` and `dbt test` on a warehouse holding only raw
data, and every public table documented, in dbt's manifest and as comments in the warehouse."""

from __future__ import annotations

import csv
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


def _project_copy(folder: Path) -> Path:
    """The project as `mf` wants it (it reads `target/semantic_manifest.json` under the folder it runs in), with the
    repository's models linked in, so the test writes nothing into the repository."""
    folder.mkdir()
    (folder / "dbt_project").symlink_to(PROJECT_ROOT / "dbt_project")
    for name in ("dbt_project.yml", "profiles.yml"):
        (folder / name).write_text((PROJECT_ROOT / name).read_text())
    return folder


def _metrics(project: Path, warehouse: Path, metrics: str, group_by: str) -> list[dict]:
    env = {**os.environ, "SCOREHOUSE_WAREHOUSE": str(warehouse), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    out = project / f"{metrics.replace(',', '_')}.csv"
    run = subprocess.run([str(DBT.parent / "mf"), "query", "--metrics", metrics, "--group-by", group_by,
                          "--csv", str(out)], cwd=project, env=env, capture_output=True, text=True, check=False)
    assert run.returncode == 0 and out.exists(), run.stdout[-3000:] + run.stderr[-3000:]
    with open(out, newline="") as file:
        return list(csv.DictReader(file))


def test_semantic_metrics_queried_through_metricflow_equal_plain_sql(pipeline_run, tmp_path):
    settings, _report = pipeline_run
    warehouse = tmp_path / "warehouse.duckdb"
    warehouse.write_bytes(settings.warehouse_path.read_bytes())
    with duckdb.connect(str(warehouse)) as con:
        # an earlier scoring run of leads whose outcome is now known, so realised and predicted rates have rows
        con.execute("""
            insert into scores.lead_score_history (lead_id, as_of_date, scored_at, model_version,
                conversion_probability, score, tier, is_above_threshold)
            select lead_id, as_of_date, timestamp '2001-01-01 06:00:00', 'earlier-run', 0.25, 25, 'B', false
            from marts.fct_lead_features
            where as_of_date = (select max(as_of_date) from marts.fct_lead_features where is_label_observed)""")
        realised = con.execute("""select avg(label_converted), count(*) from marts.fct_lead_features
            where as_of_date = (select max(as_of_date) from marts.fct_lead_features where is_label_observed)""").fetchone()
        by_tier = dict(con.execute("select tier, count(*) from scores.lead_score_history group by tier").fetchall())
        churn_by_contract = dict(con.execute("""
            select coalesce(f.contract_type, ''), avg(h.churn_probability)
            from scores.customer_churn_score_history h
            left join marts.fct_customer_features f on h.account_id = f.account_id and h.as_of_date = f.as_of_date
            group by 1""").fetchall())
    assert realised[1] > 100 and 0 < realised[0] < 1
    project = _project_copy(tmp_path / "project")
    parse = subprocess.run([str(DBT), "parse", "--quiet"], cwd=project, check=False, capture_output=True, text=True,
                           env={**os.environ, "SCOREHOUSE_WAREHOUSE": str(warehouse)})
    assert parse.returncode == 0, parse.stdout[-3000:]

    leads = _metrics(project, warehouse, "lead_scores_written,lead_conversion_rate,predicted_conversion_rate",
                     "lead_score__tier")
    assert {r["lead_score__tier"]: int(r["lead_scores_written"]) for r in leads} == by_tier
    tier_b = next(r for r in leads if r["lead_score__tier"] == "B")
    # only the earlier run's rows have a known outcome, all in tier B
    assert float(tier_b["lead_conversion_rate"]) == pytest.approx(realised[0])
    assert float(tier_b["predicted_conversion_rate"]) == pytest.approx(0.25)
    assert all(r["lead_conversion_rate"] in ("", None) for r in leads if r["lead_score__tier"] != "B")

    churn = _metrics(project, warehouse, "mean_churn_risk", "churn_score__contract_type")
    assert {r["churn_score__contract_type"] or "": pytest.approx(float(r["mean_churn_risk"])) for r in churn} \
        == churn_by_contract


# column names that hold, or with a company name can single out, a person's data
PERSONAL_COLUMNS = {"title", "city", "email", "first_name", "last_name", "full_name", "phone", "ip_address"}
READERS = {"sales_worklist_crm_sync": "model.scorehouse.rpt_lead_worklist",
           "crm_score_export": "source.scorehouse.meta.crm_export_state",
           "at_risk_customers_cs_tool": "model.scorehouse.rpt_at_risk_customers",
           "revenue_scoring_dashboard": "metric.scorehouse.lead_conversion_rate"}


def test_readers_groups_access_and_personal_data_are_declared(plain_dbt):
    _warehouse, root, _runs = plain_dbt
    manifest = json.loads((root / "target" / "manifest.json").read_text())
    exposures = {e["name"]: e for e in manifest["exposures"].values()}
    for name, needed in READERS.items():
        assert exposures[name]["owner"]["email"] and needed in exposures[name]["depends_on"]["nodes"], name
    models = [n for n in manifest["nodes"].values() if n["resource_type"] == "model"]
    for model in models:
        public = model["original_file_path"].split("/")[2] in ("marts", "reporting", "semantic")
        assert model["group"] and model["access"] == ("public" if public else "protected"), model["name"]
    personal = [(n["name"], c["name"], c.get("meta", {}).get("pii"))
                for n in [*models, *manifest["sources"].values()] for c in n["columns"].values()
                if c["name"] in PERSONAL_COLUMNS]
    assert personal and all(pii for _model, _column, pii in personal), personal
    # score tables carry ids only: nothing personal
    score_columns = {c for t in output_tables().values() if t.schema == "scores" for c in (x.name for x in t.columns)}
    assert not score_columns & PERSONAL_COLUMNS


def _exceptions(node: dict) -> dict:
    return (node.get("config", {}).get("meta") or node.get("meta") or {}).get("rule_exceptions", {})


def test_models_follow_the_projects_dbt_rules_or_state_why_not(plain_dbt):
    """Only staging reads sources, one source table per staging model, from the source system of its folder (each
    system has its own sources file there); every model has a primary-key test in a
    standard form (unique and not_null on a column, or unique_combination_of_columns). Exceptions carry their
    reason in the model's meta (`rule_exceptions`), the one place they are written."""
    _warehouse, root, _runs = plain_dbt
    manifest = json.loads((root / "target" / "manifest.json").read_text())
    models = {n["unique_id"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    keyed: dict[str, set] = {}
    for test in (n for n in manifest["nodes"].values() if n["resource_type"] == "test"):
        kind = (test.get("test_metadata") or {}).get("name")
        keyed.setdefault(test.get("attached_node") or "", set()).add((kind, test.get("column_name")))
    broken = []
    for uid, model in models.items():
        sources = [d for d in model["depends_on"]["nodes"] if d.startswith("source.")]
        staging = model["original_file_path"].split("/")[2] == "staging"
        if sources and not staging:
            broken.append(f"{model['name']} reads a source outside staging")
        if len(sources) > 1 and "reads_many_sources" not in _exceptions(model):
            broken.append(f"{model['name']} reads {len(sources)} sources")
        folder = model["original_file_path"].split("/")[3] if staging else None
        if staging and len(sources) == 1 and sources[0].split(".")[2] != folder:
            broken.append(f"{model['name']} in staging/{folder} reads {sources[0]}, another system's source")
        tests = keyed.get(uid, set())
        standard = any(kind == "unique_combination_of_columns" for kind, _c in tests) or bool(
            {c for kind, c in tests if kind == "unique"} & {c for kind, c in tests if kind == "not_null"})
        if not standard and "primary_key" not in _exceptions(model):
            broken.append(f"{model['name']} has no primary-key test")
    assert broken == []
    # the rule can fail: the exceptions are few and each says why
    excepted = {m["name"]: _exceptions(m) for m in models.values() if _exceptions(m)}
    assert set(excepted) == {"stg_rejected_rows", "int_lead_observed_through", "int_observed_through"}
    assert all(len(reason) > 20 for rules in excepted.values() for reason in rules.values())


def test_sql_source_lines_fit_in_120_characters():
    """The line-length rule sqlfluff leaves out (it measures lines after macros expand; .sqlfluff says why)."""
    long = [f"{path.relative_to(PROJECT_ROOT)}:{number}"
            for folder in ("models", "tests") for path in sorted((PROJECT_ROOT / "dbt_project" / folder).rglob("*.sql"))
            for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if len(line) > 120]
    assert long == []
