"""Survey: bad, unusual and hostile inputs through `scorehouse load` and `scorehouse load-flat`, as a careful user
would try them, with what happened to each.

Every case runs the command-line entry point in-process against one warehouse that already holds a first load of
leads. For each case it records the outcome — loaded (all rows), rejected per row (with the reasons), or refused
whole (with the one-line message) — and checks that no traceback escaped, that rows read = loaded + rejected,
and that no row loaded earlier changed.

    python benchmarks/hostile_inputs.py [--markdown out.md]

A script, not a test (tests/test_hostile_input.py holds the assertions); it prints a Markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import hashlib
import io
import re
import sys
import tempfile
import traceback
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import duckdb
import numpy as np
import pandas as pd

from scorehouse.cli import main

LEADS = "lead_id,created_at,company,status,owner_id,_loaded_at"
GOOD = "N{n},2025-03-0{d} 10:00:00,Acme,new,U1,2025-03-10 00:00:00"
FIRMO = "enrichment_id,company_domain,employee_count,enriched_at,_loaded_at"
OPPS = "opportunity_id,lead_id,amount,created_at,_loaded_at"


@dataclass
class Case:
    name: str
    args: list[str]  # after the setting flags; {file}/{mapping} are filled in
    file: bytes | None = None  # written to the case's file (None: the args name their own paths)
    file_name: str = "input.csv"
    mapping: str | bytes | None = None


def rows(*lines: str, header: str = LEADS) -> bytes:
    return ("\n".join([header, *lines]) + "\n").encode()


def good(n: int, d: int = 1) -> str:
    return GOOD.format(n=n, d=d)


def flat_file(n: int = 200, label=("yes", "no"), seed: int = 1) -> bytes:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=n)
    frame = pd.DataFrame({"id": [f"P{k}" for k in range(n)], "visits": rng.poisson(3, n) + (x > 0),
                          "source": rng.choice(["web", "ads"], n),
                          "label": np.where(rng.random(n) < 1 / (1 + np.exp(-2 * x)), label[0], label[1])})
    return frame.to_csv(index=False).encode()


def parquet_bytes(frame: pd.DataFrame) -> bytes:
    """The frame as Parquet, written by DuckDB (no Parquet library needed)."""
    with tempfile.TemporaryDirectory() as tmp, duckdb.connect() as con:
        path = Path(tmp) / "frame.parquet"
        con.register("frame", frame)
        con.execute("copy frame to ? (format parquet)", [str(path)])
        return path.read_bytes()


def cases() -> list[Case]:
    load = ["load", "crm_leads", "{file}"]
    c = [
        Case("plain good file", load, rows(good(1), good(2))),
        Case("UTF-8 byte order mark", load, b"\xef\xbb\xbf" + rows(good(3))),
        Case("CRLF line ends", load, rows(good(4), good(5)).replace(b"\n", b"\r\n")),
        Case("quoted delimiter in a field", load, rows('N6,2025-03-01,"Acme, Inc.",new,U1,2025-03-10')),
        Case("quoted line break in a field", load, rows('N7,2025-03-01,"Acme\nWest",new,U1,2025-03-10', good(8))),
        Case("doubled quotes in a field", load, rows('N9,2025-03-01,"The ""Best"" Co",new,U1,2025-03-10')),
        Case("UTF-16 with byte order mark", load, rows(good(10)).decode().encode("utf-16")),
        Case("latin-1 without a mapping", load, rows("N11,2025-03-01,Müller,new,U1,2025-03-10").decode()
             .encode("latin-1")),
        Case("latin-1 read again with its mapping", load + ["--mapping", "{mapping}"],
             rows("N11,2025-03-01,Müller,new,U1,2025-03-10").decode().encode("latin-1"), mapping="encoding: latin-1\n"),
        Case("semicolon-delimited Excel export with a mapping", load + ["--mapping", "{mapping}"],
             b"Lead;Created;Company\nN12;01.03.2025;Acme\nN13;02.03.2025;Beta\n",
             mapping="columns: {Lead: lead_id, Created: created_at, Company: company}\ndate_format: '%d.%m.%Y'\n"),
        Case("tab-delimited .tsv", load, rows(good(14)).replace(b",", b"\t"), file_name="input.tsv"),
        Case("pipe-delimited", load, rows(good(15)).replace(b",", b"|")),
        Case("empty lines between rows", load, rows(good(16), "", good(17), "", "")),
        Case("lines of spaces between rows", load, rows(good(18), "   ", good(19))),
        Case("duplicate header names", load, b"lead_id,created_at,company,company\nN20,2025-03-01,A,B\n"),
        Case("two columns for one field", load, b"lead_id,Lead ID,created_at\nN21,N21,2025-03-01\n"),
        Case("header only", load, (LEADS + "\n").encode()),
        Case("empty file", load, b""),
        Case("only a line break", load, b"\n"),
        Case("binary garbage", load, bytes(range(256)) * 4),
        Case("ragged rows: too many and too few fields", load, rows(good(22), "N23,2025-03-01", good(24) + ",x,y")),
        Case("2,000 columns", load, (LEADS + "," + ",".join(f"c{k}" for k in range(1994)) + "\n" + good(25)
                                     + "," + ",".join("v" for _ in range(1994)) + "\n").encode()),
        Case("a 1 MB field", load, rows(f"N26,2025-03-01,{'x' * 1_000_000},new,U1,2025-03-10")),
        Case("a 3 MB field, then a bad row", load, rows(f"N27,2025-03-01,{'x' * 3_000_000},new,U1,2025-03-10",
                                                        "N28,someday,Acme,new,U1,2025-03-10")),
        Case("literal NaN and null strings in text fields", load, rows("N29,2025-03-01,NaN,null,U1,2025-03-10")),
        Case("SQL in values", load, rows("N30,2025-03-01,'); drop table raw.crm_leads; --,new,U1,2025-03-10")),
        Case("SQL in a header name", load, b'lead_id,created_at,"x"" ; drop table raw.crm_leads; --"\n'
                                           b"N31,2025-03-01,v\n"),
        Case("SQL in the file name", load, rows(good(32)), file_name="a'; drop table raw.crm_leads; --.csv"),
        Case("spaces and unicode in the file name", load, rows(good(33)), file_name="Leads März 2025 (1).csv"),
        Case("offset +05:00 and -0800 and Z", load, rows("N34,2025-03-01T10:00:00+05:00,A,new,U1,2025-03-10",
                                                         "N35,2025-03-01 10:00:00-0800,A,new,U1,2025-03-10",
                                                         "N36,2025-03-01T10:00:00Z,A,new,U1,2025-03-10")),
        Case("month-first column with one day-first value", load, rows(
            "N37,03/01/2025,A,new,U1,2025-03-10", "N38,01/13/2025,A,new,U1,2025-03-10",
            "N39,13/01/2025,A,new,U1,2025-03-10")),
        Case("ambiguous day/month column", load, rows("N40,03/01/2025,A,new,U1,2025-03-10")),
        Case("impossible date (30 February)", load, rows("N41,2025-02-30,A,new,U1,2025-03-10", good(42))),
        Case("event after its load time", load, rows("N43,2025-03-20,A,new,U1,2025-03-10")),
        Case("year 1900 and year 9999", load, rows("N44,1900-01-01,A,new,U1,2025-03-10",
                                                   "N45,9999-12-31,A,new,U1,2025-03-10")),
        Case("epoch seconds as a date", load, rows("N46,1740787200,A,new,U1,2025-03-10")),
        Case("N/A and null as ids", load, rows("N/A,2025-03-01,A,new,U1,2025-03-10",
                                               "null,2025-03-01,A,new,U1,2025-03-10", good(47))),
        Case("NUL byte and tab in an id", load, rows("N4\x008,2025-03-01,A,new,U1,2025-03-10",
                                                     "N4\t9,2025-03-01,A,new,U1,2025-03-10")),
        Case("placeholder in an optional id", load, rows("N50,2025-03-01,A,new,N/A,2025-03-10")),
        Case("a 10,000-character id", load, rows(f"N{'9' * 10_000},2025-03-01,A,new,U1,2025-03-10")),
        Case("unicode and emoji ids", load, rows("Ñ51,2025-03-01,A,new,U1,2025-03-10",
                                                 "🚀52,2025-03-01,A,new,U1,2025-03-10")),
        Case("duplicate id within the file", load, rows(good(53), good(53))),
        Case("id already loaded earlier", load, rows("L1,2025-03-01,A,new,U1,2025-03-10")),
        Case("missing required column", load, b"lead_id,company\nN54,A\n"),
        Case("missing required value", load, rows(",2025-03-01,A,new,U1,2025-03-10", "N55,,A,new,U1,2025-03-10")),
        Case("unknown source table", ["load", "crm_widgets", "{file}"], rows(good(56))),
        Case("unsupported file type (.xlsx)", load, b"PK\x03\x04", file_name="input.xlsx"),
        Case("gzip-compressed CSV", load, gzip.compress(rows(good(57))), file_name="input.csv.gz"),
        Case("no such file", ["load", "crm_leads", "/nonexistent/leads.csv"]),
        Case("a folder instead of a file", ["load", "crm_leads", "/tmp"]),
        Case("integer too large for its column", ["load", "enrichment_firmographics", "{file}"],
             rows("E1,a.com,3000000000,2025-03-01,2025-03-10", "E2,b.com,5,2025-03-01,2025-03-10", header=FIRMO)),
        Case("decimal and negative in an integer field", ["load", "enrichment_firmographics", "{file}"],
             rows("E3,a.com,5.5,2025-03-01,2025-03-10", "E4,b.com,-3,2025-03-01,2025-03-10", header=FIRMO)),
        Case("NaN, inf and 1e309 as amounts", ["load", "crm_opportunities", "{file}"],
             rows("O1,L1,NaN,2025-03-01,2025-03-10", "O2,L1,inf,2025-03-01,2025-03-10",
                  "O3,L1,1e309,2025-03-01,2025-03-10", "O4,L1,1200.50,2025-03-01,2025-03-10", header=OPPS)),
        Case("Parquet with wrong types", ["load", "crm_opportunities", "{file}"],
             parquet_bytes(pd.DataFrame({"opportunity_id": ["O5", "O6"], "amount": ["lots", "10"],
                                         "created_at": [20250301, 20250302], "_loaded_at": ["2025-03-10"] * 2})),
             file_name="opps.parquet"),
        Case("boolean variants", load + ["--mapping", "{mapping}"],
             rows("N58,2025-03-01,A,TRUE,U1,2025-03-10", "N59,2025-03-01,A,maybe,U1,2025-03-10"),
             mapping="columns: {status: do_not_call}\n"),
        Case("converted without a conversion date", load, b"lead_id,created_at,is_converted\nN60,2025-03-01,true\n"),
        Case("conversion date in the future", load, b"lead_id,created_at,converted_at\nN61,2025-03-01,2099-01-01\n"),
        Case("mapping: malformed YAML", load + ["--mapping", "{mapping}"], rows(good(62)), mapping="columns: {a: [b\n"),
        Case("mapping: a list", load + ["--mapping", "{mapping}"], rows(good(63)), mapping="- lead_id\n"),
        Case("mapping: unknown key", load + ["--mapping", "{mapping}"], rows(good(64)), mapping="colours: 1\n"),
        Case("mapping: values for an unknown field", load + ["--mapping", "{mapping}"], rows(good(65)),
             mapping="values: {colour: {red: blue}}\n"),
        Case("mapping: two SQL statements", load + ["--mapping", "{mapping}"], rows(good(66)),
             mapping="fields: {status: \"1; drop table raw.crm_leads\"}\n"),
        Case("mapping: expression on a missing column", load + ["--mapping", "{mapping}"], rows(good(67)),
             mapping="fields: {status: \"upper(stage)\"}\n"),
        Case("mapping: unsupported encoding", load + ["--mapping", "{mapping}"], rows(good(68)),
             mapping="encoding: klingon\n"),
        Case("mapping: not UTF-8", load + ["--mapping", "{mapping}"], rows(good(69)), mapping=b"columns: {\xff: a}\n"),
        Case("mapping: a folder", load + ["--mapping", "/tmp"], rows(good(70))),
        Case("historical field that is not a time", load + ["--historical", "company"], rows(good(71))),
        Case("the same file twice", load, rows(good(1), good(2))),
    ]
    flat = ["load-flat", "{file}", "--label", "label"]
    c += [
        Case("flat: a plain export", flat, flat_file()),
        Case("flat: SQL in --name", flat + ["--name", "x as select 1; drop table raw.crm_leads; create table y"],
             flat_file()),
        Case("flat: SQL, quote and tab in the file name", flat, flat_file(), file_name="x'; drop table\traw.a; --.csv"),
        Case("flat: gzip-compressed CSV", flat, gzip.compress(flat_file()), file_name="flat.csv.gz"),
        Case("flat: labels 1.0 / 0.0", flat, flat_file(label=("1.0", "0.0"))),
        Case("flat: one class only", flat + ["--name", "flat_a_plain_export"], flat_file(label=("yes", "yes"))),
        Case("flat: no usable label", flat, flat_file(label=("maybe", "perhaps"))),
        Case("flat: no such label column", ["load-flat", "{file}", "--label", "outcome"], flat_file()),
        Case("flat: empty file", flat, b""),
        Case("flat: header only", flat, b"id,visits,label\n"),
        Case("flat: five rows", flat, b"id,visits,label\n1,2,yes\n2,3,no\n3,1,no\n4,5,yes\n5,2,no\n"),
        Case("flat: Parquet", flat, parquet_bytes(pd.read_csv(io.BytesIO(flat_file()))), file_name="flat.parquet"),
        Case("simulate: negative lead count", ["simulate", "--leads", "-5", "--out", "{dir}"]),
        Case("run: SQL in --as-of", ["run", "--as-of", "2025-01-01'; drop table raw.crm_leads; --"]),
        Case("build: SQL in --memory-limit", ["build", "--memory-limit", "1GB'; drop table raw.crm_leads"]),
    ]
    return c


def digest(warehouse: Path) -> str:
    """The first load's rows in every raw table, hashed: they must never change."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        try:
            text = str(con.execute("select * from raw.crm_leads where _load_id = "
                                   "(select min(load_id) from raw._load_log where source_file like '%first.csv') "
                                   "order by lead_id").fetchall())
        except duckdb.CatalogException as error:  # the table itself is gone
            text = str(error)
    return hashlib.sha256(text.encode()).hexdigest()


