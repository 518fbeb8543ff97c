"""Reverse-ETL files for a CRM: each open lead's score, tier, route, next action and reasons, in the field names the
CRM's import tool maps, and only the leads whose exported values changed since the last export in that format.

Scores are read from the published warehouse (the run readers see, which passed its gates), never from a run still
being written. What was exported is remembered per format and lead in `meta.crm_export_state` in the working
warehouse (a fingerprint of the exported values), recorded only after the file is complete, so an export that
fails half way is simply done again next time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd

from core.config import Settings
from core.outputs import ensure_outputs
from core.publish import published_path
from core.warehouse import connect, transaction


@dataclass(frozen=True)
class CrmFormat:
    name: str
    id_field: str  # the CRM's record id: the import updates the lead with this id
    fields: tuple[tuple[str, str], ...]  # (export column, the CRM's field name)


# Salesforce Data Loader / Data Import Wizard: update Lead by Id; custom fields end in __c.
SALESFORCE = CrmFormat("salesforce", "Id", (
    ("score", "Lead_Score__c"), ("tier", "Lead_Tier__c"), ("conversion_probability", "Conversion_Probability__c"),
    ("route", "Lead_Route__c"), ("next_action", "Next_Best_Action__c"), ("top_reasons", "Score_Reasons__c"),
    ("scored_at", "Score_Updated_At__c"), ("model_version", "Score_Model_Version__c"),
))
# HubSpot import: update records by Record ID; custom properties by internal name.
HUBSPOT = CrmFormat("hubspot", "Record ID", (
    ("score", "scorehouse_score"), ("tier", "scorehouse_tier"), ("conversion_probability", "scorehouse_probability"),
    ("route", "scorehouse_route"), ("next_action", "scorehouse_next_action"), ("top_reasons", "scorehouse_reasons"),
    ("scored_at", "scorehouse_scored_at"), ("model_version", "scorehouse_model_version"),
))
FORMATS = {f.name: f for f in (SALESFORCE, HUBSPOT)}

# The values a CRM user sees; scored_at and model_version alone changing is not worth an update.
CURRENT_SCORES = """
select
    scores.lead_id,
    scores.score,
    scores.tier,
    round(scores.conversion_probability, 4) as conversion_probability,
    worklist.route,
    scores.next_action,
    scores.top_reasons,
    strftime(scores.scored_at, '%Y-%m-%dT%H:%M:%SZ') as scored_at,
    scores.model_version,
    md5(concat_ws('|', scores.score, scores.tier, coalesce(worklist.route, ''), coalesce(scores.next_action, ''),
                  coalesce(scores.top_reasons, ''))) as fingerprint
from scores.lead_scores as scores
left join marts.rpt_lead_worklist as worklist on scores.lead_id = worklist.lead_id
order by scores.lead_id
"""


@dataclass(frozen=True)
class CrmExport:
    format: str
    path: Path | None  # None when nothing changed
    rows: int
    unchanged: int


def _published_scores(settings: Settings) -> pd.DataFrame:
    published = published_path(settings)
    if not published.exists():
        raise FileNotFoundError(f"no published run at {published}: run `scorehouse run` (or `scorehouse score`) first")
    with connect(settings.with_overrides(warehouse_path=published), read_only=True) as con:
        return con.execute(CURRENT_SCORES).df()


def _write_atomically(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    frame.to_csv(partial, index=False, lineterminator="\r\n")  # CRM import tools expect CRLF CSV
    os.replace(partial, path)


def export_crm(settings: Settings, crm: str, out: Path | None = None, everything: bool = False) -> CrmExport:
    """Write the changed lead scores as the CRM's import file and remember them as exported."""
    form = FORMATS[crm]
    current = _published_scores(settings)
    now = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0)
    with connect(settings) as con:
        ensure_outputs(con, "meta", "crm_export_state")
        known = dict(con.execute("select lead_id, fingerprint from meta.crm_export_state where crm = ?",
                                 [form.name]).fetchall())
        changed = current if everything else current[current.lead_id.map(known.get) != current.fingerprint]
        if changed.empty:
            return CrmExport(form.name, None, 0, len(current))
        path = out or settings.artifacts_dir / "exports" / f"crm_{form.name}_{now:%Y%m%dT%H%M%S}.csv"
        columns = {"lead_id": form.id_field, **dict(form.fields)}
        _write_atomically(changed[list(columns)].rename(columns=columns), path)
        state = changed[["lead_id", "fingerprint"]].assign(crm=form.name, exported_at=now, file=str(path))
        con.register("exported", state)
        with transaction(con):
            con.execute("delete from meta.crm_export_state where crm = ? and lead_id in (select lead_id from exported)",
                        [form.name])
            con.execute("insert into meta.crm_export_state (crm, lead_id, fingerprint, exported_at, file) "
                        "select crm, lead_id, fingerprint, exported_at, file from exported")
        con.unregister("exported")
    return CrmExport(form.name, path, len(changed), len(current) - len(changed))
