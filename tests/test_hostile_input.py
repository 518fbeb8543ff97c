"""Hostile and messy input: no SQL injection, no silent corruption, no traceback. Each numbered case of a careful
user's session has a test here; a fuzz test throws random files and random mapping files at the loader."""

from __future__ import annotations

import hashlib
import string
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from core.warehouse import connect
from ingest.loader import LoadError, load_file, unload_file
from ingest.mapping import MappingError
from scorehouse.cli import main
from tests.conftest import isolated_settings

FIRMO = "enrichment_id,company_domain,employee_count,enriched_at,_loaded_at"


def _write(path: Path, text: str | bytes, encoding: str = "utf-8") -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode(encoding))
    return path


def _load(settings, source, path, mapping=None):
    with connect(settings) as con:
        return load_file(con, source, path, mapping)


def _rows(settings, sql):
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute(sql).fetchall()


def _cli(settings, *args):
    return main(["--warehouse", str(settings.warehouse_path), "--artifacts", str(settings.artifacts_dir), *args])


def _flat_file(path: Path, n: int = 300, label=("yes", "no"), seed: int = 3) -> Path:
    rng = np.random.default_rng(seed)
    score = rng.normal(size=n)
    frame = pd.DataFrame({"Lead Number": range(1, n + 1), "Visits": rng.poisson(3, n) + (score > 0),
                          "Source": rng.choice(["web", "ads", "event"], n),
                          "Converted": np.where(rng.random(n) < 1 / (1 + np.exp(-2 * score)), label[0], label[1])})
    frame.to_csv(path, index=False)
    return path


def _leads_table_digest(settings) -> str:
    return hashlib.sha256(str(_rows(settings, "select * from raw.crm_leads order by lead_id")).encode()).hexdigest()


@pytest.fixture
def warehouse_with_leads(tmp_path):
    """A warehouse holding 120 leads, as a team's first load left it."""
    settings = isolated_settings(tmp_path)
    body = "\n".join(f"L{k},2025-01-{1 + k % 28:02d} 10:00:00,2025-02-01 00:00:00" for k in range(120))
    _load(settings, "crm_leads", _write(tmp_path / "leads.csv", "lead_id,created_at,_loaded_at\n" + body + "\n"))
    return settings


# 1. SQL injection ------------------------------------------------------------------------------------------------

def test_a_flat_name_cannot_inject_sql_and_a_hostile_file_name_becomes_a_plain_name(warehouse_with_leads, tmp_path,
                                                                                    capsys):
    settings = warehouse_with_leads
    before = _leads_table_digest(settings)
    path = _flat_file(tmp_path / "leads.csv")
    hostile = "x as select 1 as a; drop table raw.crm_leads; create table raw.flat_y"
    assert _cli(settings, "load-flat", str(path), "--label", "Converted", "--name", hostile) == 1
    err = capsys.readouterr().err
    assert err.startswith("scorehouse load-flat: error: --name 'x as select 1") and "letters, digits" in err
    assert _leads_table_digest(settings) == before
    # the same attack through the file's name: it is reduced to a plain name, and the file loads
    named = tmp_path / "x'; drop table raw.crm_leads;\t--.csv.gz"
    pd.read_csv(path).to_csv(named, index=False, compression="gzip")
    assert _cli(settings, "load-flat", str(named), "--label", "Converted") == 0
    assert "raw.flat_x_drop_table_raw_crm_leads" in capsys.readouterr().out
    assert _leads_table_digest(settings) == before
    assert _rows(settings, "select count(*) from raw.flat_x_drop_table_raw_crm_leads") == [(300,)]


def test_values_and_names_in_a_load_reach_sql_only_quoted(warehouse_with_leads, tmp_path):
    """A file name, header names and values that look like SQL are data: they load, nothing else changes."""
    settings = warehouse_with_leads
    before = _leads_table_digest(settings)
    path = _write(tmp_path / "a'; drop table raw.crm_leads; --.csv",
                  'enrichment_id,company_domain,"x"""" ; drop table raw.crm_leads; --",enriched_at,_loaded_at\n'
                  "E1,'); drop table raw.crm_leads; --,v,2025-01-01,2025-01-02\n")
    report = _load(settings, "enrichment_firmographics", path)
    assert (report.rows_read, report.rows_loaded) == (1, 1)
    assert _leads_table_digest(settings) == before
    assert _rows(settings, "select company_domain from raw.enrichment_firmographics") == \
        [("'); drop table raw.crm_leads; --",)]


