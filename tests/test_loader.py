"""Bring-your-own-data loading: every bad input gets a clear error or a reason, and nothing is lost."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.contract import generated_files
from core.warehouse import connect
from expectations.context import CONTEXT_DIR, stale_suites, suite_path
from ingest.loader import LoadError
from ingest.loader import load_file as load_into
from tests.conftest import isolated_settings

ACTIVITY_HEADER = "activity_id,lead_id,activity_type,decision_maker_reached,budget_status,occurred_at,_loaded_at"
GOOD = "A{n},L1,Call,true,Confirmed,2025-03-01 10:00:00,2025-03-02 00:00:00"


def load_file(settings, source: str, path: Path, mapping: Path | None = None):
    with connect(settings) as con:
        return load_into(con, source, path, mapping)


def _write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return path


def _rejects(settings, path: Path):
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute(
            "select line, field, reason from raw._load_rejects where source_file = ? order by line", [str(path)]
        ).fetchall()


# Each case: (name, source, file text, expected reason fragment, expected field) - one bad row among good ones.
ROW_CASES = [
    ("missing id", "crm_activities", ",L1,Call,,,2025-03-01,2025-03-02", "missing required field activity_id", "activity_id"),
    ("blank id", "crm_activities", "   ,L1,Call,,,2025-03-01,2025-03-02", "missing required field activity_id", "activity_id"),
    ("missing foreign key", "crm_activities", "X1,,Call,,,2025-03-01,2025-03-02", "missing required field lead_id", "lead_id"),
    ("unparseable timestamp", "crm_activities", "X1,L1,Call,,,yesterday,2025-03-02", "as timestamp", "occurred_at"),
    ("impossible date", "crm_activities", "X1,L1,Call,,,2025-02-30,2025-03-02", "as timestamp", "occurred_at"),
    ("future event", "crm_activities", "X1,L1,Call,,,2031-01-01,2025-03-02", "in the future", "occurred_at"),
    ("bad boolean", "crm_activities", "X1,L1,Call,maybe,,2025-03-01,2025-03-02", "as boolean", "decision_maker_reached"),
    ("bad load time", "crm_activities", "X1,L1,Call,,,2025-03-01,soon", "as timestamp", "_loaded_at"),
    ("duplicate key", "crm_activities", "A1,L1,Call,,,2025-03-01,2025-03-02", "duplicate key within the file", "activity_id"),
    ("too many fields", "crm_activities", "X1,L1,Call,,,2025-03-01,2025-03-02,extra", "TOO MANY COLUMNS", ""),
    ("too few fields", "crm_activities", "X1,L1,Call", "MISSING COLUMNS", None),
    ("unquoted delimiter", "crm_activities", "X1,L1,Call, yes, really,,2025-03-01,2025-03-02", "TOO MANY COLUMNS", ""),
    ("bad encoding", "crm_activities", b"X1,L1,Call\xff\xfe,,,2025-03-01,2025-03-02", "INVALID ENCODING", None),
    ("text in an integer", "nps_responses", None, "as integer", "score"),
    ("text in a number", "crm_opportunities", None, "as double", "amount"),
    ("missing required status", "crm_lead_status_history", None, "missing required field status", "status"),
]
OTHER_SOURCES = {
    "nps_responses": ("response_id,account_id,score,responded_at,_loaded_at",
                      "R{n},A1,9,2025-03-01,2025-03-02", "R9,A1,ten,2025-03-01,2025-03-02"),
    "crm_opportunities": ("opportunity_id,lead_id,amount,created_at,_loaded_at",
                          "O{n},L1,1000,2025-03-01,2025-03-02", "O9,L1,lots,2025-03-01,2025-03-02"),
    "crm_lead_status_history": ("status_change_id,lead_id,status,changed_at,_loaded_at",
                                "S{n},L1,MQL,2025-03-01,2025-03-02", "S9,L1,,2025-03-01,2025-03-02"),
}


@pytest.mark.parametrize("name,source,bad,reason,field", ROW_CASES, ids=[c[0] for c in ROW_CASES])
def test_a_bad_row_is_rejected_with_line_field_and_reason(tmp_path, name, source, bad, reason, field):
    settings = isolated_settings(tmp_path)
    if source == "crm_activities":
        header, good = ACTIVITY_HEADER, GOOD
    else:
        header, good, bad = OTHER_SOURCES[source]
    lines = [header.encode(), *(good.format(n=n).encode() for n in range(1, 4)),
             bad if isinstance(bad, bytes) else bad.encode(), good.format(n=7).encode()]
    path = _write(tmp_path / "in.csv", b"\n".join(lines) + b"\n")
    report = load_file(settings, source, path)
    assert report.reconciles and report.rows_read == 5
    assert (report.rows_loaded, report.rows_rejected) == (4, 1)
    rejects = _rejects(settings, path)
    assert len(rejects) == 1
    line, got_field, got_reason = rejects[0]
    assert line == 5 and reason in got_reason
    if field is not None:
        assert got_field == field


FILE_CASES = [
    ("empty file", "crm_activities", b"", "the file is empty"),
    ("missing required column", "crm_activities", b"activity_id,lead_id\nA1,L1\n", "missing required column"),
    ("unknown source", "crm_widgets", b"a\n1\n", "unknown source"),
    ("two columns for one field", "crm_activities",
     (ACTIVITY_HEADER + ",Activity ID\n" + GOOD.format(n=1) + ",x\n").encode(), "two columns map to"),
]


@pytest.mark.parametrize("name,source,text,message", FILE_CASES, ids=[c[0] for c in FILE_CASES])
def test_an_unusable_file_is_a_clear_error_and_writes_nothing(tmp_path, name, source, text, message):
    settings = isolated_settings(tmp_path)
    path = _write(tmp_path / "in.csv", text)
    with pytest.raises(LoadError, match=message) as error:
        load_file(settings, source, path)
    assert str(path) in str(error.value)


def test_unsupported_file_type_is_refused(tmp_path):
    path = _write(tmp_path / "in.xlsx", b"PK")
    with pytest.raises(LoadError, match="unsupported file type"):
        load_file(isolated_settings(tmp_path), "crm_activities", path)


def test_header_only_extra_columns_reload_and_already_loaded_rows(tmp_path):
    settings = isolated_settings(tmp_path)
    empty = load_file(settings, "crm_activities", _write(tmp_path / "h.csv", ACTIVITY_HEADER + "\n"))
    assert (empty.rows_read, empty.rows_loaded, empty.rows_rejected) == (0, 0, 0)
    first = _write(tmp_path / "a.csv", "\n".join([ACTIVITY_HEADER + ",colour", GOOD.format(n=1) + ",red"]) + "\n")
    report = load_file(settings, "crm_activities", first)
    assert report.rows_loaded == 1 and any("colour" in w for w in report.warnings)
    assert load_file(settings, "crm_activities", first).already_loaded  # same file again: nothing added
    second = _write(tmp_path / "b.csv", "\n".join([ACTIVITY_HEADER, GOOD.format(n=1), GOOD.format(n=2)]) + "\n")
    again = load_file(settings, "crm_activities", second)
    assert (again.rows_loaded, again.rows_rejected) == (1, 1)
    assert "already loaded" in _rejects(settings, second)[0][2]
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        extra = con.execute("select _extra from raw.crm_activities where activity_id = 'A1'").fetchall()[0][0]
    assert "red" in extra


def test_mapping_dialect_encoding_and_missing_load_time(tmp_path):
    settings = isolated_settings(tmp_path)
    text = "Lead;Created;Source\nL1;02/03/2025 10:00;Google Ads\nL2;31/12/2024 09:30;Referral\n"
    path = _write(tmp_path / "leads.csv", text.encode("latin-1"))
    mapping = _write(tmp_path / "map.yml", (
        "encoding: latin-1\ndate_format: '%d/%m/%Y %H:%M'\n"
        "columns: {Lead: lead_id, Created: created_at, Source: lead_source}\n"
        "values: {lead_source: {Google Ads: Paid Search}}\n"))
    report = load_file(settings, "crm_leads", path, mapping)
    assert (report.rows_loaded, report.rows_rejected) == (2, 0)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        rows = con.execute("select lead_id, created_at, lead_source, _loaded_at is not null "
                           "from raw.crm_leads order by 1").fetchall()
    assert str(rows[0][1]) == "2025-03-02 10:00:00" and rows[0][2] == "Paid Search" and rows[0][3]


def test_parquet_with_bad_values_reconciles(tmp_path):
    settings = isolated_settings(tmp_path)
    path = tmp_path / "touches.parquet"
    with duckdb.connect() as con:
        con.execute(f"""copy (select * from (values
            ('T1', 'L1', 'organic', 'c', 1.5, '2025-03-01 00:00:00', '2025-03-02 00:00:00'),
            ('T2', 'L1', 'organic', 'c', 1.5, 'garbage', '2025-03-02 00:00:00'),
            ('T3', null, 'organic', 'c', 1.5, '2025-03-01 00:00:00', '2025-03-02 00:00:00'))
            t(touch_id, lead_id, channel, campaign, cost, touched_at, _loaded_at)) to '{path}' (format parquet)""")
    report = load_file(settings, "marketing_touches", path)
    assert report.reconciles and (report.rows_read, report.rows_loaded, report.rows_rejected) == (3, 1, 2)


CELLS = st.sampled_from(["A1", "A2", "", "  ", "L1", "Call", "Meeting", "true", "maybe", "2025-03-01",
                         "2025-02-30", "not a date", "2031-01-01", "Confirmed", "x,y", '"q"', "é"])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=st.lists(st.lists(CELLS, min_size=5, max_size=9), min_size=1, max_size=12))
def test_fuzzed_files_always_reconcile(tmp_path_factory, rows):
    """Random mixes of good and bad cells: every row is loaded or rejected with a reason, and counts add up."""
    root = tmp_path_factory.mktemp("fuzz")
    settings = isolated_settings(root)
    body = [ACTIVITY_HEADER] + [",".join(r) for r in rows]
    path = _write(root / "fuzz.csv", "\n".join(body) + "\n")
    try:
        report = load_file(settings, "crm_activities", path)
    except LoadError as error:
        assert str(path) in str(error)
        return
    assert report.reconciles
    assert report.rows_read == sum(1 for line in body[1:] if line.strip())
    assert all(reason for _, _, reason in _rejects(settings, path))


def test_generated_contract_files_are_up_to_date():
    root = Path(__file__).resolve().parents[1]
    for path, text in generated_files(root).items():
        assert path.read_text(encoding="utf-8") == text, f"{path} is stale: run `scorehouse contract --write`"


def test_the_great_expectations_suites_in_the_context_match_the_contract():
    assert stale_suites() == [], "expectations/gx is stale: run `scorehouse contract --write`"
    # and the check can fail: one expectation changed in a copy of a suite is found
    suite = json.loads(suite_path(CONTEXT_DIR, "scores.lead_scores").read_text())
    suite["expectations"][0]["kwargs"]["column"] = "another"
    with tempfile.TemporaryDirectory() as scratch:
        shutil.copytree(CONTEXT_DIR, Path(scratch) / "gx")
        suite_path(Path(scratch) / "gx", "scores.lead_scores").write_text(json.dumps(suite))
        assert stale_suites(Path(scratch) / "gx") == ["scores.lead_scores: differs"]


def test_quoted_line_breaks_and_delimiters_inside_fields_load_and_reconcile(tmp_path):
    """A valid CSV whose quoted fields hold the delimiter and line breaks: each record counts once, rejects
    name the record's number (the header is 1), and rows read = loaded + rejected."""
    settings = isolated_settings(tmp_path)
    text = ("lead_id;title;company;created_at\n"
            'L1;"Head of\nSales";"Acme; Inc.";2025-01-02\n'
            'L2;"VP, ""Growth""";Beta;2025-01-03\n'
            "L3;Analyst;Gamma;not a date\n"
            'L4;"multi\nline\r\ntitle";"Delta\n";2025-01-05\n'
            "L5;CTO;Epsilon;2025-01-06;extra\n"
            "L6;CEO;Zeta;2025-01-07\n")
    path = _write(tmp_path / "leads.csv", text)
    report = load_file(settings, "crm_leads", path)
    assert report.reconciles and (report.rows_read, report.rows_loaded, report.rows_rejected) == (6, 4, 2)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        loaded = con.execute("select lead_id, title, company, _source_line from raw.crm_leads order by 1").fetchall()
    assert loaded == [("L1", "Head of\nSales", "Acme; Inc.", 2), ("L2", 'VP, "Growth"', "Beta", 3),
                      ("L4", "multi\nline\r\ntitle", "Delta\n", 5), ("L6", "CEO", "Zeta", 7)]
    rejects = _rejects(settings, path)
    assert [(line, field) for line, field, _ in rejects] == [(4, "created_at"), (6, "")]
    assert "as timestamp" in rejects[0][2] and "TOO MANY COLUMNS" in rejects[1][2]


