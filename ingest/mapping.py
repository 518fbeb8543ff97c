"""A loader mapping file: how one export's columns become a contract table's fields, read and checked once.

    delimiter: ";"                  # default: detected from the header line
    encoding: latin-1               # default: utf-8
    date_format: "%d/%m/%Y %H:%M"   # default: ISO 8601 and a few common forms
    columns: {Lead ID: lead_id, Created: [created_at, _loaded_at]}   # one column to one or several fields
    fields: {converted_at: "case when deal_stage = 'Won' then close_date end"}   # a SQL expression over the row
    constants: {status: converted}  # the same value on every row
    drop: [Notes]                   # columns left out entirely (not even kept in _extra)
    values: {lead_source: {"Google Ads": Paid Search}}
    known_at: {budget_status: after_outcome}   # when a field is known: at_creation, after_contact, after_outcome
    historical: created_at          # a backfill: each row's load time is this field's time

Columns neither mapped nor dropped are matched to fields by their normalised name ('Lead ID' -> lead_id) or kept
as JSON in `_extra`. An expression names the file's own columns (double-quote names with spaces); it must be one
SQL expression, checked against the file before anything is written.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import yaml

from core.contract import SourceTable

KNOWN_AT = ("at_creation", "after_contact", "after_outcome")
KEYS = ("delimiter", "encoding", "date_format", "columns", "fields", "constants", "drop", "values", "known_at",
        "historical")
TIME_TYPES = ("timestamp", "date")


class LoadError(ValueError):
    """A file that cannot be loaded at all (nothing is written)."""


class MappingError(LoadError):
    """A mapping file that cannot be used (nothing is loaded)."""


def normalise(name: str) -> str:
    """'Lead ID ' -> 'lead_id'; a leading underscore (as in _loaded_at) is kept."""
    text = re.sub(r"[^0-9a-z]+", "_", name.strip().lower()).strip("_")
    return "_" + text if name.strip().startswith("_") else text


@dataclass(frozen=True)
class Mapping:
    delimiter: str | None = None
    encoding: str = "utf-8"
    date_format: str | None = None
    columns: dict[str, tuple[str, ...]] = field(default_factory=dict)  # file column -> fields
    fields: dict[str, str] = field(default_factory=dict)  # field -> SQL expression over the file's columns
    constants: dict[str, str] = field(default_factory=dict)
    drop: tuple[str, ...] = ()
    values: dict[str, dict[str, str]] = field(default_factory=dict)
    known_at: dict[str, str] = field(default_factory=dict)
    historical: str | None = None  # the field whose time is each row's load time
    origin: str | None = field(default=None, compare=False)  # the mapping file, for messages

    def reading(self) -> dict:
        """Everything that decides how a file is read (not where the mapping came from)."""
        return {k: v for k, v in asdict(self).items() if k != "origin"}

    def with_historical(self, column: str | None) -> Mapping:
        return replace(self, historical=column) if column else self


def _dict_of(where: str, value: object, key: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise MappingError(f"{where}: `{key}` must map names to values, not {type(value).__name__}")
    return value


def read_mapping(path: Path | None) -> Mapping:
    """The mapping in a YAML file (no file: the defaults); a clear error for anything it cannot mean."""
    if path is None:
        return Mapping()
    path = Path(path)
    if not path.is_file():
        raise MappingError(f"{path}: mapping file not found (or not a file)")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise MappingError(f"{path}: mapping file cannot be read: {error.strerror}") from error
    except UnicodeDecodeError as error:
        raise MappingError(f"{path}: a mapping file is UTF-8 text; byte {error.start} is not") from error
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        raise MappingError(f"{path}: not valid YAML: {' '.join(str(error).split())}") from error
    return replace(parse_mapping(data, str(path)), origin=str(path))


def parse_mapping(data: object, where: str) -> Mapping:
    if data is None:
        return Mapping()
    if not isinstance(data, dict):
        raise MappingError(f"{where}: a mapping file is a set of `key: value` lines, not {type(data).__name__}")
    unknown = sorted(set(map(str, data)) - set(KEYS))
    if unknown:
        raise MappingError(f"{where}: unknown key(s) {', '.join(unknown)}; the keys are: {', '.join(KEYS)}")
    columns = {}
    for column, targets in _dict_of(where, data.get("columns"), "columns").items():
        targets = targets if isinstance(targets, list) else [targets]
        if not targets or not all(isinstance(t, str) and t for t in targets):
            raise MappingError(f"{where}: columns: {column!r} must map to a field name or a list of field names")
        columns[str(column)] = tuple(targets)
    drop = data.get("drop") or []
    if not isinstance(drop, list):
        raise MappingError(f"{where}: `drop` must be a list of column names")
    values = {}
    for name, pairs in _dict_of(where, data.get("values"), "values").items():
        values[str(name)] = {str(k): str(v) for k, v in _dict_of(where, pairs, f"values: {name}").items()}
    known_at = {str(k): str(v) for k, v in _dict_of(where, data.get("known_at"), "known_at").items()}
    for name, when in known_at.items():
        if when not in KNOWN_AT:
            raise MappingError(f"{where}: known_at says {name!r} is known {when!r}; use one of {', '.join(KNOWN_AT)}")
    return Mapping(
        delimiter=str(data["delimiter"]) if data.get("delimiter") else None,
        encoding=str(data.get("encoding") or "utf-8"),
        date_format=str(data["date_format"]) if data.get("date_format") else None,
        columns=columns,
        fields={str(k): str(v) for k, v in _dict_of(where, data.get("fields"), "fields").items()},
        constants={str(k): str(v) for k, v in _dict_of(where, data.get("constants"), "constants").items()},
        drop=tuple(map(str, drop)),
        values=values,
        known_at=known_at,
        historical=str(data["historical"]) if data.get("historical") else None,
    )


def check_against(mapping: Mapping, source: SourceTable, file_columns: list[str], where: str) -> list[str]:
    """Every field the mapping names is in the contract; returns a warning for the columns it names that this file
    lacks (one mapping serves exports with more or fewer of a tool's columns; they are skipped)."""
    names = {c.name for c in source.columns}
    types = {c.name: c.type for c in source.columns}
    absent = [c for c in [*mapping.columns, *mapping.drop] if c not in file_columns]
    targets = [t for ts in mapping.columns.values() for t in ts]
    for kind, used in (("columns", targets), ("fields", list(mapping.fields)), ("constants", list(mapping.constants)),
                       ("values", list(mapping.values)), ("known_at", list(mapping.known_at))):
        unknown = [n for n in used if n not in names]
        if unknown:
            raise MappingError(f"{where}: {kind}: {', '.join(map(repr, unknown))} is not a field of {source.name} "
                               f"(fields: {', '.join(sorted(names))})")
    if mapping.historical and types.get(mapping.historical) not in TIME_TYPES:
        times = [n for n, t in types.items() if t in TIME_TYPES and n != "_loaded_at"]
        raise MappingError(f"{where}: historical: {mapping.historical!r} is not a time field of {source.name} "
                           f"(its time fields: {', '.join(times)})")
    return [f"the mapping names column(s) this file does not have, skipped: {', '.join(absent)}"] if absent else []