def test_settings_that_reach_sql_are_checked_not_spliced(warehouse_with_leads, capsys):
    settings = warehouse_with_leads
    before = _leads_table_digest(settings)
    assert _cli(settings, "run", "--as-of", "2025-01-01' as timestamp); drop table raw.crm_leads; --") == 1
    assert capsys.readouterr().err == ("scorehouse run: error: as-of date \"2025-01-01' as timestamp); drop table "
                                       "raw.crm_leads; --\" is not a date (YYYY-MM-DD, optionally with a time)\n")
    assert _cli(settings, "build", "--memory-limit", "1GB'; drop table raw.crm_leads; --") == 1
    assert "is not a size such as 7GB" in capsys.readouterr().err
    assert _leads_table_digest(settings) == before


def test_a_raw_folder_whose_path_has_a_quote_lands(tmp_path):
    from core.warehouse import land_tables

    folder = tmp_path / "it's raw; drop table x"
    _write((folder / "crm_leads").mkdir(parents=True) or folder / "crm_leads" / "part.csv",
           "lead_id,created_at,_loaded_at\nL1,2025-01-01,2025-01-02\n")
    with duckdb.connect() as con:
        assert land_tables(con, folder, "raw", ("crm_leads",)) == {"raw.crm_leads": 1}


# 2. Time zones and one date format per column ----------------------------------------------------------------------

def test_offsets_are_converted_to_utc_and_a_date_column_is_read_in_one_format(tmp_path):
    settings = isolated_settings(tmp_path)
    path = _write(tmp_path / "f.csv", FIRMO + "\n"
                  "E1,a.com,5,2025-03-01T10:00:00+05:00,2025-03-03\n"
                  "E2,b.com,5,2025-03-01 10:00:00-0800,2025-03-03\n"
                  "E3,c.com,5,2025-03-01T10:00:00Z,2025-03-03\n"
                  "E4,d.com,5,2025-03-01 10:00:00,2025-03-03\n")
    _load(settings, "enrichment_firmographics", path)
    got = dict(_rows(settings, "select enrichment_id, strftime(enriched_at, '%Y-%m-%d %H:%M') "
                               "from raw.enrichment_firmographics"))
    assert got == {"E1": "2025-03-01 05:00", "E2": "2025-03-01 18:00", "E3": "2025-03-01 10:00",
                   "E4": "2025-03-01 10:00"}

    # 03/01/2025 and 01/13/2025 in one column: month-first reads both, so both are read month-first; a value
    # that only the other order reads (13/01/2025) is rejected, not re-guessed
    path = _write(tmp_path / "g.csv", FIRMO + "\n"
                  "G1,a.com,5,03/01/2025,03/20/2025\nG2,b.com,5,01/13/2025,03/20/2025\n"
                  "G3,c.com,5,02/14/2025,03/20/2025\nG4,d.com,5,13/01/2025,03/20/2025\n")
    report = _load(settings, "enrichment_firmographics", path)
    assert (report.rows_loaded, report.rows_rejected) == (3, 1)
    got = dict(_rows(settings, "select enrichment_id, cast(enriched_at as date)::varchar from "
                               "raw.enrichment_firmographics where enrichment_id like 'G%'"))
    assert got == {"G1": "2025-03-01", "G2": "2025-01-13", "G3": "2025-02-14"}
    assert _rows(settings, "select line, reason from raw._load_rejects") == \
        [(5, "cannot read 13/01/2025 as timestamp in this column's format %m/%d/%Y")]


def test_a_date_column_both_orders_read_is_read_day_first_and_the_load_says_so(tmp_path):
    settings = isolated_settings(tmp_path)
    path = _write(tmp_path / "f.csv", FIRMO + "\nE1,a.com,5,03/01/2025,04/01/2025\n")
    report = _load(settings, "enrichment_firmographics", path)
    assert any("enriched_at: every date reads as %d/%m/%Y and as %m/%d/%Y" in w for w in report.warnings)
    assert _rows(settings, "select cast(enriched_at as date)::varchar from raw.enrichment_firmographics") == \
        [("2025-01-03",)]


