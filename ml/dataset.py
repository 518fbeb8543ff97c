"""Read a model's rows from its feature mart."""

from __future__ import annotations

import pandas as pd

from ml.features import ModelSpec
from scorehouse.config import Settings
from scorehouse.warehouse import connect


def _columns(spec: ModelSpec) -> str:
    return ", ".join((spec.entity_key, spec.date_column, "as_of_at", *spec.features, spec.label))


def load_labelled(settings: Settings, spec: ModelSpec) -> pd.DataFrame:
    """Uncensored rows only: a row whose label window is not fully observed never trains a model."""
    with connect(settings, read_only=True) as con:
        frame = con.execute(
            f"select {_columns(spec)} from {spec.mart} where {spec.observed_flag} and {spec.label} is not null "
            f"order by {spec.date_column}, {spec.entity_key}"
        ).df()
    if frame.empty:
        raise ValueError(f"{spec.mart} has no labelled rows: is the data long enough for the label horizon?")
    return frame


def load_latest_snapshot(settings: Settings, spec: ModelSpec) -> pd.DataFrame:
    """The newest as-of date's rows: every entity still open at the data's edge."""
    with connect(settings, read_only=True) as con:
        return con.execute(
            f"select {_columns(spec)} from {spec.mart} "
            f"where {spec.date_column} = (select max({spec.date_column}) from {spec.mart}) order by {spec.entity_key}"
        ).df()
