"""Load your own CSV or Parquet exports into the raw schema, checked against the source contract.

Every input row ends up either in `raw.<source>` or in `raw._load_rejects` with the file, line, field and
reason; `raw._load_log` records each file once (by content hash) with its reconciliation:
rows read = rows loaded + rows rejected. Re-loading the same file adds nothing; `unload_file` takes a file's rows
out again. A mapping file (ingest/mapping.py) maps an export's columns onto the contract.

A field declared known only after the outcome never reaches a contract column, so no feature can read it: its
values are kept in `_extra` (JSON) and the declaration is recorded in `raw._load_log.known_at`.

A lead export that carries its own outcome (`converted_at`, `disqualified_at`) also yields the status changes
those fields imply, in raw.crm_lead_status_history, each loaded no earlier than it happened.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from core.config import dbt_project_vars
from core.contract import BY_NAME, SourceTable
from core.spark import ensure_table
from core.warehouse import Connection, is_spark, quote_identifier, quote_string, transaction
from ingest.mapping import LoadError, Mapping, MappingError, check_against, normalise, read_mapping

ENCODINGS = {"utf-8": "utf-8", "utf8": "utf-8", "latin-1": "latin-1", "latin1": "latin-1", "iso-8859-1": "latin-1",
             "utf-16": "utf-16"}
# Formats tried per date column besides ISO 8601 (day-first before month-first: a column both read completely is
# ambiguous, read day-first, and the load says so; a mapping's date_format settles it).
DATE_FORMATS = ("%d/%m/%Y %H:%M", "%d/%m/%Y", "%m/%d/%Y %H:%M", "%m/%d/%Y", "%d.%m.%Y")
TRUE_WORDS = ("true", "t", "yes", "y", "1")
FALSE_WORDS = ("false", "f", "no", "n", "0")
FUTURE_TOLERANCE_HOURS = 24
# Id values that stand for "no value" in exports (compared lower-cased). A required id holding one is rejected;
# an optional one (an unassigned owner) is read as empty, and the load says how many. An id with a control
# character such as NUL is rejected: it is damage, not a value.
PLACEHOLDER_IDS = ("n/a", "na", "#n/a", "null", "none", "nan", "nil", "undefined", "-", "?")


def _lead_outcomes() -> dict[str, str]:
    """crm_leads field -> the status change it implies: the conversion status and the first other closing status
    (dbt vars conversion_lead_status and terminal_lead_statuses)."""
    variables = dbt_project_vars()
    conversion = str(variables["conversion_lead_status"])
    closing = next(str(s) for s in variables["terminal_lead_statuses"] if str(s) != conversion)
    return {"converted_at": conversion, "disqualified_at": closing}


LEAD_OUTCOMES = _lead_outcomes()

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
alter table raw._load_log add column if not exists historical varchar;
alter table raw._load_log add column if not exists reading_sha256 varchar;
"""


LINEAGE = ("_source_file varchar", "_source_line bigint", "_extra varchar", "_load_id varchar")


@dataclass
class LoadReport:
    source: str
    file: Path
    rows_read: int = 0
    rows_loaded: int = 0
    rows_rejected: int = 0
    already_loaded: bool = False
    load_id: str = ""  # raw._load_log.load_id (also what `scorehouse unload` takes)
    warnings: list[str] = field(default_factory=list)
    reasons: dict[str, int] = field(default_factory=dict)
    derived_status_changes: int = 0

    @property
    def reconciles(self) -> bool:
        return self.rows_read == self.rows_loaded + self.rows_rejected


# A timestamp that names its offset (Z, +05:00, -0800) is converted to UTC, the contract's time zone.
_HAS_OFFSET = r"'(Z|z|[+-]\d\d:?\d\d)$'"
ISO = "iso"  # DuckDB's own ISO 8601 reading: 2025-03-01, 2025-03-01 10:00, 2025-03-01T10:00:00.5 ...