# 3. Valid files that were refused ---------------------------------------------------------------------------------

def test_quoted_line_breaks_utf16_and_blank_lines_load_with_the_right_line_numbers(tmp_path):
    text = (FIRMO + "\n"
            'E1,"a.com",5,2025-01-01,2025-01-02\n'
            '\n'
            'E2,"multi\nline.com",5,2025-01-01,2025-01-02\n'
            '   \n'
            'E3,c.com,lots,2025-01-01,2025-01-02\n'
            'E4,d.com,7,2025-01-01,2025-01-02\n')
    for encoding in ("utf-8", "utf-16"):
        settings = isolated_settings(tmp_path / encoding)
        path = _write(tmp_path / f"{encoding}.csv", text, encoding)
        report = _load(settings, "enrichment_firmographics", path)
        assert (report.rows_read, report.rows_loaded, report.rows_rejected) == (4, 3, 1), encoding
        # numbered as a reader of the file counts records: blank lines count, a quoted line break does not
        assert _rows(settings, "select enrichment_id, _source_line from raw.enrichment_firmographics order by 1") == \
            [("E1", 2), ("E2", 4), ("E4", 7)]
        assert _rows(settings, "select line, reason from raw._load_rejects") == [(6, "cannot read lots as integer")]
        assert _rows(settings, "select company_domain from raw.enrichment_firmographics where enrichment_id = 'E2'") \
            == [("multi\nline.com",)]


def test_a_record_longer_than_the_reader_default_loads_and_later_lines_keep_their_numbers(tmp_path):
    settings = isolated_settings(tmp_path)
    path = _write(tmp_path / "f.csv", FIRMO + "\nE1,a.com,5,2025-01-01,2025-01-02\n"
                  f"E2,{'x' * 3_000_000}.com,5,2025-01-01,2025-01-02\nE3,c.com,zz,2025-01-01,2025-01-02\n")
    report = _load(settings, "enrichment_firmographics", path)
    assert (report.rows_read, report.rows_loaded, report.rows_rejected) == (3, 2, 1)
    assert _rows(settings, "select line, reason from raw._load_rejects") == [(4, "cannot read zz as integer")]
    assert _rows(settings, "select length(company_domain) from raw.enrichment_firmographics where enrichment_id = 'E2'"
                 ) == [(3_000_004,)]


def test_a_gzip_compressed_csv_loads_like_the_plain_one(tmp_path):
    import gzip

    settings = isolated_settings(tmp_path)
    text = FIRMO + "\nE1,a.com,5,2025-01-01,2025-01-02\n\nE2,b.com,x,2025-01-01,2025-01-02\n"
    report = _load(settings, "enrichment_firmographics", _write(tmp_path / "f.csv.gz", gzip.compress(text.encode())))
    assert (report.rows_read, report.rows_loaded, report.rows_rejected) == (2, 1, 1)
    assert _rows(settings, "select line from raw._load_rejects") == [(4,)]


# 4. One bad value rejects its row, not the file ------------------------------------------------------------------

def test_numbers_out_of_range_and_non_finite_amounts_are_rejected_per_row(tmp_path):
    settings = isolated_settings(tmp_path)
    report = _load(settings, "enrichment_firmographics", _write(tmp_path / "f.csv", FIRMO + "\n"
                   "E1,a.com,3000000000,2025-01-01,2025-01-02\nE2,b.com,5,2025-01-01,2025-01-02\n"))
    assert (report.rows_loaded, report.rows_rejected) == (1, 1)
    assert report.reasons == {"cannot read 3000000000 as integer": 1}
    report = _load(settings, "enrichment_firmographics", _write(tmp_path / "d.csv", FIRMO + "\n"
                   "E3,a.com,5.5,2025-01-01,2025-01-02\nE4,b.com,6.0,2025-01-01,2025-01-02\n"))
    assert report.reasons == {"cannot read 5.5 as integer": 1}  # not rounded to 6
    assert _rows(settings, "select employee_count from raw.enrichment_firmographics where enrichment_id = 'E4'") == \
        [(6,)]
    opportunities = "opportunity_id,amount,created_at,_loaded_at\n" + "".join(
        f"O{k},{amount},2025-01-01,2025-01-02\n" for k, amount in enumerate(["NaN", "inf", "-Infinity", "1200.5"]))
    report = _load(settings, "crm_opportunities", _write(tmp_path / "o.csv", opportunities))
    assert (report.rows_loaded, report.rows_rejected) == (1, 3)
    assert set(report.reasons) == {"cannot read NaN as double", "cannot read inf as double",
                                   "cannot read -Infinity as double"}