def run(case: Case, work: Path, warehouse: Path, index: int) -> dict:
    folder = work / f"case{index:02d}"
    folder.mkdir()
    path = folder / case.file_name
    if case.file is not None:
        path.write_bytes(case.file)
    mapping = folder / "map.yml"
    if case.mapping is not None:
        mapping.write_bytes(case.mapping if isinstance(case.mapping, bytes) else case.mapping.encode())
    args = [a.replace("{file}", str(path)).replace("{mapping}", str(mapping)).replace("{dir}", str(folder))
            for a in case.args]
    out, err = io.StringIO(), io.StringIO()
    before = digest(warehouse)
    traced = False
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(["--warehouse", str(warehouse), "--artifacts", str(work / "artifacts"), *args])
        except SystemExit as stop:  # argparse refusing an option
            code = stop.code
        except BaseException:  # noqa: BLE001 - what the survey is looking for
            traced, code = True, None
            err.write(traceback.format_exc())
    stdout, stderr = out.getvalue(), err.getvalue()
    reconciled = re.search(r"([\d,]+) rows read = ([\d,]+) (?:loaded|used) \+ (?:([\d,]+) open \(scored, not trained "
                           r"on\) \+ )?([\d,]+) rejected", stdout)
    if traced or "Traceback" in stderr:
        outcome, detail = "TRACEBACK", stderr.strip().splitlines()[-1]
    elif code == 0 and "already loaded into raw." in stdout:
        outcome, detail = "nothing added", "already loaded with the same reading"
    elif code == 0 and reconciled:
        numbers = [int((g or "0").replace(",", "")) for g in reconciled.groups()]
        read, loaded, open_, rejected = numbers
        assert read == loaded + open_ + rejected, stdout
        reasons = "; ".join(m.strip() for m in re.findall(r"rejected [\d,]+: (.*)", stdout))[:150]
        outcome = "loaded" if not rejected else ("rejected per row" if loaded else "all rows rejected")
        detail = f"{read} read = {loaded + open_} loaded + {rejected} rejected" + (f" ({reasons})" if reasons else "")
    elif code == 0:
        outcome, detail = "done", stdout.strip().splitlines()[-1][:150] if stdout.strip() else ""
    else:
        lines = stderr.strip().splitlines()
        outcome, detail = f"refused (exit {code})", (lines[-1] if lines else "")[:200]
    changed = digest(warehouse) != before
    return {"case": case.name, "outcome": outcome, "detail": detail, "traceback": traced or "Traceback" in stderr,
            "earlier rows changed": changed}