def _parse_expression(column: str, type_: str, date_format: str | None) -> str:
    """SQL that reads a text value as the contract type, or NULL when it cannot. A date or timestamp is read in
    one format (`date_format`, decided per column by _column_date_formats), never guessed row by row."""
    value = f"nullif(trim({quote_identifier(column)}), '')"
    if type_ == "varchar" and column.endswith("_id"):
        return f"(case when lower({value}) not in ({', '.join(map(quote_string, PLACEHOLDER_IDS))}) then {value} end)"
    if type_ == "varchar":
        return value
    if type_ == "integer":  # a 32-bit integer: a larger number or a fraction cannot be read, not cut or rounded
        return (f"(case when try_cast({value} as double) = floor(try_cast({value} as double)) "
                f"then try_cast(try_cast({value} as double) as integer) end)")
    if type_ == "double":  # NaN and infinity are not amounts
        return f"(case when isfinite(try_cast({value} as double)) then try_cast({value} as double) end)"
    if type_ == "boolean":
        return (f"case when lower({value}) in ({', '.join(map(quote_string, TRUE_WORDS))}) then true "
                f"when lower({value}) in ({', '.join(map(quote_string, FALSE_WORDS))}) then false end")
    local = (f"try_cast({value} as timestamp)" if date_format in (None, ISO)
             else f"try_strptime({value}, {quote_string(date_format)})")
    expression = (f"(case when regexp_matches({value}, {_HAS_OFFSET}) "
                  f"then timezone('UTC', try_cast({value} as timestamptz)) else {local} end)")
    return f"cast({expression} as date)" if type_ == "date" else expression


def _column_date_formats(con: Connection, source: SourceTable, mapping: Mapping,
                         report: LoadReport) -> dict[str, str]:
    """Per date/timestamp field of the staged file: the one format that reads most of its values (ISO first on a
    tie; `date_format` from the mapping when set). A value the chosen format cannot read is rejected, so a column
    mixing 03/01/2025 and 01/13/2025 is not read half as day-first and half as month-first."""
    timed = [c.name for c in source.columns if c.type in ("date", "timestamp")]
    present = {name for (name,) in con.execute("select column_name from (describe mapped)").fetchall()}
    candidates = (ISO, *DATE_FORMATS)
    measured = [] if mapping.date_format else [name for name in timed if name in present]
    reads = []  # every (column, format) read count, in one scan of the file
    for name in measured:
        value = f"nullif(trim({quote_identifier(name)}), '')"
        reads += [f"count(try_cast({value} as timestamp))" if f == ISO
                  else f"count(try_strptime({value}, {quote_string(f)}))" for f in candidates]
    row = con.execute(f"select {', '.join(reads)} from mapped").fetchall()[0] if reads else ()
    chosen = {name: mapping.date_format or ISO for name in timed}
    for k, name in enumerate(measured):
        counts = row[k * len(candidates):(k + 1) * len(candidates)]
        best = max(range(len(candidates)), key=lambda i: (counts[i], -i))
        chosen[name] = candidates[best]
        rivals = [candidates[i] for i in range(len(candidates)) if i != best and counts[i] == counts[best] > 0]
        if rivals:
            report.warnings.append(f"{name}: every date reads as {chosen[name]} and as {rivals[0]}; read as "
                                   f"{chosen[name]} (set date_format in a mapping if that is wrong)")
    return chosen


def _count_optional_placeholders(con: Connection, source: SourceTable, present: set[str], report: LoadReport) -> None:
    placeholders = ", ".join(map(quote_string, PLACEHOLDER_IDS))
    optional = [c.name for c in source.columns if c.name.endswith("_id") and not c.required and c.name in present]
    if not optional:
        return
    counts = con.execute("select " + ", ".join(
        f"count(*) filter (where lower(trim({quote_identifier(name)})) in ({placeholders}))" for name in optional)
        + " from mapped").fetchall()[0]
    for name, count in zip(optional, counts):
        if count:
            report.warnings.append(f"{name}: {count:,} placeholder value(s) such as N/A read as empty")


