"""One typed settings object for every job; environment variables override defaults."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field, replace
from datetime import datetime
from functools import cache
from numbers import Integral
from pathlib import Path

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[1]
ENGINES = ("duckdb", "spark")
MEMORY_LIMIT = re.compile(r"^\d+(\.\d+)?\s*(K|M|G|T)i?B$", re.IGNORECASE)


@cache
def dbt_project_vars(project_root: Path = PROJECT_ROOT) -> dict[str, object]:
    """The defaults under `vars:` in dbt_project.yml: the one place that states the horizons, the control share,
    the topic count and the lead statuses, for dbt and Python alike."""
    with open(project_root / "dbt_project.yml", encoding="utf-8") as project:
        return dict(yaml.safe_load(project)["vars"])


# Content topics per warehouse; the lead mart's contract has one share column per topic, so it is fixed.
CONTENT_TOPIC_COUNT = int(dbt_project_vars()["content_topic_count"])


def _env_or_var(env: str, var: str, cast=int):
    """A setting's default: the environment variable if set, else the dbt var of the same meaning."""
    value = os.environ.get(env)
    return cast(value) if value else cast(dbt_project_vars()[var])


def _env_path(name: str, default: Path) -> Path:
    value = os.environ.get(name)
    return Path(value).expanduser().resolve() if value else default


def _env_names(env: str) -> tuple[str, ...]:
    """A comma-separated list of column names from the environment."""
    return tuple(c.strip() for c in os.environ.get(env, "").split(",") if c.strip())


