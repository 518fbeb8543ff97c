"""One writing command at a time: a second one is refused naming the first, a killed one's lock never blocks."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import duckdb

from core.runlock import exclusive_run, lock_path
from scorehouse.cli import main
from tests.conftest import isolated_settings

HOLDER = r"""
import sys, time
from pathlib import Path
from core.runlock import exclusive_run
from tests.conftest import isolated_settings
with exclusive_run(isolated_settings(Path(sys.argv[1])), "scorehouse run --leads 2000"):
    print("holding", flush=True)
    time.sleep(600)
"""


def _hold_in_another_process(root) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(root)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "holding"
    return holder


def test_a_second_writing_command_is_refused_naming_the_first_and_changes_nothing(tmp_path, capsys):
    settings = isolated_settings(tmp_path)
    with duckdb.connect(str(settings.warehouse_path)) as con:
        con.execute("create schema raw; create table raw.crm_leads as select 'L1' as lead_id")
    before = settings.warehouse_path.read_bytes()
    holder = _hold_in_another_process(tmp_path)
    try:
        for verb in (["score"], ["build"], ["load", "crm_leads", str(tmp_path / "leads.csv")]):
            assert main(["--warehouse", str(settings.warehouse_path), *verb]) == 1
            err = capsys.readouterr().err
            assert f"another scorehouse command is writing {settings.warehouse_path}" in err, err
            assert f"pid {holder.pid}, `scorehouse run --leads 2000`, started 20" in err and "UTC" in err, err
            assert "nothing was changed" in err
        assert settings.warehouse_path.read_bytes() == before
        # a command that only reads does not wait for the writer
        assert main(["--warehouse", str(settings.warehouse_path), "contract"]) in (0, 1)
        assert "another scorehouse command" not in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()


def test_the_lock_of_a_killed_command_is_cleared_with_a_message_and_released_at_the_end(tmp_path):
    settings = isolated_settings(tmp_path)
    holder = _hold_in_another_process(tmp_path)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    assert json.loads(lock_path(settings).read_text())["pid"] == holder.pid  # the record a killed holder leaves

    said = []
    with exclusive_run(settings, "scorehouse refresh new/", said.append):
        assert json.loads(lock_path(settings).read_text())["command"] == "scorehouse refresh new/"
    assert len(said) == 1 and f"did not finish (pid {holder.pid}, `scorehouse run --leads 2000`" in said[0], said
    assert "lock is cleared" in said[0] and "running it again finishes it" in said[0]
    assert lock_path(settings).read_text() == ""  # ended normally: the next command has nothing to report

    with exclusive_run(settings, "scorehouse score", said.append):
        pass
    assert len(said) == 1


def test_a_warehouse_folder_that_cannot_be_created_is_named(tmp_path, capsys):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the warehouse folder should be")
    assert main(["--warehouse", str(blocker / "w.duckdb"), "score"]) == 1
    err = capsys.readouterr().err
    assert f"warehouse folder {blocker} cannot be written" in err and "--warehouse" in err, err