def ensure_raw_table(con: Connection, source: SourceTable) -> None:
    """raw.<source> exists with the contract's columns and the loader's lineage columns, on either engine."""
    if is_spark(con):
        ensure_table(con, "raw", source.name, [(c.name, c.type, None) for c in source.columns]
                     + [(*c.split(" "), None) for c in LINEAGE])
        return
    con.execute(raw_table_ddl(source))


def raw_table_ddl(source: SourceTable) -> str:
    """raw.<source> with the contract's columns and the loader's lineage columns (those a landed table lacks are
    added, empty)."""
    columns = [f"{quote_identifier(c.name)} {c.type}" for c in source.columns] + list(LINEAGE)
    return (f"create schema if not exists raw; create table if not exists raw.{source.name} ({', '.join(columns)});"
            + "".join(f"alter table raw.{source.name} add column if not exists {c};" for c in columns))


def _file_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed when it is gzip-compressed (DuckDB's reader does the same by its name)."""
    data = path.read_bytes()
    return gzip.decompress(data) if path.suffix.lower() == ".gz" else data


def _csv_dialect(path: Path, data: bytes, mapping: Mapping) -> tuple[str, str]:
    """(delimiter, encoding) of a CSV file's bytes: the mapping's, else the delimiter the standard library's sniffer
    finds in the header line among , ; tab and |."""
    encoding = ENCODINGS.get(mapping.encoding.lower().replace("_", "-"))
    if encoding is None:
        raise LoadError(f"{path}: encoding {mapping.encoding!r} is not supported (utf-8, latin-1, utf-16)")
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):  # a UTF-16 byte order mark says it all
        encoding = "utf-16"
    if mapping.delimiter:
        return mapping.delimiter, encoding
    header = io.StringIO(data[:65536].decode(encoding, errors="replace"), newline="").readline()
    try:
        return csv.Sniffer().sniff(header, delimiters=",;\t|").delimiter, encoding
    except csv.Error:  # one column, or nothing to tell between candidates
        return ",", encoding


@dataclass
class _CsvShape:
    records: int  # the last record number minus the header's
    blank: list[int]  # numbers of blank records (empty or only spaces): no rows, not read, not rejected
    longest: int  # characters in the longest record, so that DuckDB's reader takes every record whole


def _csv_records(data: bytes, delimiter: str, encoding: str) -> _CsvShape:
    """The file's records as DuckDB's reader numbers them (the header is 1; a quoted line break stays inside its
    record; an empty line takes a number), counted by the standard library's reader, independently of the parser
    that loads them: the reconciliation's left side."""
    text = data.decode(encoding, errors="replace")
    csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))  # one field may be the whole file
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    number, blank, longest = 0, [], 0
    for record in reader:
        number += 1
        longest = max(longest, sum(len(field) + 3 for field in record))  # with its delimiter and quotes
        if number > 1 and all(not field.strip() for field in record) and len(record) <= 1:
            blank.append(number)
    # an empty line at the very end is no record for either reader
    while blank and blank[-1] == number:
        blank.pop()
        number -= 1
    return _CsvShape(max(0, number - 1), blank, longest)


