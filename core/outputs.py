"""The tables Python jobs write (scores, the model registry, content topics, published runs), created from their
one definition: the dbt sources file `dbt_project/models/outputs/_outputs__sources.yml`.

dbt's on-run-start hook (macro `create_python_outputs`) creates the same tables from the same file, so a plain
`dbt build` on a warehouse holding only raw data builds the reports over empty score tables, and a Python job
that runs first finds the tables dbt will read. Both write each description as a comment in the warehouse.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import yaml

from core.config import PROJECT_ROOT
from core.spark import ensure_table
from core.warehouse import is_spark

OUTPUTS_FILE = PROJECT_ROOT / "dbt_project" / "models" / "outputs" / "_outputs__sources.yml"
OUTPUT_TAG = "python_output"


@dataclass(frozen=True)
class OutputColumn:
    name: str
    data_type: str
    description: str
    not_null: bool
    primary_key: bool


@dataclass(frozen=True)
class OutputTable:
    schema: str
    name: str
    description: str
    columns: tuple[OutputColumn, ...]

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


def _column(entry: dict) -> OutputColumn:
    kinds = {c["type"] for c in entry.get("constraints", [])}
    return OutputColumn(entry["name"], entry["data_type"], " ".join(entry["description"].split()),
                        "not_null" in kinds, "primary_key" in kinds)


@cache
def output_tables() -> dict[str, OutputTable]:
    """Every Python-written table, keyed `schema.table`, in the file's order."""
    document = yaml.safe_load(OUTPUTS_FILE.read_text(encoding="utf-8"))
    tables = {}
    for source in document["sources"]:
        if OUTPUT_TAG not in source.get("tags", []):
            continue
        for table in source["tables"]:
            found = OutputTable(source["schema"], table["name"], " ".join(table["description"].split()),
                                tuple(_column(c) for c in table["columns"]))
            tables[found.qualified] = found
    return tables


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def output_ddl(table: OutputTable) -> str:
    """Create the table if it is missing, add columns an older warehouse lacks, and (re)write its comments."""
    columns = ", ".join(
        f"{c.name} {c.data_type}{' not null' if c.not_null else ''}{' primary key' if c.primary_key else ''}"
        for c in table.columns)
    statements = [f"create schema if not exists {table.schema}",
                  f"create table if not exists {table.qualified} ({columns})"]
    # a column added to the file after a warehouse was made: DuckDB adds columns without constraints
    statements += [f"alter table {table.qualified} add column if not exists {c.name} {c.data_type}"
                   for c in table.columns]
    statements.append(f"comment on table {table.qualified} is {_literal(table.description)}")
    statements += [f"comment on column {table.qualified}.{c.name} is {_literal(c.description)}"
                   for c in table.columns]
    return ";\n".join(statements) + ";"


def ensure_outputs(con, schema: str, *names: str) -> None:
    """Create (or bring up to date) the schema's output tables, or only the named ones."""
    for table in output_tables().values():
        if table.schema == schema and (not names or table.name in names):
            if is_spark(con):
                ensure_table(con, table.schema, table.name,
                             [(c.name, c.data_type, c.description) for c in table.columns], table.description)
            else:
                con.execute(output_ddl(table))