# 5. A corrected reading of the same file loads --------------------------------------------------------------------

def test_the_same_file_read_with_a_corrected_mapping_loads_again(tmp_path, capsys):
    settings = isolated_settings(tmp_path)
    path = _write(tmp_path / "latin.csv", "lead_id,created_at,company\nL1,2025-01-01,Müller\nL2,2025-01-02,Zoë\n",
                  "latin-1")
    first = _load(settings, "crm_leads", path)  # read as UTF-8: both rows refused for their encoding
    assert (first.rows_loaded, first.rows_rejected) == (0, 2)
    mapping = _write(tmp_path / "map.yml", "encoding: latin-1\n")
    second = _load(settings, "crm_leads", path, mapping)
    assert (second.already_loaded, second.rows_loaded) == (False, 2)
    assert _rows(settings, "select company from raw.crm_leads order by 1") == [("Müller",), ("Zoë",)]
    assert _load(settings, "crm_leads", path, mapping).already_loaded  # the same reading twice: nothing added
    # two loads of one file: unload by path names both; the load id picks one
    assert _cli(settings, "unload", str(path)) == 2
    assert "2 loads match" in capsys.readouterr().err
    assert _cli(settings, "unload", second.load_id) == 0
    assert _rows(settings, "select count(*) from raw.crm_leads") == [(0,)]


# 6. load-flat: labels as spreadsheets write them, and all tables or none -----------------------------------------

def test_load_flat_reads_float_labels_and_refuses_one_class_without_touching_the_previous_run(tmp_path, capsys):
    settings = isolated_settings(tmp_path)
    path = _flat_file(tmp_path / "leads.csv", label=("1.0", "0.0"))
    assert _cli(settings, "load-flat", str(path), "--label", "Converted", "--name", "crm") == 0
    assert "300 rows read = 300 used" in capsys.readouterr().out
    tables = ("raw.flat_crm", "raw.flat_crm_rejects", "marts.fct_flat_crm", "scores.flat_crm_scores")
    before = {t: _rows(settings, f"select * from {t} order by all") for t in tables}
    one_class = _flat_file(tmp_path / "won.csv", label=("yes", "yes"))
    assert _cli(settings, "load-flat", str(one_class), "--label", "Converted", "--name", "crm") == 1
    err = capsys.readouterr().err
    assert "300 rows have a yes/no Converted and 300 of them are yes: a model needs both outcomes" in err
    assert "nothing was written" in err
    assert {t: _rows(settings, f"select * from {t} order by all") for t in tables} == before


def test_load_flat_writes_nothing_when_a_late_step_fails(tmp_path, monkeypatch):
    import ml.flat

    settings = isolated_settings(tmp_path)
    monkeypatch.setattr(ml.flat, "record_audit", lambda *a: (_ for _ in ()).throw(RuntimeError("disk full")))
    assert _cli(settings, "load-flat", str(_flat_file(tmp_path / "leads.csv")), "--label", "Converted") == 1
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        tables = con.execute("select table_schema || '.' || table_name from information_schema.tables "
                             "where table_name like '%flat%'").fetchall()
    assert tables == []


# 7. Messages, not tracebacks --------------------------------------------------------------------------------------

MAPPINGS = [
    ("malformed YAML", "columns: {a: [b\n", "not valid YAML"),
    ("a list", "- lead_id\n- created_at\n", "a mapping file is a set of `key: value` lines, not list"),
    ("values for an unknown field", "values: {colour: {red: blue}}\n", "colour"),
    ("not UTF-8", b"columns: {\xff: lead_id}\n", "a mapping file is UTF-8 text"),
]