def _stage_csv(con: Connection, path: Path, mapping: Mapping) -> int:
    """DuckDB's CSV reader into temp tables `incoming` (the good rows, with their record number `_line`) and
    `file_rejects` (one row per record the reader refused); returns the records in the file."""
    data = _file_bytes(path)  # read once for the dialect and the independent record count
    delimiter, encoding = _csv_dialect(path, data, mapping)
    shape = _csv_records(data, delimiter, encoding)
    # a long record (a pasted document in a notes field) is a value like any other: the reader's line limit
    # (2 MB by default, in bytes) is raised to fit the longest record of this file
    max_line = max(2_000_000, 4 * shape.longest + 1024)
    options = (f"all_varchar = true, header = true, store_rejects = true, delim = {quote_string(delimiter)}, "
               f"encoding = {quote_string(encoding)}, null_padding = false, strict_mode = true, "
               f"max_line_size = {max_line}")
    con.execute("drop table if exists reject_errors; drop table if exists reject_scans")
    try:
        con.execute(f"create or replace temp table incoming_raw as "
                    f"select *, row_number() over () as _pos from read_csv({quote_string(str(path))}, {options})")
    except Exception as error:
        raise LoadError(f"{path}: cannot be read as CSV: {str(error).splitlines()[0]}") from error
    # One row per rejected record (a short record reports each missing column separately).
    con.execute("create or replace temp table file_rejects as select line, "
                "string_agg(distinct coalesce(column_name, ''), ', ') as field, "
                "min(error_type || ': ' || error_message) as error, min(csv_line) as raw_line "
                "from reject_errors group by line")
    records, blank = shape.records, shape.blank
    if blank:  # lines of spaces are blank lines, not short rows
        con.execute("delete from file_rejects where list_contains(?, line)", [blank])
    # The good rows are the other numbered records, in file order.
    bad = [r[0] for r in con.execute("select line from file_rejects").fetchall()]
    good = np.setdiff1d(np.arange(2, records + 2), bad + blank)
    con.register("good_lines", pd.DataFrame({"_pos": np.arange(1, len(good) + 1), "_line": good}))
    con.execute("create or replace temp table incoming as select r.* exclude (_pos), g._line "
                "from incoming_raw r join good_lines g using (_pos)")
    con.unregister("good_lines")
    return records - len(blank)


def _stage_parquet(con: Connection, path: Path) -> int:
    """A Parquet file into `incoming` (every column as text; the row's position stands in for the line)."""
    con.execute("create or replace temp table file_rejects as "
                "select 0::bigint as line, ''::varchar as field, ''::varchar as error, ''::varchar as raw_line "
                "where false")
    con.execute(f"create or replace temp table incoming as select *, row_number() over () as _line "
                f"from (select columns(*)::varchar from read_parquet({quote_string(str(path))}))")
    return int(con.execute(f"select count(*) from read_parquet({quote_string(str(path))})").fetchall()[0][0])


def _explicit_fields(con: Connection, path: Path, mapping: Mapping, file_columns: list[str]) -> dict[str, tuple[str, str]]:
    """field -> (SQL giving its text, what set it) for the mapping's renames, expressions and constants."""
    assigned: dict[str, tuple[str, str]] = {}

    def assign(name: str, sql: str, origin: str) -> None:
        if name in assigned:
            raise MappingError(f"{path}: {origin} and {assigned[name][1]} both set {name!r}; keep one")
        assigned[name] = (sql, origin)

    for column, targets in mapping.columns.items():
        if column not in file_columns:
            continue
        for target in targets:
            assign(target, quote_identifier(column), f"column {column!r}")
    for name, expression in mapping.fields.items():
        assign(name, _checked_expression(con, path, name, expression), f"the expression for {name}")
    for name, value in mapping.constants.items():
        assign(name, quote_string(value), f"the constant for {name}")
    return assigned


def _checked_expression(con: Connection, path: Path, name: str, expression: str) -> str:
    """One SQL expression over the file's columns, as text; refused unless it is exactly one expression that runs."""
    sql = f"cast(({expression}) as varchar)"
    try:
        statements = con.extract_statements(f"select {sql} from incoming")
        if len(statements) != 1:
            raise MappingError(f"{path}: fields: {name}: {expression!r} must be one SQL expression, not statements")
        con.execute(f"select {sql} from incoming limit 0").fetchall()
    except duckdb.Error as error:
        raise MappingError(f"{path}: fields: {name}: the expression {expression!r} does not work on this file: "
                           f"{str(error).splitlines()[0]}") from error
    return sql


