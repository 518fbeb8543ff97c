"""Read a model's rows from its feature mart."""

from __future__ import annotations

import json

import pandas as pd
from pandas.api.types import is_string_dtype, union_categoricals

from core.warehouse import (
    Connection,
    column_types,
    entity_share_condition,
    fixed_sample_sql,
    is_spark,
    quote_string,
    table_columns,
    transaction,
)
from ml.diagnostics import ENTITY_SOURCES, InsufficientData, why_no_rows
from ml.features import ModelSpec

VALUE = "_row_value"  # evaluation only: money at stake per row (never a feature)


def _column_names(spec: ModelSpec) -> list[str]:
    """The mart columns a model's rows are read with, each once."""
    return list(dict.fromkeys((spec.entity_key, spec.date_column, "as_of_at", *spec.features, *spec.segments,
                               spec.label)))


def _columns(spec: ModelSpec, prefix: str = "") -> str:
    return ", ".join(f"{prefix}{name}" for name in _column_names(spec))


# Training reads at most about this many labelled rows: beyond it, a fixed share of entities (all their rows),
# so memory stays bounded at millions of leads. Fold fits and the final fit sample further (ml/selection.py).
MAX_LABELLED_ROWS = 2_000_000
FETCH_VECTORS = 64  # rows arrive in chunks of 64 DuckDB vectors (131,072 rows)
# On DuckDB, a text column with at most this many distinct values is read as an ENUM of them (see _enum_casts);
# one with more arrives as text and is made a category chunk by chunk.
MAX_ENUM_VALUES = 10_000


def _fetch_compact_chunks(result, keep_text: str) -> list[pd.DataFrame]:
    """A query result in chunks whose text columns (but keep_text) are pandas categories, converted as rows
    arrive. As Python strings a text value takes about 60 bytes a row, so the 2M training rows with their ~17
    text columns would take about 2 GiB; as category codes they take a few MiB, and every later copy (periods,
    folds) shrinks with them."""
    chunks = []
    while not (chunk := result.fetch_df_chunk(FETCH_VECTORS)).empty:
        for column in chunk.columns:
            dtype = chunk[column].dtype
            if isinstance(dtype, pd.CategoricalDtype):
                if dtype.ordered:  # an ENUM arrives as an ordered category; text categories are unordered
                    chunk[column] = chunk[column].cat.as_unordered()
            elif column != keep_text and is_string_dtype(chunk[column]):
                chunk[column] = chunk[column].astype("category")
        chunks.append(chunk)
    return chunks or [result.df()]


def _enum_casts(con: Connection, spec: ModelSpec, where: str, keep_text: str) -> dict[str, str]:
    """DuckDB only: for each text column read (but keep_text) with at most MAX_ENUM_VALUES distinct values in the
    rows `where` selects, `cast(m.<column> as ENUM(<those values, sorted>))`. DuckDB hands an ENUM to pandas as a
    category built once from its values, where text arrives as one Python string per row that is then made a
    category: at 100,000 leads (1.4M rows, 18 text columns) the read took 2.8-3.5 s instead of 6.9-7.2. The values are
    sorted as union_categoricals sorts them, so the categories are the same either way. Call it in the
    transaction that reads the rows: a value missing from its ENUM would fail the cast."""
    if is_spark(con):
        return {}
    types = column_types(con, *spec.mart.split("."))
    text = [c for c in _column_names(spec) if types.get(c) == "VARCHAR" and c != keep_text]
    if not text:
        return {}
    counts = ", ".join(f"count(distinct m.{c})" for c in text)
    wanted = [c for c, n in zip(text, con.execute(f"select {counts} from {spec.mart} m where {where}").fetchall()[0])
              if 0 < n <= MAX_ENUM_VALUES]
    if not wanted:
        return {}
    lists = ", ".join(f"list(distinct m.{c}) filter (where m.{c} is not null)" for c in wanted)
    values = con.execute(f"select {lists} from {spec.mart} m where {where}").fetchall()[0]
    return {c: f"cast(m.{c} as enum({', '.join(quote_string(v) for v in sorted(found))})) as {c}"
            for c, found in zip(wanted, values)}


def _assemble(chunks: list[pd.DataFrame]) -> pd.DataFrame:
    """One frame from the chunks, text still as categories: each text column's chunks are recoded to the union
    of their categories (sorted), then the chunks are joined block by block. Called after the connection
    closes, so that DuckDB's buffers are gone before the frame is copied together: at 1M leads the load then
    peaked at 4.5 GiB, against 6.4 GiB with the connection still open. (Joining column by column and building
    the frame from the columns took 2.8 s at 100,000 leads, against 0.4 s: pandas copied every column twice.)"""
    if len(chunks) == 1:
        return chunks[0]
    for column in chunks[0].columns:
        if isinstance(chunks[0][column].dtype, pd.CategoricalDtype):
            categories = union_categoricals([chunk[column] for chunk in chunks], sort_categories=True).categories
            for chunk in chunks:
                chunk[column] = chunk[column].cat.set_categories(categories)
    return pd.concat(chunks, ignore_index=True)


