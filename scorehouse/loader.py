"""Load your own CSV or Parquet exports into the raw schema, checked against the source contract.

Every input row ends up either in `raw.<source>` or in `raw._load_rejects` with the file, line, field and
reason; `raw._load_log` records each file once (by content hash) with its reconciliation:
rows read = rows loaded + rows rejected. Re-loading the same file adds nothing. A mapping file
(YAML) renames your columns and values to the contract's and sets the CSV dialect:

    delimiter: ";"            # default: detected
    encoding: latin-1         # default: utf-8
    date_format: "%d/%m/%Y %H:%M"   # default: ISO 8601 and a few common forms
    columns: {Lead ID: lead_id, Created: created_at}
    values: {lead_source: {"Google Ads": Paid Search}}
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import yaml

from scorehouse.config import Settings
from scorehouse.contract import BY_NAME, SourceTable
from scorehouse.warehouse import connect

DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d", "%d/%m/%Y %H:%M", "%d/%m/%Y", "%m/%d/%Y")
TRUE_WORDS = ("true", "t", "yes", "y", "1")
FALSE_WORDS = ("false", "f", "no", "n", "0")
FUTURE_TOLERANCE_HOURS = 24

LOG_DDL = """
create schema if not exists raw;
create table if not exists raw._load_log (
    load_id varchar, source_table varchar, source_file varchar, file_sha256 varchar, loaded_at timestamp,
    rows_read bigint, rows_loaded bigint, rows_rejected bigint
);
create table if not exists raw._load_rejects (
    load_id varchar, source_table varchar, source_file varchar, line bigint, field varchar, value varchar,
    reason varchar, raw_line varchar
);
"""


class LoadError(ValueError):
    """A file that cannot be loaded at all (nothing is written)."""


@dataclass
class LoadReport:
    source: str
    file: Path
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    already_loaded: bool = False
    warnings: list[str] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)

    @property
    def reconciles(self) -> bool:
        return self.rows_read == self.rows_loaded + self.rows_rejected


def _normalise(name: str) -> str:
    """'Lead ID ' -> 'lead_id'; a leading underscore (as in _loaded_at) is kept."""
    text = re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")
    return "_" + text if name.strip().startswith("_") else text


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sniff_delimiter(path: Path) -> str:
    """The candidate that splits the header line into the most fields."""
    with path.open("rb") as handle:
        header = handle.readline().decode("latin-1")
    return max(",;\t|", key=header.count) if any(d in header for d in ",;\t|") else ","


def _parse_expression(column: str, type_: str, date_format: str | None) -> str:
    """SQL that reads a text value as the contract type, or NULL when it cannot."""
    value = f"nullif(trim({_ident(column)}), '')"
    if type_ == "varchar":
        return value
    if type_ in ("integer", "double"):
        return f"try_cast({value} as {'bigint' if type_ == 'integer' else 'double'})"
    if type_ == "boolean":
        return (f"case when lower({value}) in ({', '.join(map(_quote, TRUE_WORDS))}) then true "
                f"when lower({value}) in ({', '.join(map(_quote, FALSE_WORDS))}) then false end")
    formats = (date_format,) if date_format else DATE_FORMATS
    parsed = ", ".join([f"try_cast({value} as timestamp)"] * (date_format is None)
                       + [f"try_strptime({value}, {_quote(f)})" for f in formats])
    expression = f"coalesce({parsed})"
    return f"cast({expression} as date)" if type_ == "date" else expression


def _table_ddl(source: SourceTable) -> str:
    columns = ", ".join(f"{_ident(c.name)} {c.type}" for c in source.columns)
    lineage = ("_source_file varchar", "_source_line bigint", "_extra varchar")
    return (f"create table if not exists raw.{source.name} ({columns}, {', '.join(lineage)});"
            + "".join(f"alter table raw.{source.name} add column if not exists {c};" for c in lineage))


def _data_rows(path: Path, con) -> int:
    """Rows in the file, counted independently of the parser: the reconciliation's left-hand side."""
    if path.suffix.lower() == ".parquet":
        return int(con.execute(f"select count(*) from read_parquet({_quote(str(path))})").fetchall()[0][0])
    return sum(1 for line in path.read_bytes().splitlines()[1:] if line.strip())