def _map_columns(con: Connection, path: Path, source: SourceTable, mapping: Mapping, report: LoadReport) -> set[str]:
    """Temp table `mapped`: the file's columns, expressions and constants mapped onto the contract (the file's
    other columns kept as JSON in `_extra`) and its values mapped; returns the contract fields the file sets."""
    file_columns = [r[0] for r in con.execute("describe incoming").fetchall() if r[0] != "_line"]
    report.warnings += check_against(mapping, source, file_columns, mapping.origin or str(path))
    contract_names = {c.name for c in source.columns}
    assigned = _explicit_fields(con, path, mapping, file_columns)
    extra: list[str] = []
    by_name: set[str] = set()
    for column in file_columns:
        if column in mapping.drop or column in mapping.columns:
            continue
        target = normalise(column)
        if target in by_name:
            raise LoadError(f"{path}: two columns map to {target!r}; rename or drop one in the mapping")
        if target in contract_names and target not in assigned:  # matched by name (the mapping's own choice wins)
            assigned[target] = (quote_identifier(column), f"column {column!r}")
            by_name.add(target)
        else:
            extra.append(column)
    if mapping.historical:
        if mapping.historical not in assigned:
            raise MappingError(f"{path}: historical: the file sets no {mapping.historical!r} to take load times from")
        if "_loaded_at" in assigned:
            raise MappingError(f"{path}: historical: the file already sets _loaded_at ({assigned['_loaded_at'][1]})")
        assigned["_loaded_at"] = (assigned[mapping.historical][0], f"historical: {mapping.historical}")
    present = set(assigned)
    missing = [c for c in source.required if c not in present and c != "_loaded_at"]
    if missing:
        raise LoadError(f"{path}: missing required column(s) {', '.join(missing)} for {source.name} "
                        f"(columns found: {', '.join(file_columns)}); map them with --mapping")
    after_outcome = _after_outcome(path, source, mapping, present)
    kept_aside = extra + sorted(after_outcome)
    if kept_aside:
        report.warnings.append(f"kept in _extra (not in the contract, or known only after the outcome): "
                               f"{', '.join(kept_aside)}")
    select = [f"{sql} as {quote_identifier(name)}" for name, (sql, _) in assigned.items() if name not in after_outcome]
    select += [f"cast(null as varchar) as {quote_identifier(c.name)}" for c in source.columns
               if c.name not in present or c.name in after_outcome]
    pairs = [(normalise(c), quote_identifier(c)) for c in extra] + [(n, assigned[n][0]) for n in sorted(after_outcome)]
    keys = _unique_keys([k for k, _ in pairs])
    extra_json = ("to_json(struct_pack(" + ", ".join(f"{quote_identifier(k)} := {sql}" for k, (_, sql) in zip(keys, pairs))
                  + "))" if pairs else "cast(null as varchar)")
    con.execute(f"create or replace temp table mapped as select {', '.join(select)}, {extra_json} as _extra, "
                f"_line from incoming")
    for column, values in mapping.values.items():
        for old, new in values.items():
            name = quote_identifier(column)
            con.execute(f"update mapped set {name} = ? where trim({name}) = ?", [new, old])
    return present


def _unique_keys(keys: list[str]) -> list[str]:
    """JSON keys for _extra: two columns that normalise alike get a numbered suffix instead of clashing."""
    seen: dict[str, int] = {}
    out = []
    for key in keys:
        seen[key] = seen.get(key, 0) + 1
        out.append(key if seen[key] == 1 else f"{key}_{seen[key]}")
    return out


def _after_outcome(path: Path, source: SourceTable, mapping: Mapping, present: set[str]) -> set[str]:
    """The contract fields the mapping declares known only after the outcome (never a required field, which a row
    cannot do without)."""
    after = {name for name, when in mapping.known_at.items() if when == "after_outcome" and name in present}
    required = sorted(after & set(source.required))
    if required:
        raise LoadError(f"{path}: {', '.join(required)} is required by {source.name} and cannot be known only after "
                        "the outcome")
    return after


