"""The command line: clear errors instead of tracebacks."""

from __future__ import annotations

import inspect
import re

import duckdb
import pytest

import core.config
from core.config import Settings
from scorehouse import __version__
from scorehouse.cli import SETTING_FLAGS, _settings, build_parser, main


def config_source() -> str:
    return inspect.getsource(core.config)


def test_score_without_a_warehouse_is_a_clear_error(tmp_path, capsys):
    code = main(["--warehouse", str(tmp_path / "none.duckdb"), "score"])
    assert code == 1
    assert "does not exist yet" in capsys.readouterr().err


def test_land_without_raw_files_names_the_folders_it_expects(tmp_path, capsys):
    code = main(["--warehouse", str(tmp_path / "w.duckdb"), "--raw-dir", str(tmp_path / "raw"), "land"])
    assert code == 1
    err = capsys.readouterr().err
    assert "no raw table folders" in err and "crm_leads" in err


def test_land_with_some_folders_creates_the_others_empty(tmp_path, capsys):
    """Any subset of sources: a missing folder is an empty table with the contract's columns, not a traceback."""
    folder = tmp_path / "raw" / "crm_leads"
    folder.mkdir(parents=True)
    (folder / "leads.csv").write_text("lead_id,created_at,_loaded_at\nL1,2024-01-02,2024-01-03\n")
    code = main(["--warehouse", str(tmp_path / "w.duckdb"), "--raw-dir", str(tmp_path / "raw"), "land"])
    assert code == 0

    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        assert con.execute("select count(*) from raw.crm_leads").fetchall()[0][0] == 1
        assert con.execute("select count(*) from raw.crm_activities").fetchall()[0][0] == 0
        columns = {r[0] for r in con.execute("describe raw.crm_activities").fetchall()}
    assert {"activity_id", "lead_id", "activity_type", "occurred_at", "_loaded_at"} <= columns


def test_options_go_before_or_after_the_verb_and_every_verb_is_described(tmp_path, capsys):
    for argv in (["--warehouse", str(tmp_path / "a.duckdb"), "score"], ["score", "--warehouse", str(tmp_path / "a.duckdb")]):
        assert main(argv) == 1
        assert f"{tmp_path / 'a.duckdb'} does not exist yet" in capsys.readouterr().err
    parser = build_parser()
    verbs = parser._subparsers._group_actions[0].choices
    assert all(p.description and len(p.description) > len(f"scorehouse {name}: ") + 10 for name, p in verbs.items())


def test_every_environment_setting_has_a_flag_and_the_flag_wins(tmp_path, monkeypatch):
    monkeypatch.setenv("SCOREHOUSE_HORIZON_DAYS", "30")
    args = build_parser().parse_args(["train", "--horizon-days", "45", "--keep-columns", "a, b", "--threads", "1"])
    settings = _settings(args)
    assert (settings.lead_horizon_days, settings.keep_columns, settings.duckdb_threads) == (45, ("a", "b"), 1)
    assert _settings(build_parser().parse_args(["train"])).lead_horizon_days == 30
    documented = Settings.__doc__ + config_source()
    env_names = set(re.findall(r"SCOREHOUSE_[A-Z_]+", documented)) - {"SCOREHOUSE_TARGET"}
    helps = " ".join(f.help for f in SETTING_FLAGS)
    assert env_names and all(name in helps for name in env_names), env_names - set(re.findall(r"SCOREHOUSE_[A-Z_]+", helps))


def test_version(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"scorehouse {__version__}"


def test_land_without_raw_files_creates_no_warehouse(tmp_path, capsys):
    assert main(["land", "--warehouse", str(tmp_path / "w.duckdb"), "--raw-dir", str(tmp_path / "raw")]) == 1
    assert not (tmp_path / "w.duckdb").exists()


def test_verbs_the_spark_engine_cannot_run_yet_are_refused_before_touching_anything(tmp_path, capsys):
    for argv, verb in ((["load", "crm_leads", "leads.csv"], "scorehouse load"),
                       (["unload", "leads.csv"], "scorehouse unload")):
        code = main(["--engine", "spark", "--spark-dir", str(tmp_path / "spark"), *argv])
        assert code == 1
        err = capsys.readouterr().err
        assert f"`{verb}` does not run on the Spark engine yet" in err and "use the DuckDB engine" in err
    assert not (tmp_path / "spark").exists()
    assert main(["--engine", "oracle", "build"]) == 1
    assert "engine 'oracle' is not one of duckdb, spark" in capsys.readouterr().err
