"""The high-water marks of a full build in time steps split the open-lead time evenly (ingest/incremental.py:
time_chunks). Small raw tables with known open spans; the marks have closed forms. Also the closing statuses
(the dbt var terminal_lead_statuses) that the steps and staging both read, and the conversion status the label
reads."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import pytest

from core.config import PROJECT_ROOT
from core.contract import LEAD_FEATURE_SOURCES as LEAD_SOURCES
from core.dbt import DbtError, run_dbt
from core.warehouse import connect
from ingest.incremental import time_chunks
from tests.conftest import isolated_settings, read

START = datetime(2026, 1, 1)
# Leads closing ten days after they are known, in six steps (worked out in test_closed_leads_leave_the_open_lead_time).
MARKS_WHEN_CLOSED_AFTER_TEN_DAYS = [10 + (955 * k / 6 - 55) / 10 for k in range(1, 6)]


def raw_leads(settings, days_open: int | None, leads: int = 100,
              closing_statuses: tuple[str, str] = ("Converted ", "disqualified")) -> None:
    """Lead i known on day i from START, closed `days_open` days later (never when None) by one of
    `closing_statuses`, and one lead created after the last load; the lead sources are loaded through day `leads`."""
    with connect(settings) as con:
        con.execute("create schema raw")
        for table in set(LEAD_SOURCES) - {"crm_leads", "crm_lead_status_history"}:
            con.execute(f"create table raw.{table} (_loaded_at timestamp)")
        con.execute("create table raw.crm_leads (lead_id varchar, created_at varchar, _loaded_at timestamp)")
        con.execute("create table raw.crm_lead_status_history "
                    "(lead_id varchar, status varchar, changed_at varchar, _loaded_at timestamp)")
        end = START + timedelta(days=leads)
        # created after the last load: never open within this build
        con.execute("insert into raw.crm_leads values ('late', ?, ?)", [str(end + timedelta(days=50)), START])
        con.executemany("insert into raw.crm_leads values (?, ?, ?)",
                        [[f"L{i}", str(START + timedelta(days=i)), START + timedelta(days=i)] for i in range(leads)])
        if days_open is not None:
            # raw statuses as exported: case and spaces vary
            closing = [closing_statuses[i % 2] for i in range(leads)]
            con.executemany("insert into raw.crm_lead_status_history values (?, ?, ?, ?)",
                            [[f"L{i}", closing[i], str(START + timedelta(days=i + days_open)), START]
                             for i in range(leads)])
            # a status that does not close the lead changes nothing
            con.execute("insert into raw.crm_lead_status_history values ('L0', 'working', ?, ?)", [str(START), START])
        con.execute("insert into raw.web_pages values (?)", [end])


def days_after_start(marks: list[str]) -> list[float]:
    return [(datetime.fromisoformat(mark) - START).total_seconds() / 86400 for mark in marks]


def test_open_leads_piling_up_give_shorter_steps_later(tmp_path):
    """Leads that never close: lead i is open from day i to day 100, so n+1 leads are open during day n and
    the open-lead days up to day n are n(n+1)/2, 5,050 in all. 101 leads in steps of 26: four steps, and the
    marks fall where that reaches 1,262.5, 2,525 and 3,787.5: days 49 + 37.5/50, 70 + 40/71 and 86 + 46.5/87."""
    settings = isolated_settings(tmp_path).with_overrides(build_chunk_leads=26)
    raw_leads(settings, days_open=None)
    assert days_after_start(read(settings, time_chunks, settings)) == pytest.approx([49.75, 70.5634, 86.5345], abs=1e-4)


def test_closed_leads_leave_the_open_lead_time(tmp_path):
    """Each lead closes ten days after it is known: n+1 leads are open during day n < 10 (55 lead-days), then
    ten at a time (900 more). Six steps of 955/6 lead-days: past the ramp the marks are evenly spaced."""
    settings = isolated_settings(tmp_path).with_overrides(build_chunk_leads=20)
    raw_leads(settings, days_open=10)
    expected = MARKS_WHEN_CLOSED_AFTER_TEN_DAYS
    assert days_after_start(read(settings, time_chunks, settings)) == pytest.approx(expected, abs=1e-4)


def test_the_closing_statuses_are_the_dbt_var_staging_reads(tmp_path):
    """A project whose terminal_lead_statuses differ: its statuses close leads, after staging's cleaning
    ("Closed-Won " reads as closed_won), and the default ones no longer do."""
    project = tmp_path / "project"
    project.mkdir()
    (project / "dbt_project.yml").write_text("vars:\n  terminal_lead_statuses: [closed_won, closed_lost]\n")
    settings = isolated_settings(tmp_path).with_overrides(build_chunk_leads=20, project_root=project)
    raw_leads(settings, days_open=10, closing_statuses=("Closed-Won ", "closed lost"))
    expected = MARKS_WHEN_CLOSED_AFTER_TEN_DAYS
    assert days_after_start(read(settings, time_chunks, settings)) == pytest.approx(expected, abs=1e-4)

    other = isolated_settings(tmp_path / "default").with_overrides(build_chunk_leads=20)
    raw_leads(other, days_open=10, closing_statuses=("Closed-Won ", "closed lost"))
    assert days_after_start(read(other, time_chunks, other)) != pytest.approx(expected, abs=1e-4)


def _project_with_statuses(tmp_path, statuses: str):
    """Settings for a copy of the project whose dbt_project.yml sets the lead-status vars to `statuses`."""
    project = tmp_path / "project"
    project.mkdir(parents=True)
    text = (PROJECT_ROOT / "dbt_project.yml").read_text()
    default, conversion = "terminal_lead_statuses: [converted, disqualified]\n", "  conversion_lead_status: converted\n"
    assert default in text and conversion in text
    text = text.replace(conversion, "").replace(default, statuses)
    (project / "dbt_project.yml").write_text(text)
    (project / "profiles.yml").write_text((PROJECT_ROOT / "profiles.yml").read_text())
    (project / "dbt_project").symlink_to(PROJECT_ROOT / "dbt_project")
    return isolated_settings(tmp_path).with_overrides(project_root=project)


def _compiled(settings, selector: str, name: str = "*") -> list[str]:
    """The compiled SQL of the selected nodes (those whose file is `name`.sql)."""
    run_dbt(settings, "compile", ["--select", selector], quiet=True)
    return [path.read_text() for path in (settings.artifacts_dir / "dbt_target" / "compiled").rglob(f"{name}.sql")]


def test_staging_accepts_a_projects_own_closing_statuses(tmp_path):
    """The accepted-values test on staged statuses takes the contract's statuses plus terminal_lead_statuses, so
    a project that closes leads with its own statuses does not fail its own build."""
    settings = _project_with_statuses(
        tmp_path, "terminal_lead_statuses: [closed_won, lost]\n  conversion_lead_status: closed_won\n")
    compiled = _compiled(settings, "test_name:accepted_values,stg_crm__lead_status_changes")
    assert len(compiled) == 1
    accepted = re.findall(r"'([a-z_]+)'", compiled[0].split("not in", 1)[1])
    assert accepted == ["new", "mql", "sql", "converted", "disqualified", "closed_won", "lost"]


def test_the_label_follows_the_projects_conversion_status(tmp_path):
    """The conversion label reads the dbt var conversion_lead_status, which must be one of the closing
    statuses: a status that would not close the lead stops the build with a message naming both vars."""
    settings = _project_with_statuses(
        tmp_path, "terminal_lead_statuses: [closed_won, lost]\n  conversion_lead_status: closed_won\n")
    [labels] = _compiled(settings, "int_lead_labels", name="int_lead_labels")
    assert "status = 'closed_won'" in labels and "'converted'" not in labels

    wrong = _project_with_statuses(
        tmp_path / "wrong", "terminal_lead_statuses: [closed_won, lost]\n  conversion_lead_status: won\n")
    with pytest.raises(DbtError, match="conversion_lead_status 'won' is not one of terminal_lead_statuses "
                                       "closed_won, lost"):
        _compiled(wrong, "int_lead_labels")


def test_one_step_when_the_leads_fit(tmp_path):
    settings = isolated_settings(tmp_path).with_overrides(build_chunk_leads=1_000)
    raw_leads(settings, days_open=None)
    assert read(settings, time_chunks, settings) == []