def _row_checks(source: SourceTable, parsed: dict[str, str], loaded_at_given: bool, now: str,
                formats: dict[str, str]) -> list[tuple[str, str, str]]:
    """(condition, field, reason) for each way a row can be unusable, in the order a row's first problem is named."""
    checks = []
    for c in source.columns:
        raw_value = f"nullif(trim({quote_identifier(c.name)}), '')"
        if c.name.endswith("_id"):
            if c.required:
                placeholders = ", ".join(map(quote_string, PLACEHOLDER_IDS))
                checks.append((f"lower({raw_value}) in ({placeholders})", quote_string(c.name),
                               f"'{c.name} ' || {raw_value} || ' is a placeholder, not an id'"))
            checks.append((f"regexp_matches({quote_identifier(c.name)}, '[\\x00-\\x1f\\x7f]')", quote_string(c.name),
                           f"'{c.name} holds a control character (NUL, tab, line break), not an id'"))
        if c.required and (c.name != "_loaded_at" or loaded_at_given):
            checks.append((f"{raw_value} is null", quote_string(c.name), f"'missing required field {c.name}'"))
        if c.type != "varchar":
            as_format = f" in this column's format {formats[c.name]}" if formats.get(c.name, ISO) != ISO else ""
            checks.append((f"{raw_value} is not null and ({parsed[c.name]}) is null", quote_string(c.name),
                           f"'cannot read ' || {raw_value} || {quote_string(f' as {c.type}{as_format}')}"))
    event = parsed[source.event_time]
    checks.append((f"({event}) > ({parsed['_loaded_at']}) + interval {FUTURE_TOLERANCE_HOURS} hour",
                   quote_string(source.event_time), "'event time after the row was loaded (in the future)'"))
    checks.append((f"row_number() over (partition by {source.key} order by _line) > 1", quote_string(source.key),
                   "'duplicate key within the file'"))
    if source.name == "crm_leads":  # a lead that carries its own outcome: the outcome must be datable and past
        checks.append((f"({parsed['is_converted']}) and ({parsed['converted_at']}) is null", "'converted_at'",
                       "'is_converted is true but converted_at is empty: the conversion cannot be dated'"))
        for name in LEAD_OUTCOMES:
            checks.append((f"({parsed[name]}) > {now} + interval {FUTURE_TOLERANCE_HOURS} hour", quote_string(name),
                           f"'{name} is in the future'"))
    return checks


def _check_rows(con: Connection, source: SourceTable, parsed: dict[str, str], loaded_at_given: bool,
                now: str, formats: dict[str, str]) -> None:
    """Temp table `checked`: `mapped` with each row's first problem (`_reason`, `_field`; NULL when usable)."""
    checks = _row_checks(source, parsed, loaded_at_given, now, formats)
    reason = "case " + " ".join(f"when {cond} then {msg}" for cond, _, msg in checks) + " end"
    field_of = "case " + " ".join(f"when {cond} then {fld}" for cond, fld, _ in checks) + " end"
    con.execute(f"create or replace temp table checked as select *, {reason} as _reason, {field_of} as _field "
                f"from mapped")
    con.execute(f"update checked set _reason = 'duplicate of a row already loaded', _field = {quote_string(source.key)} "
                f"where _reason is null and {source.key} in (select {source.key} from raw.{source.name})")


@dataclass(frozen=True)
class _FileLoad:
    """One file's entry in raw._load_log."""

    load_id: str
    sha256: str
    loaded_at: datetime
    known_at: dict | None  # the mapping's declarations of when fields are known
    historical: str | None  # the field each row's load time was taken from (a backfill), if any
    reading: str  # how the file was read (mapping and options): the same file read otherwise is another load