@dataclass(frozen=True)
class Settings:
    """Where things live and the few knobs that change results.

    Environment overrides: SCOREHOUSE_ENGINE (duckdb or spark), SCOREHOUSE_SPARK_DIR (Spark's tables and
    catalog), SCOREHOUSE_WAREHOUSE (DuckDB file), SCOREHOUSE_RAW_DIR
    (simulated or landed files), SCOREHOUSE_ARTIFACTS (model files),
    SCOREHOUSE_HORIZON_DAYS (lead label horizon), SCOREHOUSE_CHURN_HORIZON_DAYS (churn label horizon).
    """

    project_root: Path = PROJECT_ROOT
    warehouse_path: Path = field(
        default_factory=lambda: _env_path("SCOREHOUSE_WAREHOUSE", PROJECT_ROOT / "warehouse" / "scorehouse.duckdb")
    )
    raw_dir: Path = field(default_factory=lambda: _env_path("SCOREHOUSE_RAW_DIR", PROJECT_ROOT / "data" / "raw"))
    artifacts_dir: Path = field(
        default_factory=lambda: _env_path("SCOREHOUSE_ARTIFACTS", PROJECT_ROOT / "artifacts")
    )
    lead_horizon_days: int = field(default_factory=lambda: _env_or_var("SCOREHOUSE_HORIZON_DAYS", "lead_horizon_days"))
    churn_horizon_days: int = field(
        default_factory=lambda: _env_or_var("SCOREHOUSE_CHURN_HORIZON_DAYS", "churn_horizon_days"))
    # Share of the most recent labelled as-of dates held out as the out-of-time test set.
    test_fraction: float = 0.20
    # Share of the remaining (embargoed) training dates used for calibration and threshold choice.
    validation_fraction: float = 0.20
    random_seed: int = 7
    # Rolling out-of-time folds used to compare candidate models.
    cv_folds: int = 3
    # Share of the day's call slots routed to randomly drawn leads regardless of score (the control group).
    control_share: float = field(
        default_factory=lambda: _env_or_var("SCOREHOUSE_CONTROL_SHARE", "control_share", float))
    # Optional fixed high-water mark (ISO date): build, train and score as if the data ended then.
    observed_through: str | None = None
    # Columns the leakage audit may flag but should keep (comma-separated in SCOREHOUSE_KEEP_COLUMNS).
    keep_columns: tuple[str, ...] = field(default_factory=lambda: _env_names("SCOREHOUSE_KEEP_COLUMNS"))
    # Columns to leave out of training although the audit only warned about them (SCOREHOUSE_DROP_COLUMNS).
    drop_columns: tuple[str, ...] = field(default_factory=lambda: _env_names("SCOREHOUSE_DROP_COLUMNS"))
    # How the flag threshold is chosen on the validation period: f1, precision:P, recall:R or capacity:N.
    threshold_policy: str = field(default_factory=lambda: os.environ.get("SCOREHOUSE_THRESHOLD_POLICY", "f1"))
    # DuckDB resource limits, so a large build stays within a small machine. The limit covers DuckDB's buffers
    # only; dbt and Python add about a GiB: with 7GB a 1M-lead build peaked at 7.3 GiB, with 8GB at 8.3 GiB.
    duckdb_memory_limit: str = field(default_factory=lambda: os.environ.get("SCOREHOUSE_MEMORY_LIMIT", "7GB"))
    duckdb_threads: int = field(default_factory=lambda: int(os.environ.get("SCOREHOUSE_THREADS", str(os.cpu_count() or 2))))
    # The warehouse engine: duckdb (a local file, the default) or spark (profiles.yml's `spark` target; Python and
    # dbt use the same session and catalog). Spark's tables and catalog live in spark_dir.
    engine: str = field(default_factory=lambda: os.environ.get("SCOREHOUSE_ENGINE", "duckdb"))
    spark_dir: Path = field(
        default_factory=lambda: _env_path("SCOREHOUSE_SPARK_DIR", PROJECT_ROOT / "warehouse" / "spark"))
    # A full build of more leads than this runs in time steps (ingest/incremental.py: time_chunks).
    build_chunk_leads: int = field(default_factory=lambda: int(os.environ.get("SCOREHOUSE_BUILD_CHUNK_LEADS", "100000")))

    def __post_init__(self) -> None:
        """Settings that reach SQL or a resource limit are checked here, whatever set them (flag, environment or
        code): a bad one is an error naming it, never text spliced into a query."""
        problems = []
        if self.observed_through is not None:
            try:
                datetime.fromisoformat(str(self.observed_through))
            except ValueError:
                problems.append(f"as-of date {self.observed_through!r} is not a date (YYYY-MM-DD, optionally "
                                "with a time)")
        for name in ("lead_horizon_days", "churn_horizon_days", "duckdb_threads", "build_chunk_leads"):
            if not isinstance(getattr(self, name), Integral) or getattr(self, name) < 1:
                problems.append(f"{name} {getattr(self, name)!r} is not a positive whole number")
        if not 0 <= float(self.control_share) < 1:
            problems.append(f"control_share {self.control_share!r} is not a share in [0, 1)")
        if not MEMORY_LIMIT.match(str(self.duckdb_memory_limit)):
            problems.append(f"memory limit {self.duckdb_memory_limit!r} is not a size such as 7GB or 512MB")
        if self.engine not in ENGINES:
            problems.append(f"engine {self.engine!r} is not one of {', '.join(ENGINES)}")
        if problems:
            raise ValueError("; ".join(problems))

    @property
    def warehouse_name(self) -> str:
        """Where the warehouse is, in words, for messages."""
        return f"Spark catalog in {self.spark_dir}" if self.engine == "spark" else str(self.warehouse_path)

    @property
    def dbt_profiles_dir(self) -> Path:
        return self.project_root

    @property
    def models_dir(self) -> Path:
        return self.artifacts_dir / "models"

    def with_overrides(self, **changes: object) -> Settings:
        return replace(self, **changes)

    def dbt_vars(self) -> dict[str, object]:
        """Variables every dbt invocation gets, so SQL and Python agree on the horizons."""
        return {
            "lead_horizon_days": self.lead_horizon_days,
            "churn_horizon_days": self.churn_horizon_days,
            "observed_through": self.observed_through,
            "control_share": self.control_share,
            "content_topic_count": CONTENT_TOPIC_COUNT,
        }

    def dbt_env(self) -> dict[str, str]:
        return {
            "SCOREHOUSE_TARGET": self.engine,
            "SCOREHOUSE_SPARK_DIR": str(self.spark_dir),
            "SCOREHOUSE_WAREHOUSE": str(self.warehouse_path),
            "SCOREHOUSE_MEMORY_LIMIT": self.duckdb_memory_limit,
            "SCOREHOUSE_THREADS": str(self.duckdb_threads),
        }
