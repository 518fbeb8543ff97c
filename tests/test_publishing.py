"""Readers never block and never see half a run: BI tools read the published warehouse while `run` and `refresh`
write the working one, and each publish swaps in a whole run at once."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb

from core.publish import STALE_PREFIX, clear_stale_copies, publish, published_path
from scorehouse.pipeline import refresh, run_all
from simulator import SimulationConfig
from tests.conftest import isolated_settings
from tests.test_incremental import _new_activities

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


def test_readers_see_whole_runs_and_never_block_while_run_and_refresh_write(pipeline_run, tmp_path):
    source, _ = pipeline_run
    root = tmp_path / "warehouse"
    shutil.copytree(source.warehouse_path.parent, root)
    settings = isolated_settings(root)
    published = published_path(settings)
    with duckdb.connect(str(published), read_only=True) as con:
        first_run = con.execute("select run_id from meta.published_runs").fetchall()
    assert len(first_run) == 1  # the end-to-end run published once

    readers = [_start_reader(tmp_path, published, mode) for mode in ("hold", "reopen")]
    try:
        run_all(settings, SimulationConfig(leads=4_000, seed=11), progress=lambda _m: None)
        refresh(settings, _new_activities(settings, tmp_path / "new"), progress=lambda _m: None)
    finally:
        (tmp_path / "stop").touch()
        for process, _ in readers:
            process.wait(timeout=60)
    (hold, _), (reopen, _) = [(json.loads(out.read_text()), out) for _, out in readers]
    for seen in (hold, reopen):
        assert seen["errors"] == [] and seen["inconsistent"] == [] and seen["reads"] > 20, seen
    assert hold["runs"] == [first_run[0][0]]  # an open connection keeps the run it opened
    assert len(reopen["runs"]) >= 2  # a fresh connection sees each newly published run
    with duckdb.connect(str(published), read_only=True) as con:
        commands = con.execute("select command from meta.published_runs order by published_at, run_id").fetchall()
    assert [c for (c,) in commands] == ["run", "run", "refresh"]


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