@pytest.mark.parametrize("name,text,message", MAPPINGS, ids=[m[0] for m in MAPPINGS])
def test_a_bad_mapping_file_is_one_line_naming_it(tmp_path, capsys, name, text, message):
    settings = isolated_settings(tmp_path)
    data = _write(tmp_path / "leads.csv", "lead_id,created_at\nL1,2025-01-01\n")
    mapping = _write(tmp_path / "map.yml", text)
    assert _cli(settings, "load", "crm_leads", str(data), "--mapping", str(mapping)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and str(mapping) in err and message in err and "Traceback" not in err


def test_a_directory_as_mapping_is_one_line(tmp_path, capsys):
    settings = isolated_settings(tmp_path)
    data = _write(tmp_path / "leads.csv", "lead_id,created_at\nL1,2025-01-01\n")
    assert _cli(settings, "load", "crm_leads", str(data), "--mapping", str(tmp_path)) == 2
    assert capsys.readouterr().err == f"scorehouse load: error: {tmp_path}: mapping file not found (or not a file)\n"


def test_an_unreadable_file_is_named_with_the_reason(tmp_path, capsys, monkeypatch):
    settings = isolated_settings(tmp_path)
    data = _write(tmp_path / "leads.csv", "lead_id,created_at\nL1,2025-01-01\n")

    def refuse(self):
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "read_bytes", refuse)
    assert _cli(settings, "load", "crm_leads", str(data)) == 2
    assert capsys.readouterr().err == f"scorehouse load: error: {data}: cannot be read: Permission denied\n"


def test_an_unexpected_error_is_one_line_and_debug_shows_the_traceback(tmp_path, capsys, monkeypatch):
    import scorehouse.cli

    settings = isolated_settings(tmp_path)
    monkeypatch.setattr(scorehouse.cli, "land", lambda *a, **k: (_ for _ in ()).throw(ZeroDivisionError("oops")))
    assert _cli(settings, "land") == 1
    assert capsys.readouterr().err == ("scorehouse land: error: unexpected ZeroDivisionError: oops "
                                       "(run again with --debug for the traceback)\n")
    with pytest.raises(ZeroDivisionError):
        _cli(settings, "land", "--debug")


def test_a_warehouse_that_cannot_be_opened_for_writing_is_named(tmp_path, capsys):
    data = _write(tmp_path / "leads.csv", "lead_id,created_at\nL1,2025-01-01\n")
    folder = tmp_path / "dir.duckdb"
    folder.mkdir()  # a folder where the warehouse file should be
    code = main(["--warehouse", str(folder), "load", "crm_leads", str(data)])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith(f"scorehouse load: error: warehouse {folder} cannot be opened for writing")
    assert err.count("\n") == 1


# 8. Meaningless values ---------------------------------------------------------------------------------------------

def test_placeholder_and_control_character_ids_are_rejected(tmp_path):
    settings = isolated_settings(tmp_path)
    report = _load(settings, "enrichment_firmographics", _write(tmp_path / "f.csv", (
        FIRMO + "\nN/A,a.com,5,2025-01-01,2025-01-02\nnull,b.com,5,2025-01-01,2025-01-02\n"
        "E\x003,c.com,5,2025-01-01,2025-01-02\nE4,d.com,5,2025-01-01,2025-01-02\n")))
    assert (report.rows_loaded, report.rows_rejected) == (1, 3)
    assert report.reasons == {"enrichment_id N/A is a placeholder, not an id": 1,
                              "enrichment_id null is a placeholder, not an id": 1,
                              "enrichment_id holds a control character (NUL, tab, line break), not an id": 1}
    # an optional id that says "none" (an unassigned owner) is empty, and the load says how many
    report = _load(settings, "crm_leads", _write(tmp_path / "l.csv",
                   "lead_id,created_at,owner_id\nL1,2025-01-01,N/A\nL2,2025-01-01,U7\n"))
    assert (report.rows_loaded, report.rows_rejected) == (2, 0)
    assert "owner_id: 1 placeholder value(s) such as N/A read as empty" in report.warnings
    assert _rows(settings, "select lead_id, owner_id from raw.crm_leads order by 1") == [("L1", None), ("L2", "U7")]


def test_simulate_refuses_a_negative_lead_count(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["simulate", "--leads", "-5", "--out", str(tmp_path)])
    assert exit_.value.code == 2 and "'-5' is not a positive whole number" in capsys.readouterr().err


