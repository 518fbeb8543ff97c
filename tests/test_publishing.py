"""Readers never block and never see half a run: BI tools read the published warehouse while `run` and `refresh`
write the working one, and each publish swaps in a whole run at once."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd

from core.publish import STALE_PREFIX, clear_stale_copies, publish, published_path
from scorehouse.pipeline import refresh, run_all
from simulator import SimulationConfig
from tests.conftest import isolated_settings, new_activities

# A reader like a dashboard: `hold` keeps one read-only connection for the whole test, `reopen` connects afresh
# for every read. Each read checks, in one snapshot, that the score table and the worklist come from one scoring
# run and match the row count the published run recorded.
READER = r"""
import json, sys, time
from pathlib import Path
import duckdb

path, stop, out, mode = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), sys.argv[4]
reads, errors, inconsistent, runs = 0, [], [], set()
held = duckdb.connect(str(path), read_only=True) if mode == "hold" else None
while not stop.exists():
    con = held or duckdb.connect(str(path), read_only=True)
    try:
        run, counts = con.execute("select run_id, row_counts from meta.published_runs "
                                  "order by published_at desc, run_id desc limit 1").fetchone()
        scores = con.execute("select count(*), count(distinct scored_at), max(scored_at) "
                             "from scores.lead_scores").fetchone()
        worklist = con.execute("select count(distinct scored_at), max(scored_at) from marts.rpt_lead_worklist").fetchone()
        reads += 1
        runs.add(run)
        if not (scores[1] == 1 and worklist[0] == 1 and scores[2] == worklist[1]
                and json.loads(counts)["scores.lead_scores"] == scores[0]):
            inconsistent.append([run, list(map(str, scores)), list(map(str, worklist))])
    except Exception as error:
        errors.append(repr(error))
    finally:
        if held is None:
            con.close()
    time.sleep(0.2)
out.write_text(json.dumps({"reads": reads, "errors": errors, "inconsistent": inconsistent, "runs": sorted(runs)}))
"""


def _start_reader(tmp_path: Path, published: Path, mode: str) -> tuple[subprocess.Popen, Path]:
    script, out = tmp_path / "reader.py", tmp_path / f"reader-{mode}.json"
    script.write_text(READER)
    process = subprocess.Popen([sys.executable, str(script), str(published), str(tmp_path / "stop"), str(out), mode])
    return process, out


# Columns that say when or where a run happened, not what it found.
RUN_STAMPS = {"scored_at", "model_version", "trained_at", "artifact_path", "metadata_json", "published_at", "run_id",
              "report_path"}
# What two runs from the same raw data and seed must agree on: features, scores, reasons, worklist, model choice.
COMPARED = ("marts.fct_lead_features", "marts.fct_customer_features", "scores.lead_scores",
            "scores.customer_churn_scores", "scores.score_reasons", "marts.rpt_lead_worklist",
            "marts.rpt_at_risk_customers", "ml.model_registry")


def _results(con: duckdb.DuckDBPyConnection, table: str) -> pd.DataFrame:
    frame = con.execute(f"select * from {table}").df()
    frame = frame.drop(columns=[c for c in frame.columns if c in RUN_STAMPS])
    keys = [c for c in frame.columns if not pd.api.types.is_float_dtype(frame[c])]
    return frame.sort_values(keys).reset_index(drop=True)


def _differences(a: Path, b: Path) -> dict[str, str]:
    """Tables whose contents differ between two warehouses beyond 1e-12 (run stamps aside), with the first
    difference pandas reports."""
    differences = {}
    with duckdb.connect(str(a), read_only=True) as left, duckdb.connect(str(b), read_only=True) as right:
        for table in COMPARED:
            x, y = _results(left, table), _results(right, table)
            try:
                assert len(x) > 0 or table == "marts.rpt_at_risk_customers", "empty"  # few at-risk accounts at 4,000 leads
                pd.testing.assert_frame_equal(x, y, check_exact=False, rtol=0, atol=1e-12)
            except AssertionError as error:
                differences[table] = str(error)[:400]
    return differences


def test_readers_see_whole_runs_and_a_fresh_warehouse_from_the_same_seed_gives_the_same_results(pipeline_run, tmp_path):
    """Two readers poll the published warehouse while `run` builds a fresh warehouse from the session run's seed
    and `refresh` then appends a day. Readers never fail and never see a mix; the fresh run equals the session
    run table for table (features, scores, reasons, worklist with its controls and queue, model choice)."""
    source, _ = pipeline_run
    settings = isolated_settings(tmp_path / "warehouse")
    published = published_path(settings)
    published.parent.mkdir(parents=True)
    # The session run as it published itself (other tests may since have trained a challenger in its working
    # warehouse): the baseline for the same-seed comparison, and what readers see before this run publishes.
    session_run = tmp_path / "session-run.duckdb"
    shutil.copyfile(published_path(source), session_run)
    shutil.copyfile(session_run, published)
    with duckdb.connect(str(published), read_only=True) as con:
        first_run = con.execute("select run_id from meta.published_runs").fetchall()
    assert len(first_run) == 1  # the end-to-end run published once

    readers = [_start_reader(tmp_path, published, mode) for mode in ("hold", "reopen")]
    try:
        run_all(settings, SimulationConfig(leads=4_000, seed=11), progress=lambda _m: None)
        same_seed_differences = _differences(session_run, settings.warehouse_path)
        refresh(settings, new_activities(settings, tmp_path / "new"), progress=lambda _m: None)
    finally:
        (tmp_path / "stop").touch()
        for process, _ in readers:
            process.wait(timeout=60)
    assert same_seed_differences == {}
    (hold, _), (reopen, _) = [(json.loads(out.read_text()), out) for _, out in readers]
    for seen in (hold, reopen):
        assert seen["errors"] == [] and seen["inconsistent"] == [] and seen["reads"] > 20, seen
    assert hold["runs"] == [first_run[0][0]]  # an open connection keeps the run it opened
    assert len(reopen["runs"]) >= 2  # a fresh connection sees each newly published run
    with duckdb.connect(str(published), read_only=True) as con:
        commands = con.execute("select command from meta.published_runs order by published_at, run_id").fetchall()
    assert [c for (c,) in commands] == ["run", "refresh"]


def test_a_publish_that_died_before_its_rename_leaves_the_published_run_and_is_cleaned_up(tmp_path, monkeypatch):
    settings = isolated_settings(tmp_path)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("create schema scores; create table scores.lead_scores as select 1 as lead_id")
    first = publish(settings, "score lead")
    stale = published_path(settings).parent / f"{STALE_PREFIX}killed.duckdb"
    stale.write_bytes(b"half a copy")

    def full_disk(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(shutil, "copyfile", full_disk)
    said = []
    try:
        publish(settings, "score lead", said.append)
        raise AssertionError("the publish should have failed")
    except RuntimeError as error:
        assert "No space left on device" in str(error) and "readers still see the previous published run" in str(error)
    assert any("left by a publish that did not finish" in line for line in said) and not stale.exists()
    for path in (published_path(settings), settings.warehouse_path):  # neither lists the failed run
        with duckdb.connect(str(path), read_only=True) as con:
            assert con.execute("select run_id from meta.published_runs").fetchall() == [(first.run_id,)]
    assert [p.name for p in published_path(settings).parent.iterdir()] == [published_path(settings).name]
    clear_stale_copies(published_path(settings).parent, said.append)  # nothing left to clear
