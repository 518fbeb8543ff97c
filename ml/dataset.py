"""Read a model's rows from its feature mart."""

from __future__ import annotations

import pandas as pd
from pandas.api.types import is_string_dtype, union_categoricals

from ml.features import ModelSpec
from scorehouse.config import Settings
from scorehouse.warehouse import connect

VALUE = "_row_value"  # evaluation only: money at stake per row (never a feature)


def _columns(spec: ModelSpec, prefix: str = "") -> str:
    names = dict.fromkeys((spec.entity_key, spec.date_column, "as_of_at", *spec.features, *spec.segments, spec.label))
    return ", ".join(f"{prefix}{name}" for name in names)


# Training reads at most about this many labelled rows: beyond it, a fixed share of entities (all their rows),
# so memory stays bounded at millions of leads. Fold fits and the final fit sample further (ml/selection.py).
MAX_LABELLED_ROWS = 2_000_000
FETCH_VECTORS = 64  # rows arrive in chunks of 64 DuckDB vectors (131,072 rows)


def _fetch_compact_chunks(result, keep_text: str) -> list[pd.DataFrame]:
    """A query result in chunks whose text columns (but keep_text) are pandas categories, converted as rows
    arrive. As Python strings a text value takes about 60 bytes a row, so the 2M training rows with their ~17
    text columns would take about 2 GiB; as category codes they take a few MiB, and every later copy (periods,
    folds) shrinks with them."""
    chunks = []
    while not (chunk := result.fetch_df_chunk(FETCH_VECTORS)).empty:
        for column in chunk.columns:
            if column != keep_text and is_string_dtype(chunk[column]):
                chunk[column] = chunk[column].astype("category")
        chunks.append(chunk)
    return chunks or [result.df()]


def _assemble(chunks: list[pd.DataFrame]) -> pd.DataFrame:
    """One frame from the chunks, column by column so that text never comes back as strings (the chunks'
    categories differ; a union recodes them). Called after the connection closes, so that DuckDB's buffers
    are gone before the frame is copied together: at 1M leads the load then peaked at 4.5 GiB, against
    6.4 GiB with the connection still open."""
    if len(chunks) == 1:
        return chunks[0]
    frame = {}
    for column in chunks[0].columns:
        parts = [chunk.pop(column) for chunk in chunks]  # each chunk's column is freed as it is copied
        frame[column] = (union_categoricals(parts, sort_categories=True)
                         if isinstance(parts[0].dtype, pd.CategoricalDtype) else pd.concat(parts, ignore_index=True))
    return pd.DataFrame(frame)


def load_labelled(settings: Settings, spec: ModelSpec, max_rows: int = MAX_LABELLED_ROWS) -> pd.DataFrame:
    """Uncensored rows only: a row whose label window is not fully observed never trains a model.

    Above max_rows, the rows of a fixed, hash-chosen share of entities; frame.attrs['entity_share'] says which."""
    labelled = f"m.{spec.observed_flag} and m.{spec.label} is not null"
    with connect(settings, read_only=True) as con:
        total = int(con.execute(f"select count(*) from {spec.mart} m where {labelled}").fetchone()[0])
    share = min(1.0, max_rows / total) if total else 1.0
    if share < 1.0:
        labelled += f" and hash(m.{spec.entity_key}) % 1000000 < {int(share * 1_000_000)}"
    if spec.value_sql:
        value_join = f"left join ({spec.value_sql}) as v using ({spec.entity_key})"
        value = "v.row_value"
    else:
        value_join = ""
        value = f"m.{spec.value_column}" if spec.value_column else "null"
    with connect(settings, read_only=True) as con:
        chunks = _fetch_compact_chunks(con.execute(
            f"select {_columns(spec, 'm.')}, cast({value} as double) as {VALUE} from {spec.mart} m {value_join} "
            f"where {labelled} "
            f"order by m.{spec.date_column}, m.{spec.entity_key}"
        ), keep_text=spec.entity_key)
    frame = _assemble(chunks)
    if frame.empty:
        raise ValueError(f"{spec.mart} has no labelled rows: is the data long enough for the label horizon?")
    frame.attrs["entity_share"] = share
    return frame


def load_latest_snapshot(settings: Settings, spec: ModelSpec) -> pd.DataFrame:
    """The newest as-of date's rows: every entity still open at the data's edge."""
    with connect(settings, read_only=True) as con:
        return con.execute(
            f"select {_columns(spec)} from {spec.mart} "
            f"where {spec.date_column} = (select max({spec.date_column}) from {spec.mart}) order by {spec.entity_key}"
        ).df()


def load_labelled_sample(settings: Settings, spec: ModelSpec, rows: int,
                         columns: list[str] | None = None) -> pd.DataFrame:
    """A fixed-seed sample of labelled rows (for describing segments by their past conversion): every model
    column, or only `columns` and the label (the sample reads the whole labelled history: fewer columns, less)."""
    selected = _columns(spec) if columns is None else ", ".join(dict.fromkeys([*columns, spec.label]))
    with connect(settings, read_only=True) as con:
        return con.execute(
            f"select {selected} from {spec.mart} where {spec.observed_flag} and {spec.label} is not null "
            f"using sample reservoir({int(rows)} rows) repeatable (7)"
        ).df()


def load_snapshot_at(settings: Settings, spec: ModelSpec, as_of_date) -> pd.DataFrame:
    """The rows of one as-of date (the reference population for drift)."""
    with connect(settings, read_only=True) as con:
        return con.execute(f"select {_columns(spec)} from {spec.mart} where {spec.date_column} = ?", [as_of_date]).df()