def main_() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--markdown", help="also write the table here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="scorehouse-hostile-") as tmp:
        work = Path(tmp)
        warehouse = work / "warehouse.duckdb"
        first = work / "first.csv"
        first.write_text("lead_id,created_at,_loaded_at\n" + "".join(
            f"L{k},2025-01-{1 + k % 28:02d} 10:00:00,2025-02-01 00:00:00\n" for k in range(120)))
        with contextlib.redirect_stdout(io.StringIO()):
            assert main(["--warehouse", str(warehouse), "load", "crm_leads", str(first)]) == 0
        results = [run(case, work, warehouse, k) for k, case in enumerate(cases())]
    lines = ["| # | case | outcome | detail |", "|---:|---|---|---|"]
    for k, r in enumerate(results, 1):
        flag = " **(earlier rows changed)**" if r["earlier rows changed"] else ""
        detail = r["detail"].replace("|", "\\|").replace("\n", " ")
        lines.append(f"| {k} | {r['case']} | {r['outcome']}{flag} | {detail} |")
    tracebacks = sum(r["traceback"] for r in results)
    changed = sum(r["earlier rows changed"] for r in results)
    table = "\n".join(lines) + f"\n\n{len(results)} kinds tried: {tracebacks} tracebacks, {changed} with earlier rows changed."
    print(table)
    if args.markdown:
        Path(args.markdown).write_text(table + "\n")
    return 1 if tracebacks or changed else 0


if __name__ == "__main__":
    raise SystemExit(main_())
