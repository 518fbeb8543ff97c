"""The command line: clear errors instead of tracebacks."""

from __future__ import annotations

from scorehouse.cli import main


def test_score_without_a_warehouse_is_a_clear_error(tmp_path, capsys):
    code = main(["--warehouse", str(tmp_path / "none.duckdb"), "score"])
    assert code == 1
    assert "does not exist yet" in capsys.readouterr().err


def test_land_without_raw_files_names_the_missing_folders(tmp_path, capsys):
    code = main(["--warehouse", str(tmp_path / "w.duckdb"), "--raw-dir", str(tmp_path / "raw"), "land"])
    assert code == 1
    err = capsys.readouterr().err
    assert "missing raw table folders" in err and "crm_leads" in err