def load_file(settings: Settings, source_name: str, path: Path, mapping_path: Path | None = None) -> LoadReport:
    """Load one file into raw.<source_name>; raises LoadError when the file as a whole is unusable."""
    if source_name not in BY_NAME:
        raise LoadError(f"{path}: unknown source {source_name!r}; the sources are: {', '.join(sorted(BY_NAME))}")
    source = BY_NAME[source_name]
    path = Path(path)
    if not path.is_file():
        raise LoadError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise LoadError(f"{path}: the file is empty (no header, no rows)")
    mapping = yaml.safe_load(mapping_path.read_text()) if mapping_path else {}
    mapping = mapping or {}
    report = LoadReport(source_name, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    load_id = f"{source_name}-{digest[:16]}"
    now = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)

    with connect(settings) as con:
        con.execute(LOG_DDL)
        con.execute(_table_ddl(source))
        seen = con.execute(
            "select rows_read, rows_loaded, rows_rejected from raw._load_log where source_table = ? and file_sha256 = ?",
            [source_name, digest],
        ).fetchall()
        if seen:
            report.rows_read, report.rows_loaded, report.rows_rejected = seen[0]
            report.already_loaded = True
            return report

        suffix = path.suffix.lower()
        if suffix == ".parquet":
            con.execute(f"create or replace temp table incoming_raw as "
                        f"select * from read_parquet({_quote(str(path))})")
            con.execute("create or replace temp table file_rejects as "
                        "select 0::bigint as line, ''::varchar as field, ''::varchar as error, ''::varchar as raw_line "
                        "where false")
            # Parquet has no text lines: the row's position stands in for the line.
            con.execute("create or replace temp table incoming as select *, row_number() over () as _line "
                        "from (select columns(*)::varchar from incoming_raw)")
        elif suffix in (".csv", ".txt", ".tsv"):
            encoding = str(mapping.get("encoding", "utf-8")).lower().replace("_", "-")
            if encoding not in ("utf-8", "utf8", "latin-1", "latin1", "iso-8859-1", "utf-16"):
                raise LoadError(f"{path}: encoding {encoding!r} is not supported (utf-8, latin-1, utf-16)")
            delimiter = mapping.get("delimiter") or _sniff_delimiter(path)
            options = (f"all_varchar = true, header = true, store_rejects = true, delim = {_quote(delimiter)}, "
                       f"encoding = {_quote('latin-1' if encoding in ('latin1', 'iso-8859-1') else encoding)}, "
                       f"null_padding = false, strict_mode = true")
            try:
                con.execute("drop table if exists reject_errors; drop table if exists reject_scans")
            except Exception:  # noqa: BLE001 - temp reject tables may not exist yet
                pass
            try:
                con.execute(f"create or replace temp table incoming_raw as "
                            f"select * from read_csv({_quote(str(path))}, {options})")
            except Exception as error:  # noqa: BLE001 - DuckDB reports unreadable files as generic errors
                raise LoadError(f"{path}: cannot be read as CSV: {str(error).splitlines()[0]}") from error
            # One row per rejected line (a short line reports each missing column separately).
            con.execute("create or replace temp table file_rejects as select line, "
                        "string_agg(distinct coalesce(column_name, ''), ', ') as field, "
                        "min(error_type || ': ' || error_message) as error, min(csv_line) as raw_line "
                        "from reject_errors group by line")
            bad_lines = {r[0] for r in con.execute("select distinct line from file_rejects").fetchall()}
            good = int(con.execute("select count(*) from incoming_raw").fetchall()[0][0])
            lines, line = [], 1
            while len(lines) < good:  # data lines start after the header (line 1), skipping rejected lines
                line += 1
                if line not in bad_lines:
                    lines.append(line)
            con.register("good_lines", pd.DataFrame({"_line": lines, "_pos": range(1, good + 1)}))
            con.execute("create or replace temp table incoming as select r.*, g._line from "
                        "(select *, row_number() over () as _pos from incoming_raw) r join good_lines g using (_pos)")
            con.execute("alter table incoming drop column _pos")
        else:
            raise LoadError(f"{path}: unsupported file type {suffix!r} (use .csv or .parquet)")

        # Map the file's column names onto the contract.
        file_columns = [r[0] for r in con.execute("describe incoming").fetchall() if r[0] != "_line"]
        renames = {k: v for k, v in (mapping.get("columns") or {}).items()}
        target_of = {}
        for column in file_columns:
            target = renames.get(column) or _normalise(column)
            if target in target_of.values():
                raise LoadError(f"{path}: two columns map to {target!r}")
            target_of[column] = target
        contract_names = {c.name for c in source.columns}
        present = set(target_of.values())
        missing = [c for c in source.required if c not in present and c != "_loaded_at"]
        if missing:
            raise LoadError(f"{path}: missing required column(s) {', '.join(missing)} for {source_name} "
                            f"(columns found: {', '.join(file_columns)}); map them with --mapping")
        extra = [c for c in file_columns if target_of[c] not in contract_names]
        if extra:
            report.warnings.append(f"kept in _extra (not in the contract): {', '.join(extra)}")
        select = [f"{_ident(src)} as {_ident(dst)}" for src, dst in target_of.items() if dst in contract_names]
        select += [f"cast(null as varchar) as {_ident(c.name)}" for c in source.columns if c.name not in present]
        extra_json = ("to_json(struct_pack(" + ", ".join(f"{_ident(_normalise(c))} := {_ident(c)}" for c in extra) + "))"
                      if extra else "cast(null as varchar)")
        con.execute(f"create or replace temp table mapped as select {', '.join(select)}, {extra_json} as _extra, "
                    f"_line from incoming")
        for column, values in (mapping.get("values") or {}).items():
            for old, new in values.items():
                con.execute(f"update mapped set {_ident(column)} = ? where trim({_ident(column)}) = ?", [str(new), str(old)])

        # Read every column as its contract type and give each row its first problem.
        date_format = mapping.get("date_format")
        parsed = {c.name: _parse_expression(c.name, c.type, date_format) for c in source.columns}
        if "_loaded_at" not in present:
            parsed["_loaded_at"] = f"timestamp {_quote(str(now))}"
        checks = []
        for c in source.columns:
            raw_value = f"nullif(trim({_ident(c.name)}), '')"
            if c.required and not (c.name == "_loaded_at" and "_loaded_at" not in present):
                checks.append((f"{raw_value} is null", _quote(c.name), f"'missing required field {c.name}'"))
            if c.type != "varchar":
                checks.append((f"{raw_value} is not null and ({parsed[c.name]}) is null", _quote(c.name),
                               f"'cannot read ' || {raw_value} || ' as {c.type}'"))
        event = parsed[source.event_time]
        checks.append((f"({event}) > ({parsed['_loaded_at']}) + interval {FUTURE_TOLERANCE_HOURS} hour",
                       _quote(source.event_time), "'event time after the row was loaded (in the future)'"))
        key_expr = source.key
        checks.append((f"row_number() over (partition by {key_expr} order by _line) > 1", _quote(source.key),
                       "'duplicate key within the file'"))
        reason = "case " + " ".join(f"when {cond} then {msg}" for cond, _, msg in checks) + " end"
        field_of = "case " + " ".join(f"when {cond} then {fld}" for cond, fld, _ in checks) + " end"
        con.execute(f"create or replace temp table checked as select *, {reason} as _reason, {field_of} as _field "
                    f"from mapped")
        existing_key = f"{key_expr} in (select {key_expr} from raw.{source.name})"
        con.execute(f"update checked set _reason = 'duplicate of a row already loaded', _field = {_quote(source.key)} "
                    f"where _reason is null and {existing_key}")

        typed = ", ".join(f"{parsed[c.name]} as {_ident(c.name)}" for c in source.columns)
        con.execute("begin transaction")
        try:
            con.execute(f"insert into raw.{source.name} by name select {typed}, {_quote(str(path))} as _source_file, "
                        f"_line as _source_line, _extra from checked where _reason is null")
            con.execute(
                "insert into raw._load_rejects select ?, ?, ?, line, field, null, error, raw_line from file_rejects",
                [load_id, source_name, str(path)],
            )
            value_of = "case _field " + " ".join(
                f"when {_quote(c.name)} then cast({_ident(c.name)} as varchar)" for c in source.columns) + " end"
            con.execute(
                f"insert into raw._load_rejects select ?, ?, ?, _line, _field, {value_of}, _reason, null "
                f"from checked where _reason is not null",
                [load_id, source_name, str(path)],
            )
            loaded = int(con.execute("select count(*) from checked where _reason is null").fetchall()[0][0])
            rejected = int(con.execute(
                "select (select count(*) from file_rejects) + (select count(*) from checked where _reason is not null)"
            ).fetchall()[0][0])
            report.rows_loaded, report.rows_rejected = loaded, rejected
            report.rows_read = _data_rows(path, con)
            if not report.reconciles:
                raise LoadError(f"{path}: {report.rows_read} rows read but {loaded} loaded + {rejected} rejected; "
                                "nothing was written")
            con.execute("insert into raw._load_log values (?, ?, ?, ?, ?, ?, ?, ?)",
                        [load_id, source_name, str(path), digest, now, report.rows_read, loaded, rejected])
            con.execute("commit")
        except Exception:
            con.execute("rollback")
            raise
        for reason_text, count in con.execute(
            "select reason, count(*) from raw._load_rejects where load_id = ? group by 1 order by 2 desc", [load_id]
        ).fetchall():
            report.reasons[reason_text] = int(count)
    return report