def _publish(con: Connection, source: SourceTable, parsed: dict[str, str], report: LoadReport, entry: _FileLoad) -> None:
    """Good rows into raw.<source>, the others into raw._load_rejects, the file into raw._load_log: all in one
    transaction, and only when rows read = rows loaded + rows rejected."""
    path, name, load_id = str(report.file), source.name, entry.load_id
    typed = ", ".join(f"{parsed[c.name]} as {quote_identifier(c.name)}" for c in source.columns)
    value_of = "case _field " + " ".join(
        f"when {quote_string(c.name)} then cast({quote_identifier(c.name)} as varchar)" for c in source.columns) + " end"
    with transaction(con):
        con.execute(f"insert into raw.{name} by name select {typed}, {quote_string(path)} as _source_file, "
                    f"_line as _source_line, _extra, {quote_string(load_id)} as _load_id from checked where _reason is null")
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
        if name == "crm_leads":
            report.derived_status_changes = _derive_status_changes(con, load_id)
        con.execute("insert into raw._load_log (load_id, source_table, source_file, file_sha256, loaded_at, rows_read, "
                    "rows_loaded, rows_rejected, known_at, historical, reading_sha256) "
                    "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [load_id, name, path, entry.sha256, entry.loaded_at, report.rows_read, report.rows_loaded,
                     report.rows_rejected, json.dumps(entry.known_at) if entry.known_at else None, entry.historical,
                     entry.reading])


def _derive_status_changes(con: Connection, load_id: str) -> int:
    """The status changes a lead export's own outcome fields imply, into raw.crm_lead_status_history: one per
    dated outcome, never before the lead was created, and loaded no earlier than it happened (a current-state
    export cannot have known an outcome before it occurred). Returns the rows written."""
    con.execute(raw_table_ddl(BY_NAME["crm_lead_status_history"]))
    written = 0
    for name, status in LEAD_OUTCOMES.items():
        written += _changed(con, (
            "insert into raw.crm_lead_status_history by name select lead_id || ':' || ? as status_change_id, lead_id, "
            f"? as status, greatest({name}, created_at) as changed_at, greatest(_loaded_at, {name}) as _loaded_at, "
            "_source_file, _source_line, _load_id from raw.crm_leads where _load_id = ? and "
            f"{name} is not null"), [name, status, load_id])
    return written


def _changed(con: Connection, sql: str, params: list) -> int:
    """Run an insert or delete; DuckDB answers with the number of rows it changed."""
    return int(con.execute(sql, params).fetchall()[0][0])


def _checked_file(source_name: str, path: Path) -> SourceTable:
    if source_name not in BY_NAME:
        raise LoadError(f"{path}: unknown source {source_name!r}; the sources are: {', '.join(sorted(BY_NAME))}")
    if path.is_dir():
        raise LoadError(f"{path}: is a folder, not a file")
    if not path.is_file():
        raise LoadError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise LoadError(f"{path}: the file is empty (no header, no rows)")
    kind = "".join(path.suffixes[-2:]).lower() if path.suffix.lower() == ".gz" else path.suffix.lower()
    if kind not in (".parquet", ".csv", ".txt", ".tsv", ".csv.gz", ".txt.gz", ".tsv.gz"):
        raise LoadError(f"{path}: unsupported file type {kind!r} (use .csv, .csv.gz or .parquet)")
    return BY_NAME[source_name]