def check_horizon(con: Connection, spec: ModelSpec, horizon_days: int) -> None:
    """The mart's labels were built for the horizon the model is trained for (the mart states its own)."""
    built = [r[0] for r in con.execute(
        f"select distinct label_horizon_days from {spec.mart} where {spec.observed_flag} limit 2").fetchall()]
    if built and built != [horizon_days]:
        raise ValueError(f"{spec.mart} was built with label_horizon_days {', '.join(map(str, built))} but "
                         f"{spec.name} is trained for {horizon_days} days: rebuild (scorehouse build) with the "
                         "same horizon, or train with the mart's")


def _value_expression(spec: ModelSpec) -> tuple[str, str]:
    """(join, expression) giving each row's money at stake, for evaluation only."""
    if spec.value_sql:
        return f"left join ({spec.value_sql}) as v using ({spec.entity_key})", "v.row_value"
    return "", (f"m.{spec.value_column}" if spec.value_column else "null")


class LabelledChunks(list):
    """The labelled rows as fetched, to be assembled into one frame once the connection is closed."""

    def __init__(self, chunks: list[pd.DataFrame], entity_share: float) -> None:
        super().__init__(chunks)
        self.entity_share = entity_share

    def frame(self) -> pd.DataFrame:
        frame = _assemble(list(self))
        self.clear()
        frame.attrs["entity_share"] = self.entity_share
        return frame


def load_labelled(con: Connection, spec: ModelSpec, max_rows: int = MAX_LABELLED_ROWS) -> LabelledChunks:
    """Uncensored rows only: a row whose label window is not fully observed never trains a model.

    Above max_rows, the rows of a fixed, hash-chosen share of entities; the frame's attrs['entity_share'] says
    which. Returns the fetched chunks: the caller closes the connection, then assembles them (`.frame()`), so
    DuckDB's buffers are gone before the chunks are copied together (at 1M leads the load peaked at 4.5 GiB that
    way, against 6.4 GiB with the connection open)."""
    labelled = f"m.{spec.observed_flag} and m.{spec.label} is not null"
    total = int(con.execute(f"select count(*) from {spec.mart} m where {labelled}").fetchall()[0][0])
    share = min(1.0, max_rows / total) if total else 1.0
    if share < 1.0:
        labelled += f" and {entity_share_condition(con, f'm.{spec.entity_key}', share)}"
    value_join, value = _value_expression(spec)
    with transaction(con):
        casts = _enum_casts(con, spec, labelled, keep_text=spec.entity_key)
        selected = ", ".join(casts.get(c, f"m.{c}") for c in _column_names(spec))
        chunks = _fetch_compact_chunks(con.execute(
            f"select {selected}, cast({value} as double) as {VALUE} from {spec.mart} m {value_join} "
            f"where {labelled} "
            f"order by m.{spec.date_column}, m.{spec.entity_key}"
        ), keep_text=spec.entity_key)
    if sum(len(chunk) for chunk in chunks) == 0:
        raise InsufficientData(why_no_rows(con, spec) or f"{spec.mart} has no labelled rows")
    return LabelledChunks(chunks, share)


def latest_snapshot_sql(spec: ModelSpec) -> str:
    """The newest as-of date's rows: every entity still open at the data's edge."""
    return (f"select {_columns(spec)} from {spec.mart} "
            f"where {spec.date_column} = (select max({spec.date_column}) from {spec.mart}) order by {spec.entity_key}")


def load_latest_snapshot(con: Connection, spec: ModelSpec) -> pd.DataFrame:
    return con.execute(latest_snapshot_sql(spec)).df()


def load_labelled_sample(con: Connection, spec: ModelSpec, rows: int, columns: list[str] | None = None) -> pd.DataFrame:
    """A fixed-seed sample of labelled rows (for describing segments by their past conversion): every model
    column, or only `columns` and the label (the sample reads the whole labelled history: fewer columns, less)."""
    selected = _columns(spec) if columns is None else ", ".join(dict.fromkeys([*columns, spec.label]))
    return con.execute(fixed_sample_sql(
        con, f"select {selected} from {spec.mart} where {spec.observed_flag} and {spec.label} is not null", rows,
        f"{spec.entity_key}, {spec.date_column}")).df()


def load_snapshot_at(con: Connection, spec: ModelSpec, as_of_date) -> pd.DataFrame:
    """The rows of one as-of date (the reference population for drift)."""
    return con.execute(f"select {_columns(spec)} from {spec.mart} where {spec.date_column} = ?", [as_of_date]).df()


def load_export_extras(con: Connection, spec: ModelSpec) -> pd.DataFrame:
    """The export's own columns that match no contract field (kept as JSON in `_extra` of the mart's entity
    table), one row per entity, numbers as numbers: what the leakage audit checks beside the features."""
    table = ENTITY_SOURCES[spec.mart][0]
    columns = set(table_columns(con, "raw", table))
    if "_extra" not in columns or spec.entity_key not in columns:
        return pd.DataFrame(columns=[spec.entity_key])
    rows = con.execute(f"select {spec.entity_key}, any_value(_extra) from raw.{table} where _extra is not null "
                       f"group by 1").fetchall()
    if not rows:
        return pd.DataFrame(columns=[spec.entity_key])
    extras = pd.DataFrame([json.loads(text) for _, text in rows])
    for column in extras.columns:
        numbers = pd.to_numeric(extras[column], errors="coerce")
        if numbers.notna().sum() == extras[column].notna().sum():  # every filled value is a number
            extras[column] = numbers
    extras.columns = [f"_extra.{c}" for c in extras.columns]
    return extras.assign(**{spec.entity_key: [key for key, _ in rows]})
