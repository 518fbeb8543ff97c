"""Publishing: readers (BI tools, notebooks, a CRM sync) open a published copy of the warehouse, never the file a
run writes.

A run builds, trains and scores in the working warehouse (`settings.warehouse_path`). When it has passed its
gates, `publish` records the run in `meta.published_runs`, checkpoints the working file, copies it beside the
published file and renames the copy over it. The rename is atomic, so:

- a reader that opens the published file gets the previous run or the new one, never a mix of the two;
- a reader that already has it open keeps reading the run it opened (its open file is the one replaced), and
  sees the new run when it opens the file again;
- no reader ever holds a lock on the file a run writes, so a run never waits for a dashboard and a dashboard
  never fails because a run is writing.

A publish killed half way leaves the published file as it was and a `.publishing-*` copy, which the next
publish removes (and says so).
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from core.config import Settings
from core.outputs import ensure_outputs
from core.warehouse import connect, row_count, table_exists

# Tables whose row counts each published run records (those that exist).
COUNTED = ("scores.lead_scores", "scores.customer_churn_scores", "marts.rpt_lead_worklist",
           "marts.rpt_at_risk_customers", "marts.fct_lead_features", "marts.fct_customer_features")
STALE_PREFIX = ".publishing-"


def published_path(settings: Settings) -> Path:
    """Where readers connect: `published/<name>` beside the working warehouse."""
    return settings.warehouse_path.parent / "published" / settings.warehouse_path.name


@dataclass(frozen=True)
class Published:
    run_id: str
    path: Path
    bytes: int

    def where(self) -> str:
        """Where readers find this run, in words."""
        if self.bytes == 0:  # Spark: the tables themselves
            return f"the Spark catalog's tables under {self.path} (readers query them through Spark)"
        return f"{self.path} (BI tools read this file)"


def _record_run(settings: Settings, run_id: str, command: str) -> None:
    with connect(settings) as con:
        ensure_outputs(con, "meta", "published_runs")
        versions = con.execute(
            "select model_name, model_version from ml.model_registry where is_active order by 1").fetchall() \
            if table_exists(con, "ml", "model_registry") else []
        counts = {name: row_count(con, name) for name in COUNTED if table_exists(con, *name.split("."))}
        con.execute("insert into meta.published_runs values (?, ?, ?, ?, ?)",
                    [run_id, datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0), command,
                     json.dumps(dict(versions)), json.dumps(counts)])
        if settings.engine != "spark":
            con.execute("checkpoint")  # everything in the main file: the copy below needs no write-ahead log


def _fsync(path: Path) -> None:
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def clear_stale_copies(folder: Path, say: Callable[[str], None]) -> None:
    """Copies left by a publish that was killed before its rename: never read by anyone, safe to remove."""
    for stale in sorted(folder.glob(f"{STALE_PREFIX}*")):
        stale.unlink(missing_ok=True)
        say(f"removed {stale.name}, left by a publish that did not finish (the published run was not changed)")


def publish(settings: Settings, command: str, say: Callable[[str], None] = lambda _m: None) -> Published:
    """Make the working warehouse's current state the one readers see, atomically (see the module's text)."""
    run_id = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"
    _record_run(settings, run_id, command)
    if settings.engine == "spark":
        # Spark's readers query the tables in its catalog; each score table was replaced by one `insert overwrite`
        # (there is no file to copy), so the run is recorded in meta.published_runs only
        return Published(run_id, settings.spark_dir / "tables", 0)
    target = published_path(settings)
    target.parent.mkdir(parents=True, exist_ok=True)
    clear_stale_copies(target.parent, say)
    copy = target.parent / f"{STALE_PREFIX}{run_id}{target.suffix}"
    try:
        shutil.copyfile(settings.warehouse_path, copy)
        _fsync(copy)
        os.replace(copy, target)  # atomic on one file system: readers see the old file or the new one
        _fsync(target.parent)
    except OSError as error:  # disk full, read-only folder: the published run stays the previous one
        copy.unlink(missing_ok=True)
        with connect(settings) as con:  # and the working warehouse does not list a run nobody can read
            con.execute("delete from meta.published_runs where run_id = ?", [run_id])
        raise RuntimeError(f"publishing to {target} failed ({error.strerror or error}); readers still see the "
                           "previous published run, and the working warehouse is complete") from error
    return Published(run_id, target, target.stat().st_size)
