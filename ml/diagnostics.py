"""Why a mart has no rows or no labels, in the data's terms, and whether labelled data is enough to train on.

A build or a training run that cannot produce anything stops with one of these explanations instead of an
empty table or a library's error.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from core.contract import RAW_TABLES
from core.warehouse import Connection, table_exists
from ml.features import ModelSpec

# Per mart: the raw table of its entities, their start time, the high-water mark column, and what loads it.
ENTITY_SOURCES = {
    "marts.fct_lead_features": ("crm_leads", "created_at", "lead_observed_through", "leads"),
    "marts.fct_customer_features": ("crm_contracts", "start_date", "customer_observed_through", "customer contracts"),
}

# Below these a model is refused: too few positive entities to learn from and to judge out of time. (A leading
# CRM vendor asks for about 1,000 leads and 120 conversions before it scores; these are the bare minimum.)
MIN_ENTITIES = 200
MIN_POSITIVE_ENTITIES = 40
MIN_PERIOD_POSITIVES = 10  # each of fit, validation, test and every selection fold


class InsufficientData(ValueError):
    """The data cannot support this step; the message says why in data terms and what to do."""


class TrainingFailed(RuntimeError):
    """A learning library refused the data: the message says which data, and what it had; the library's own words
    follow as a detail."""


def _raised_by_library(error: BaseException) -> bool:
    """Whether the error was raised inside scikit-learn, NumPy or SciPy (not by scorehouse's own checks)."""
    frames, tb = [], error.__traceback__
    while tb is not None:
        frames.append(Path(tb.tb_frame.f_code.co_filename).parts)
        tb = tb.tb_next
    return bool(frames) and any(part in ("sklearn", "numpy", "scipy") for part in frames[-1])


@contextmanager
def library_in_data_terms(what: str, frame: pd.DataFrame, label: str,
                          say: Callable[[str], None]) -> Iterator[None]:
    """Run a training step so that the user meets the data, not the library: an error raised inside scikit-learn
    becomes TrainingFailed naming the rows and positives it had, and the library's warnings about the data (often
    one per fold or per fit) are printed once each with their count instead of scrolling by."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        except ValueError as error:
            if isinstance(error, InsufficientData) or not _raised_by_library(error):
                raise
            labels = frame[label].astype(int) if label in frame else pd.Series(dtype=int)
            detail = str(error).splitlines()[0] if str(error) else ""
            raise TrainingFailed(
                f"{what}: the learning step could not use the data ({len(frame):,} labelled rows, "
                f"{int(labels.sum()):,} positive, {labels.nunique()} label class(es)). This usually means too few "
                "positives in some period or category: load more history, or a shorter horizon. "
                f"Library detail: {type(error).__name__}: {detail}") from error
        finally:
            about_data = [w for w in caught if issubclass(w.category, UserWarning)]
            counts = Counter((w.category.__name__, str(w.message).splitlines()[0][:200]) for w in about_data)
            for (category, message), count in counts.items():
                say(f"  note ({category}{f', {count} times' if count > 1 else ''}): {message}")
    # the rest (deprecations and the like) go back to Python's own filters, shown or not as they would have been
    for w in caught:
        if not issubclass(w.category, UserWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


def present_sources(con: Connection) -> list[str]:
    """The raw contract tables that have rows (a team's export may cover any subset of them)."""
    return [t for t in RAW_TABLES if table_exists(con, "raw", t) and _has_rows(con, f"raw.{t}")]


def _has_rows(con: Connection, relation: str, where: str = "true") -> bool:
    """One row is enough to know (a count would scan a large mart on every build)."""
    return bool(con.execute(f"select 1 from {relation} where {where} limit 1").fetchall())


def _one(con: Connection, sql: str, params: list | None = None):
    return con.execute(sql, params or []).fetchall()[0]


def why_no_rows(con: Connection, spec: ModelSpec) -> str | None:
    """None when the mart has labelled rows; else why not, in data terms."""
    if table_exists(con, *spec.mart.split(".")) and _has_rows(
            con, spec.mart, f"{spec.observed_flag} and {spec.label} is not null"):
        return None
    table, start, observed_column, what = ENTITY_SOURCES[spec.mart]
    if not table_exists(con, "raw", table) or not _has_rows(con, f"raw.{table}"):
        return (f"no {what} are loaded (raw.{table} is empty): load them with `scorehouse load {table} FILE` "
                "(see docs/source_contract.md)")
    entities, first_start, last_start, first_load, last_load = _one(
        con, f"select count(*), min({start}), max({start}), min(_loaded_at), max(_loaded_at) from raw.{table}")
    observed = _one(con, f"select {observed_column} from intermediate.int_observed_through")[0] \
        if table_exists(con, "intermediate", "int_observed_through") else last_load
    mart_rows, first_as_of, last_as_of = _one(
        con, f"select count(*), min({spec.date_column}), max({spec.date_column}) from {spec.mart}") \
        if table_exists(con, *spec.mart.split(".")) else (0, None, None)
    if mart_rows == 0:
        if first_load is not None and pd.Timestamp(first_load) > pd.Timestamp(last_start) + pd.Timedelta(days=7):
            return (f"{spec.mart} is empty: all {entities:,} {what} were loaded between {first_load} and {last_load}, "
                    f"after every one of them had started ({first_start} to {last_start}). Features are computed as "
                    "of dates when the data had been loaded, and there are none in that range. If the export covers "
                    f"the past, unload it (`scorehouse unload FILE`) and load it again with --historical {start}.")
        return (f"{spec.mart} is empty although {entities:,} {what} are loaded ({first_start} to {last_start}, "
                f"data observed through {observed}): check raw._load_rejects and staging.stg_rejected_rows")
    horizon = _one(con, f"select max(label_horizon_days) from {spec.mart}")[0]
    return (f"{spec.mart} has {mart_rows:,} rows ({first_as_of} to {last_as_of}) but none labelled: a label "
            f"needs {horizon} days of data after its as-of date and the data is observed only through "
            f"{observed}. Load a longer history, or choose a shorter horizon (--horizon-days).")


@dataclass(frozen=True)
class Sufficiency:
    """Labelled entities and positives per period: what training had to work with."""

    table: pd.DataFrame  # period, rows, entities, positive rows, positive entities

    def lines(self) -> list[str]:
        return [f"{r.period:<11} {r.rows:>9,} rows  {r.entities:>8,} entities  {r.positive_rows:>7,} positive rows  "
                f"{r.positive_entities:>7,} positive entities" for r in self.table.itertuples()]


def sufficiency(frame: pd.DataFrame, spec: ModelSpec, masks: dict[str, object]) -> Sufficiency:
    """Rows, entities and positives in all labelled rows and in each period (masks over the frame's rows)."""
    keys = frame[[spec.entity_key, spec.label]]  # two columns: a period's selection copies only these
    rows = []
    for period, mask in {"all": slice(None), **masks}.items():
        part = keys[mask] if not isinstance(mask, slice) else keys
        positive = part[part[spec.label].astype(int) == 1]
        rows.append({"period": period, "rows": len(part), "entities": part[spec.entity_key].nunique(),
                     "positive_rows": len(positive), "positive_entities": positive[spec.entity_key].nunique()})
    return Sufficiency(pd.DataFrame(rows))


def require_enough(frame: pd.DataFrame, spec: ModelSpec) -> None:
    """Refuse to train below the stated minimum of entities and positive entities."""
    entities = frame[spec.entity_key].nunique()
    positives = frame.loc[frame[spec.label].astype(int) == 1, spec.entity_key].nunique()
    if entities < MIN_ENTITIES or positives < MIN_POSITIVE_ENTITIES:
        raise InsufficientData(
            f"{spec.mart}: {entities:,} labelled {spec.entity_key}s of which {positives:,} positive; training needs at "
            f"least {MIN_ENTITIES:,} and {MIN_POSITIVE_ENTITIES:,} positive (with fewer, an out-of-time test cannot "
            "tell a model from chance). Load more history or a shorter --horizon-days.")