def test_a_field_declared_known_after_the_outcome_never_reaches_its_column(tmp_path):
    """known_at: after_outcome keeps the field's values in _extra, out of the contract column every feature reads,
    and records the declaration; a wrong declaration is a clear error naming the file."""
    settings = isolated_settings(tmp_path)
    path = _write(tmp_path / "acts.csv", "\n".join([ACTIVITY_HEADER, GOOD.format(n=1), GOOD.format(n=2)]) + "\n")
    mapping = _write(tmp_path / "map.yml", "known_at: {budget_status: after_outcome, activity_type: at_creation}\n")
    report = load_file(settings, "crm_activities", path, mapping)
    assert (report.rows_loaded, report.rows_rejected) == (2, 0)
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        rows = con.execute("select budget_status, activity_type, _extra from raw.crm_activities order by 1").fetchall()
        logged = con.execute("select known_at from raw._load_log").fetchall()[0][0]
    assert all(budget is None and kind == "Call" and '"budget_status":"Confirmed"' in extra.replace(" ", "")
               for budget, kind, extra in rows)
    assert "after_outcome" in logged
    for text, message in (("known_at: {budget: after_outcome}\n", "known_at: 'budget' is not a field of crm_activities"),
                          ("known_at: {budget_status: later}\n", "known 'later'; use one of"),
                          ("known_at: {lead_id: after_outcome}\n", "lead_id is required")):
        with pytest.raises(LoadError, match=message):
            load_file(settings, "crm_activities", _write(tmp_path / "other.csv", ACTIVITY_HEADER + "\n" + GOOD.format(n=5)
                                                         + "\n"), _write(tmp_path / "bad.yml", text))