def load_file(con: Connection, source_name: str, path: Path, mapping_path: Path | None = None,
              historical: str | None = None) -> LoadReport:
    """Load one file into raw.<source_name>; raises LoadError (or MappingError) when the file as a whole is
    unusable. `historical` names the time field that stands in for each row's load time (a backfill)."""
    path = Path(path)
    source = _checked_file(source_name, path)
    mapping = read_mapping(mapping_path).with_historical(historical)
    report = LoadReport(source_name, path)
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError as error:
        raise LoadError(f"{path}: cannot be read: {error.strerror}") from error
    # The same bytes read another way (a fixed mapping, another encoding) are another load: a reading that
    # rejected rows can be corrected. Rows the first reading loaded are then refused as already loaded.
    reading = hashlib.sha256(json.dumps(mapping.reading(), sort_keys=True, default=str).encode()).hexdigest()
    load_id = report.load_id = f"{source_name}-{digest[:16]}-{reading[:8]}"
    now = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    con.execute(LOG_DDL)
    con.execute(raw_table_ddl(source))
    seen = con.execute(
        "select rows_read, rows_loaded, rows_rejected from raw._load_log where source_table = ? and file_sha256 = ? "
        "and coalesce(reading_sha256, ?) = ?", [source_name, digest, reading, reading],
    ).fetchall()
    if seen:
        report.rows_read, report.rows_loaded, report.rows_rejected = seen[0]
        report.already_loaded = True
        return report
    is_parquet = path.suffix.lower() == ".parquet"
    report.rows_read = _stage_parquet(con, path) if is_parquet else _stage_csv(con, path, mapping)
    present = _map_columns(con, path, source, mapping, report)
    formats = _column_date_formats(con, source, mapping, report)
    _count_optional_placeholders(con, source, present, report)
    parsed = {c.name: _parse_expression(c.name, c.type, formats.get(c.name)) for c in source.columns}
    loaded_at_given = "_loaded_at" in present
    if not loaded_at_given:
        parsed["_loaded_at"] = f"timestamp {quote_string(str(now))}"
    _check_rows(con, source, parsed, loaded_at_given, f"timestamp {quote_string(str(now))}", formats)
    _publish(con, source, parsed, report, _FileLoad(load_id, digest, now, mapping.known_at or None,
                                                    mapping.historical, reading))
    if mapping.historical:
        report.warnings.append(f"historical backfill: each row's load time is its {mapping.historical}, so every "
                               "value in this file is taken as known then (see raw._load_log.historical)")
    for reason_text, count in con.execute(
        "select reason, count(*) from raw._load_rejects where load_id = ? group by 1 order by 2 desc", [load_id]
    ).fetchall():
        report.reasons[reason_text] = int(count)
    return report


@dataclass
class UnloadReport:
    load_id: str
    source: str
    file: str
    rows_removed: int
    rejects_removed: int
    derived_removed: int


def unload_file(con: Connection, file: str) -> UnloadReport:
    """Take one loaded file out again, named by its path, (a prefix of) its SHA-256 or its load id: its rows, the
    rows derived from it, its rejects and its log entry, in one transaction."""
    con.execute(LOG_DDL)
    candidates = {str(file), str(Path(file).expanduser().resolve())}
    found = con.execute(
        "select load_id, source_table, source_file from raw._load_log where source_file in (select unnest(?)) "
        "or (length(?) >= 8 and starts_with(file_sha256, lower(?))) or load_id = ?",
        [sorted(candidates), file, file, file]).fetchall()
    if not found:
        raise LoadError(f"{file}: no loaded file has this path or content hash (see raw._load_log)")
    if len(found) > 1:
        raise LoadError(f"{file}: {len(found)} loads match ({', '.join(r[0] for r in found)}); name one by its "
                        "load id")
    load_id, source, path = found[0]
    tables = [source] + (["crm_lead_status_history"] if source == "crm_leads" else [])
    with transaction(con):
        removed = []
        for table in tables:  # a table landed in bulk since may lack the lineage column: it is added (empty)
            con.execute(raw_table_ddl(BY_NAME[table]))
            removed.append(_changed(con, f"delete from raw.{table} where _load_id = ?", [load_id]))
        rejects = _changed(con, "delete from raw._load_rejects where load_id = ?", [load_id])
        con.execute("delete from raw._load_log where load_id = ?", [load_id])
    return UnloadReport(load_id, source, path, removed[0], rejects, sum(removed[1:]))
