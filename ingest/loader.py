"""Load your own CSV or Parquet exports into the raw schema, checked against the source contract.

Every input row ends up either in `raw.<source>` or in `raw._load_rejects` with the file, line, field and
reason; `raw._load_log` records each file once (by content hash) with its reconciliation:
rows read = rows loaded + rows rejected. Re-loading the same file adds nothing. A mapping file
(YAML) renames your columns and values to the contract's and sets the CSV dialect:

    delimiter: ";"            # default: detected from the header line
    encoding: latin-1         # default: utf-8
    date_format: "%d/%m/%Y %H:%M"   # default: ISO 8601 and a few common forms
    columns: {Lead ID: lead_id, Created: created_at}
    values: {lead_source: {"Google Ads": Paid Search}}
    known_at: {budget_status: after_outcome}   # when a field is known: at_creation, after_contact, after_outcome

A field declared known only after the outcome never reaches a contract column, so no feature can read it: its
values are kept in `_extra` (JSON) and the declaration is recorded in `raw._load_log.known_at`.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from core.contract import BY_NAME, SourceTable
from core.warehouse import Connection, transaction

ENCODINGS = {"utf-8": "utf-8", "utf8": "utf-8", "latin-1": "latin-1", "latin1": "latin-1", "iso-8859-1": "latin-1",
             "utf-16": "utf-16"}
DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d", "%d/%m/%Y %H:%M", "%d/%m/%Y", "%m/%d/%Y")
TRUE_WORDS = ("true", "t", "yes", "y", "1")
FALSE_WORDS = ("false", "f", "no", "n", "0")
FUTURE_TOLERANCE_HOURS = 24
KNOWN_AT = ("at_creation", "after_contact", "after_outcome")

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
alter table raw._load_log add column if not exists known_at varchar;
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


def _csv_dialect(path: Path, mapping: dict) -> tuple[str, str]:
    """(delimiter, encoding) of a CSV file: the mapping's, else the delimiter the standard library's sniffer
    finds in the header line among , ; tab and |."""
    encoding = ENCODINGS.get(str(mapping.get("encoding", "utf-8")).lower().replace("_", "-"))
    if encoding is None:
        raise LoadError(f"{path}: encoding {mapping['encoding']!r} is not supported (utf-8, latin-1, utf-16)")
    if mapping.get("delimiter"):
        return str(mapping["delimiter"]), encoding
    with path.open(encoding=encoding, errors="replace", newline="") as handle:
        header = handle.readline()
    try:
        return csv.Sniffer().sniff(header, delimiters=",;\t|").delimiter, encoding
    except csv.Error:  # one column, or nothing to tell between candidates
        return ",", encoding


def _csv_records(path: Path, delimiter: str, encoding: str) -> int:
    """Data records in a CSV file, counted by the standard library's reader (quoted delimiters and line breaks
    inside fields count once), independently of the parser that loads them: the reconciliation's left side.
    A blank line is no record; a line of spaces is one (it is rejected, not lost)."""
    text = path.read_bytes().decode(encoding, errors="replace")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    return max(0, sum(1 for record in reader if record) - 1)


def _stage_csv(con: Connection, path: Path, mapping: dict) -> int:
    """DuckDB's CSV reader into temp tables `incoming` (the good rows, with their record number `_line`) and
    `file_rejects` (one row per record the reader refused); returns the records in the file."""
    delimiter, encoding = _csv_dialect(path, mapping)
    options = (f"all_varchar = true, header = true, store_rejects = true, delim = {_quote(delimiter)}, "
               f"encoding = {_quote(encoding)}, null_padding = false, strict_mode = true")
    con.execute("drop table if exists reject_errors; drop table if exists reject_scans")
    try:
        con.execute(f"create or replace temp table incoming_raw as "
                    f"select *, row_number() over () as _pos from read_csv({_quote(str(path))}, {options})")
    except Exception as error:  # noqa: BLE001 - DuckDB reports unreadable files as generic errors
        raise LoadError(f"{path}: cannot be read as CSV: {str(error).splitlines()[0]}") from error
    # One row per rejected record (a short record reports each missing column separately).
    con.execute("create or replace temp table file_rejects as select line, "
                "string_agg(distinct coalesce(column_name, ''), ', ') as field, "
                "min(error_type || ': ' || error_message) as error, min(csv_line) as raw_line "
                "from reject_errors group by line")
    records = _csv_records(path, delimiter, encoding)
    # The reader numbers records (the header is 1); the good rows are the others, in file order.
    bad = [r[0] for r in con.execute("select line from file_rejects").fetchall()]
    good = np.setdiff1d(np.arange(2, records + 2), bad)
    con.register("good_lines", pd.DataFrame({"_pos": np.arange(1, len(good) + 1), "_line": good}))
    con.execute("create or replace temp table incoming as select r.* exclude (_pos), g._line "
                "from incoming_raw r join good_lines g using (_pos)")
    con.unregister("good_lines")
    return records


def _stage_parquet(con: Connection, path: Path) -> int:
    """A Parquet file into `incoming` (every column as text; the row's position stands in for the line)."""
    con.execute("create or replace temp table file_rejects as "
                "select 0::bigint as line, ''::varchar as field, ''::varchar as error, ''::varchar as raw_line "
                "where false")
    con.execute(f"create or replace temp table incoming as select *, row_number() over () as _line "
                f"from (select columns(*)::varchar from read_parquet({_quote(str(path))}))")
    return int(con.execute(f"select count(*) from read_parquet({_quote(str(path))})").fetchall()[0][0])


def _map_columns(con: Connection, path: Path, source: SourceTable, mapping: dict, report: LoadReport) -> set[str]:
    """Temp table `mapped`: the file's columns renamed onto the contract (others kept as JSON in `_extra`) and
    its values mapped; returns the contract columns the file has."""
    file_columns = [r[0] for r in con.execute("describe incoming").fetchall() if r[0] != "_line"]
    renames = dict(mapping.get("columns") or {})
    target_of: dict[str, str] = {}
    for column in file_columns:
        target = renames.get(column) or _normalise(column)
        if target in target_of.values():
            raise LoadError(f"{path}: two columns map to {target!r}")
        target_of[column] = target
    contract_names = {c.name for c in source.columns}
    present = set(target_of.values())
    missing = [c for c in source.required if c not in present and c != "_loaded_at"]
    if missing:
        raise LoadError(f"{path}: missing required column(s) {', '.join(missing)} for {source.name} "
                        f"(columns found: {', '.join(file_columns)}); map them with --mapping")
    after_outcome = _after_outcome(path, source, mapping, present)
    extra = [c for c in file_columns if target_of[c] not in contract_names or target_of[c] in after_outcome]
    if extra:
        report.warnings.append(f"kept in _extra (not in the contract, or known only after the outcome): "
                               f"{', '.join(extra)}")
    select = [f"{_ident(src)} as {_ident(dst)}" for src, dst in target_of.items()
              if dst in contract_names and dst not in after_outcome]
    select += [f"cast(null as varchar) as {_ident(c.name)}" for c in source.columns
               if c.name not in present or c.name in after_outcome]
    extra_json = ("to_json(struct_pack(" + ", ".join(f"{_ident(_normalise(c))} := {_ident(c)}" for c in extra) + "))"
                  if extra else "cast(null as varchar)")
    con.execute(f"create or replace temp table mapped as select {', '.join(select)}, {extra_json} as _extra, "
                f"_line from incoming")
    for column, values in (mapping.get("values") or {}).items():
        for old, new in values.items():
            con.execute(f"update mapped set {_ident(column)} = ? where trim({_ident(column)}) = ?", [str(new), str(old)])
    return present


def _after_outcome(path: Path, source: SourceTable, mapping: dict, present: set[str]) -> set[str]:
    """The contract fields the mapping declares known only after the outcome (checked: known fields, known words,
    and no required field, which a row cannot do without)."""
    known_at = mapping.get("known_at") or {}
    if not isinstance(known_at, dict):
        raise LoadError(f"{path}: the mapping's known_at must map field names to one of {', '.join(KNOWN_AT)}")
    for name, when in known_at.items():
        if name not in {c.name for c in source.columns}:
            raise LoadError(f"{path}: the mapping's known_at names {name!r}, which is not a field of {source.name}")
        if when not in KNOWN_AT:
            raise LoadError(f"{path}: the mapping says {name!r} is known {when!r}; use one of {', '.join(KNOWN_AT)}")
    after = {name for name, when in known_at.items() if when == "after_outcome" and name in present}
    required = sorted(after & set(source.required))
    if required:
        raise LoadError(f"{path}: {', '.join(required)} is required by {source.name} and cannot be known only after "
                        "the outcome")
    return after


def _row_checks(source: SourceTable, parsed: dict[str, str], loaded_at_given: bool) -> list[tuple[str, str, str]]:
    """(condition, field, reason) for each way a row can be unusable, in the order a row's first problem is named."""
    checks = []
    for c in source.columns:
        raw_value = f"nullif(trim({_ident(c.name)}), '')"
        if c.required and (c.name != "_loaded_at" or loaded_at_given):
            checks.append((f"{raw_value} is null", _quote(c.name), f"'missing required field {c.name}'"))
        if c.type != "varchar":
            checks.append((f"{raw_value} is not null and ({parsed[c.name]}) is null", _quote(c.name),
                           f"'cannot read ' || {raw_value} || ' as {c.type}'"))
    event = parsed[source.event_time]
    checks.append((f"({event}) > ({parsed['_loaded_at']}) + interval {FUTURE_TOLERANCE_HOURS} hour",
                   _quote(source.event_time), "'event time after the row was loaded (in the future)'"))
    checks.append((f"row_number() over (partition by {source.key} order by _line) > 1", _quote(source.key),
                   "'duplicate key within the file'"))
    return checks


def _check_rows(con: Connection, source: SourceTable, parsed: dict[str, str], loaded_at_given: bool) -> None:
    """Temp table `checked`: `mapped` with each row's first problem (`_reason`, `_field`; NULL when usable)."""
    checks = _row_checks(source, parsed, loaded_at_given)
    reason = "case " + " ".join(f"when {cond} then {msg}" for cond, _, msg in checks) + " end"
    field_of = "case " + " ".join(f"when {cond} then {fld}" for cond, fld, _ in checks) + " end"
    con.execute(f"create or replace temp table checked as select *, {reason} as _reason, {field_of} as _field "
                f"from mapped")
    con.execute(f"update checked set _reason = 'duplicate of a row already loaded', _field = {_quote(source.key)} "
                f"where _reason is null and {source.key} in (select {source.key} from raw.{source.name})")


@dataclass(frozen=True)
class _FileLoad:
    """One file's entry in raw._load_log."""

    load_id: str
    sha256: str
    loaded_at: datetime
    known_at: dict | None  # the mapping's declarations of when fields are known


def _publish(con: Connection, source: SourceTable, parsed: dict[str, str], report: LoadReport, entry: _FileLoad) -> None:
    """Good rows into raw.<source>, the others into raw._load_rejects, the file into raw._load_log: all in one
    transaction, and only when rows read = rows loaded + rows rejected."""
    path, name, load_id = str(report.file), source.name, entry.load_id
    typed = ", ".join(f"{parsed[c.name]} as {_ident(c.name)}" for c in source.columns)
    value_of = "case _field " + " ".join(
        f"when {_quote(c.name)} then cast({_ident(c.name)} as varchar)" for c in source.columns) + " end"
    with transaction(con):
        con.execute(f"insert into raw.{name} by name select {typed}, {_quote(path)} as _source_file, "
                    f"_line as _source_line, _extra from checked where _reason is null")
        con.execute("insert into raw._load_rejects select ?, ?, ?, line, field, null, error, raw_line from file_rejects",
                    [load_id, name, path])
        con.execute(f"insert into raw._load_rejects select ?, ?, ?, _line, _field, {value_of}, _reason, null "
                    f"from checked where _reason is not null", [load_id, name, path])
        report.rows_loaded = int(con.execute("select count(*) from checked where _reason is null").fetchall()[0][0])
        report.rows_rejected = int(con.execute(
            "select (select count(*) from file_rejects) + (select count(*) from checked where _reason is not null)"
        ).fetchall()[0][0])
        if not report.reconciles:
            raise LoadError(f"{path}: {report.rows_read} rows read but {report.rows_loaded} loaded + "
                            f"{report.rows_rejected} rejected; nothing was written")
        con.execute("insert into raw._load_log (load_id, source_table, source_file, file_sha256, loaded_at, rows_read, "
                    "rows_loaded, rows_rejected, known_at) values (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [load_id, name, path, entry.sha256, entry.loaded_at, report.rows_read, report.rows_loaded,
                     report.rows_rejected, json.dumps(entry.known_at) if entry.known_at else None])


