"""Shared fixtures: isolated settings and one small end-to-end run reused by many tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from scorehouse.config import Settings
from scorehouse.pipeline import RunReport, run_all
from scorehouse.simulate import SimulationConfig

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


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
