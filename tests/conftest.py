"""Shared fixtures: isolated settings and one small end-to-end run reused by many tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import Settings
from core.warehouse import connect
from scorehouse.pipeline import RunReport, run_all
from simulator import SimulationConfig

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def read(settings: Settings, function, *args, **kwargs):
    """Call function(con, *args) on a read-only connection to the settings' warehouse."""
    with connect(settings, read_only=True) as con:
        return function(con, *args, **kwargs)


def isolated_settings(root: Path) -> Settings:
    """Settings whose warehouse, raw files and artifacts all live under `root`."""
    return Settings().with_overrides(
        warehouse_path=root / "warehouse.duckdb", raw_dir=root / "raw", artifacts_dir=root / "artifacts"
    )


@pytest.fixture(scope="session")
def pipeline_run(tmp_path_factory) -> tuple[Settings, RunReport]:
    """The whole job on 4,000 simulated leads, built once per test session."""
    settings = isolated_settings(tmp_path_factory.mktemp("pipeline"))
    report = run_all(settings, SimulationConfig(leads=4_000, seed=11), progress=lambda _m: None)
    return settings, report