def _checked_file(source_name: str, path: Path) -> SourceTable:
    if source_name not in BY_NAME:
        raise LoadError(f"{path}: unknown source {source_name!r}; the sources are: {', '.join(sorted(BY_NAME))}")
    if not path.is_file():
        raise LoadError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise LoadError(f"{path}: the file is empty (no header, no rows)")
    if path.suffix.lower() not in (".parquet", ".csv", ".txt", ".tsv"):
        raise LoadError(f"{path}: unsupported file type {path.suffix.lower()!r} (use .csv or .parquet)")
    return BY_NAME[source_name]


def load_file(con: Connection, source_name: str, path: Path, mapping_path: Path | None = None) -> LoadReport:
    """Load one file into raw.<source_name>; raises LoadError when the file as a whole is unusable."""
    path = Path(path)
    source = _checked_file(source_name, path)
    mapping = (yaml.safe_load(mapping_path.read_text()) if mapping_path else None) or {}
    report = LoadReport(source_name, path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    load_id = f"{source_name}-{digest[:16]}"
    now = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
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
    is_parquet = path.suffix.lower() == ".parquet"
    report.rows_read = _stage_parquet(con, path) if is_parquet else _stage_csv(con, path, mapping)
    present = _map_columns(con, path, source, mapping, report)
    parsed = {c.name: _parse_expression(c.name, c.type, mapping.get("date_format")) for c in source.columns}
    loaded_at_given = "_loaded_at" in present
    if not loaded_at_given:
        parsed["_loaded_at"] = f"timestamp {_quote(str(now))}"
    _check_rows(con, source, parsed, loaded_at_given)
    _publish(con, source, parsed, report, _FileLoad(load_id, digest, now, mapping.get("known_at")))
    for reason_text, count in con.execute(
        "select reason, count(*) from raw._load_rejects where load_id = ? group by 1 order by 2 desc", [load_id]
    ).fetchall():
        report.reasons[reason_text] = int(count)
    return report
