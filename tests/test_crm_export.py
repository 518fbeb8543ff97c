"""`scorehouse export crm`: the CRM's field names, only what changed since the last export, per format, and the
published run as its source."""

from __future__ import annotations

import csv
import shutil

import duckdb
import pytest

from core.publish import published_path
from scorehouse.cli import main
from scoring.crm_export import HUBSPOT, SALESFORCE, export_crm
from tests.conftest import isolated_settings

pytestmark = pytest.mark.slow


@pytest.fixture
def exported_run(pipeline_run, tmp_path):
    """A copy of the session run's working and published warehouses, so exports do not touch the shared one."""
    settings, _report = pipeline_run
    copy = isolated_settings(tmp_path)
    shutil.copyfile(settings.warehouse_path, copy.warehouse_path)
    published_path(copy).parent.mkdir(parents=True)
    shutil.copyfile(published_path(settings), published_path(copy))
    return copy


def _rows(path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as file:
        return list(csv.DictReader(file))


def test_first_export_sends_every_open_lead_in_the_crms_field_names_then_only_changes(exported_run):
    with duckdb.connect(str(published_path(exported_run)), read_only=True) as con:
        scores = {r[0]: r[1:] for r in con.execute(
            "select s.lead_id, s.score, s.tier, s.next_action, w.route from scores.lead_scores s "
            "left join marts.rpt_lead_worklist w using (lead_id)").fetchall()}
    first = export_crm(exported_run, "salesforce")
    rows = _rows(first.path)
    assert first.rows == len(rows) == len(scores) > 100 and first.unchanged == 0
    assert list(rows[0]) == [SALESFORCE.id_field, *(name for _c, name in SALESFORCE.fields)]
    for row in rows:
        assert scores[row["Id"]] == (int(row["Lead_Score__c"]), row["Lead_Tier__c"], row["Next_Best_Action__c"] or None,
                                     row["Lead_Route__c"] or None)

    again = export_crm(exported_run, "salesforce")
    assert (again.path, again.rows, again.unchanged) == (None, 0, len(scores))

    # a later run changes three leads' scores: only they are sent, and only to the format that had the old ones
    changed = sorted(scores)[:3]
    with duckdb.connect(str(published_path(exported_run))) as con:
        con.execute("update scores.lead_scores set score = 100 - score, scored_at = scored_at + interval 1 day "
                    "where lead_id in (?, ?, ?)", changed)
        con.execute("update scores.lead_scores set scored_at = scored_at + interval 1 day, model_version = 'newer' "
                    "where lead_id not in (?, ?, ?)", changed)  # a new run alone, same values: not worth an update
    later = export_crm(exported_run, "salesforce")
    assert sorted(r["Id"] for r in _rows(later.path)) == changed and later.unchanged == len(scores) - 3

    hubspot = export_crm(exported_run, "hubspot")
    hubspot_rows = _rows(hubspot.path)
    assert hubspot.rows == len(scores) and list(hubspot_rows[0])[:2] == [HUBSPOT.id_field, "scorehouse_score"]
    assert export_crm(exported_run, "salesforce", everything=True).rows == len(scores)
    with duckdb.connect(str(exported_run.warehouse_path), read_only=True) as con:
        assert con.execute("select crm, count(*) from meta.crm_export_state group by crm order by crm").fetchall() \
            == [("hubspot", len(scores)), ("salesforce", len(scores))]


def test_export_without_a_published_run_says_what_to_run(tmp_path, capsys):
    settings = isolated_settings(tmp_path)
    duckdb.connect(str(settings.warehouse_path)).close()
    code = main(["--warehouse", str(settings.warehouse_path), "export", "crm", "--format", "hubspot"])
    assert code == 1 and "no published run" in capsys.readouterr().err