# Fuzz: random files and random mapping files ---------------------------------------------------------------------

CELL = st.one_of(
    st.sampled_from(["L1", "L2", "", " ", "N/A", "NaN", "inf", "3000000000", "2025-03-01", "03/01/2025",
                     "2025-03-01T10:00:00+05:00", "2031-01-01", "true", "maybe", "x,y", '"', '"q"', "é", "\t",
                     "'; drop table raw.crm_leads; --", "1e309", "-0", "\x00"]),
    st.text(alphabet=string.printable, max_size=6),
)
EXTRA_HEADERS = ["company", "status", "is_converted", "converted_at", "_loaded_at", "Lead ID", "extra", "",
                 "created_at", "do_not_call"]


@st.composite
def csv_files(draw) -> tuple[list[str], list[list[str]]]:
    """A header with the required fields first (so most files get as far as their rows) and some others, and
    rows that mostly have the header's width; now and then a column is missing or a row is ragged."""
    header = ["lead_id", "created_at"] + draw(st.lists(st.sampled_from(EXTRA_HEADERS), max_size=4))
    if draw(st.integers(0, 9)) == 0:
        header = header[1:]
    width = len(header)
    new_id = st.sampled_from(["N1", "N2", "N3", "N4", "N5", "L7"]) | CELL
    date = st.sampled_from(["2025-03-01", "2025-03-01 10:00:00", "2025-03-01T10:00:00+05:00", "2025-02-30"]) | CELL
    row = st.tuples(new_id, date, st.lists(CELL, min_size=max(0, width - 2), max_size=max(0, width - 2))).map(
        lambda r: [r[0], r[1], *r[2]])
    rows = draw(st.lists(row | st.lists(CELL, max_size=width + 2), max_size=10))
    return header, rows


MAPPING_TEXTS = st.sampled_from([
    None, "", "delimiter: ';'\n", "encoding: latin-1\n", "encoding: klingon\n", "columns: {Lead ID: lead_id}\n",
    "columns: {Lead ID: [lead_id, company]}\n", "fields: {status: \"upper(status)\"}\n",
    "fields: {status: \"1; drop table raw.crm_leads\"}\n", "constants: {status: new}\n", "drop: [extra]\n",
    "historical: created_at\n", "values: {status: {a: b}}\n", "known_at: {status: after_outcome}\n",
    "date_format: '%m/%d/%Y'\n", "[1, 2]\n", "columns: {a: [b\n", "unknown_key: 1\n",
])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(file=csv_files(), mapping=MAPPING_TEXTS, separator=st.sampled_from([",", ";"]), blank_lines=st.booleans())
def test_random_files_and_mappings_never_trace_never_lose_rows_never_touch_earlier_rows(
        warehouse_with_leads, tmp_path_factory, file, mapping, separator, blank_lines):
    settings = warehouse_with_leads
    header, rows = file
    root = tmp_path_factory.mktemp("fuzz")
    before = _leads_table_digest(settings)
    lines = [separator.join(header)] + [separator.join(r) for r in rows]
    if blank_lines:
        lines.insert(len(lines) // 2 + 1, "")
    data = _write(root / "fuzz.csv", "\n".join(lines) + "\n", "utf-8")
    mapping_path = None if mapping is None else _write(root / "map.yml", mapping)
    with connect(settings) as con:
        loaded_before = con.execute("select count(*) from raw.crm_leads").fetchall()[0][0]
        try:
            report = load_file(con, "crm_leads", data, mapping_path)
        except (LoadError, MappingError) as error:
            assert str(data) in str(error) or str(mapping_path) in str(error)
            event(f"refused: {type(error).__name__}")
            report = None
        if report is not None:
            event("loaded some rows" if report.rows_loaded else "every row rejected")
            assert report.rows_read == report.rows_loaded + report.rows_rejected
            added = con.execute("select count(*) from raw.crm_leads").fetchall()[0][0] - loaded_before
            assert added == (0 if report.already_loaded else report.rows_loaded)
            if not report.already_loaded:
                unload_file(con, report.load_id)  # the shared warehouse stays as it was for the next example
    assert _leads_table_digest(settings) == before
