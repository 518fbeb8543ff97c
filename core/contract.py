"""The raw-source contract: every raw table's columns, types, whether they are required, and what they mean.

One definition serves the loader (mapping, casting, rejects), the dbt reject rules
(dbt_project/macros/source_contract.sql is generated from it) and the documentation
(docs/source_contract.md is generated from it). `scorehouse contract --write` regenerates both;
a test fails when either is stale.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # varchar, timestamp, date, boolean, integer, double
    required: bool
    meaning: str


@dataclass(frozen=True)
class SourceTable:
    name: str
    key: str  # SQL expression of the row key
    event_time: str  # the column that says when the row happened
    meaning: str
    columns: tuple[Column, ...]
    # The lead models read this table incrementally: appended rows must be loaded after the previous build's.
    feeds_lead_models: bool = False

    @property
    def required(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.required)

    @property
    def system(self) -> str:
        """The source system: the table's dbt source, and its staging folder (dbt_project/models/staging/<system>)."""
        return OTHER_SYSTEMS.get(self.name, self.name.split("_")[0])


# Tables whose system is not the first word of their name.
OTHER_SYSTEMS = {"csm_assignments": "crm", "nps_responses": "support"}


def _c(name: str, type_: str, required: bool, meaning: str) -> Column:
    return Column(name, type_, required, meaning)


LOADED = _c("_loaded_at", "timestamp", True, "When the row arrived in the warehouse (set by the loader if absent).")

SOURCES: tuple[SourceTable, ...] = (
    SourceTable("crm_leads", "lead_id", "created_at", "CRM lead records (a current-state export).", (
        _c("lead_id", "varchar", True, "Lead id."),
        _c("title", "varchar", False, "Job title as typed."),
        _c("company", "varchar", False, "Company name as typed."),
        _c("company_domain", "varchar", False, "Email / web domain of the company; joins to enrichment."),
        _c("country", "varchar", False, "Country (ISO-2 code)."),
        _c("city", "varchar", False, "City."),
        _c("lead_source", "varchar", False, "Where the lead came from (Referral, Webinar, Paid Search, ...)."),
        _c("do_not_email", "boolean", False, "Opted out of email."),
        _c("do_not_call", "boolean", False, "Opted out of calls."),
        _c("owner_id", "varchar", False, "Owning sales rep."),
        _c("status", "varchar", False, "Status at export time; never used as a feature (history is)."),
        _c("created_at", "timestamp", True, "When the lead was created."),
        _c("converted_at", "timestamp", False, "When the lead converted, for exports without a status history (the "
                                               "loader derives the status change; never a feature)."),
        _c("is_converted", "boolean", False, "Converted at export time; true needs converted_at."),
        _c("disqualified_at", "timestamp", False, "When the lead was closed without converting (derived like "
                                                  "converted_at; never a feature)."),
        LOADED,
    ), feeds_lead_models=True),
    SourceTable("crm_lead_status_history", "status_change_id", "changed_at", "Every lead status change.", (
        _c("status_change_id", "varchar", True, "Row id."),
        _c("lead_id", "varchar", True, "Lead id."),
        _c("status", "varchar", True, "New, MQL, SQL, Converted or Disqualified (or a project's own closing "
                                          "statuses: dbt vars terminal_lead_statuses, conversion_lead_status)."),
        _c("changed_at", "timestamp", True, "When the status changed."),
        LOADED,
    ), feeds_lead_models=True),
    SourceTable("crm_activities", "activity_id", "occurred_at", "Sales and email activities on leads.", (
        _c("activity_id", "varchar", True, "Row id."),
        _c("lead_id", "varchar", True, "Lead id."),
        _c("activity_type", "varchar", True, "Email Sent, Email Opened, Email Clicked, Call or Meeting."),
        _c("decision_maker_reached", "boolean", False, "A call or meeting reached a decision maker."),
        _c("budget_status", "varchar", False, "Confirmed or No budget, when a conversation covered it."),
        _c("occurred_at", "timestamp", True, "When it happened."),
        LOADED,
    ), feeds_lead_models=True),
    SourceTable("crm_opportunities", "opportunity_id", "created_at", "Opportunities from converted leads.", (
        _c("opportunity_id", "varchar", True, "Row id."),
        _c("lead_id", "varchar", False, "The converted lead."),
        _c("account_id", "varchar", False, "The account."),
        _c("amount", "double", False, "Deal amount."),
        _c("stage", "varchar", False, "Pipeline stage (Negotiation, Closed Won, Closed Lost)."),
        _c("close_date", "date", False, "Expected or actual close date."),
        _c("is_won", "boolean", False, "Won (NULL while open)."),
        _c("created_at", "timestamp", True, "When the opportunity was created."),
        LOADED,
    )),
    SourceTable("crm_accounts", "account_id", "created_at", "CRM accounts.", (
        _c("account_id", "varchar", True, "Account id."),
        _c("account_name", "varchar", False, "Account name."),
        _c("company_domain", "varchar", False, "Company domain."),
        _c("industry", "varchar", False, "Industry."),
        _c("created_at", "timestamp", False, "When the account was created."),
        LOADED,
    )),
    SourceTable("web_pages", "message_id", "timestamp", "Web page views (Segment-like pages).", (
        _c("message_id", "varchar", True, "Event id."),
        _c("anonymous_id", "varchar", True, "Browser / device id."),
        _c("user_id", "varchar", False, "Lead id once the visitor is identified."),
        _c("session_id", "varchar", False, "Session id."),
        _c("url", "varchar", True, "Page URL; the page type comes from its path."),
        _c("title", "varchar", False, "Page title."),
        _c("timestamp", "timestamp", True, "When the page was viewed."),
        LOADED,
    ), feeds_lead_models=True),
    SourceTable("web_tracks", "message_id", "timestamp", "Web track events (Segment-like tracks).", (
        _c("message_id", "varchar", True, "Event id."),
        _c("anonymous_id", "varchar", True, "Browser / device id."),
        _c("user_id", "varchar", False, "Lead id once identified."),
        _c("event", "varchar", True, "Event name; 'Form Submitted' marks a form fill."),
        _c("form_name", "varchar", False, "Which form."),
        _c("timestamp", "timestamp", True, "When it happened."),
        LOADED,
    ), feeds_lead_models=True),
    SourceTable("web_identifies", "message_id", "timestamp", "Identify calls linking a visitor to a lead.", (
        _c("message_id", "varchar", True, "Event id."),
        _c("anonymous_id", "varchar", True, "Browser / device id."),
        _c("user_id", "varchar", True, "Lead id."),
        _c("timestamp", "timestamp", True, "When the visitor was identified."),
        LOADED,
    ), feeds_lead_models=True),
    SourceTable("marketing_touches", "touch_id", "touched_at", "Marketing touches per lead.", (
        _c("touch_id", "varchar", True, "Row id."),
        _c("lead_id", "varchar", True, "Lead id."),
        _c("channel", "varchar", True, "referral, webinar, event, paid_search, paid_social, organic, email_campaign, cold_outreach."),
        _c("campaign", "varchar", False, "Campaign name."),
        _c("cost", "double", False, "Cost of the touch."),
        _c("touched_at", "timestamp", True, "When it happened."),
        LOADED,
    ), feeds_lead_models=True),
    SourceTable("enrichment_firmographics", "enrichment_id", "enriched_at", "Firmographic enrichment by domain.", (
        _c("enrichment_id", "varchar", True, "Row id."),
        _c("company_domain", "varchar", True, "Company domain."),
        _c("industry", "varchar", False, "Industry."),
        _c("employee_count", "integer", False, "Employees."),
        _c("revenue_band", "varchar", False, "Revenue band."),
        _c("country", "varchar", False, "Country (ISO-2)."),
        _c("enriched_at", "timestamp", True, "When the vendor produced it."),
        LOADED,
    ), feeds_lead_models=True),
    SourceTable("crm_contracts", "contract_id", "start_date", "Customer contracts, one row per term.", (
        _c("contract_id", "varchar", True, "Contract id."),
        _c("account_id", "varchar", True, "Customer account."),
        _c("contract_type", "varchar", True, "Monthly, Annual or Multi-Year."),
        _c("annual_value", "double", False, "Annual contract value."),
        _c("start_date", "date", True, "Term start."),
        _c("renewal_date", "date", False, "Term end / renewal (NULL for rolling monthly)."),
        _c("cancelled_at", "timestamp", False, "Export-time state; never a feature (contract events are)."),
        LOADED,
    )),
    SourceTable("crm_contract_events", "contract_event_id", "event_at", "Contract history; cancellations are churn.", (
        _c("contract_event_id", "varchar", True, "Row id."),
        _c("account_id", "varchar", True, "Customer account."),
        _c("contract_id", "varchar", False, "Contract."),
        _c("event_type", "varchar", True, "Signed, Renewed or Cancelled."),
        _c("cancellation_reason", "varchar", False, "Why, for cancellations."),
        _c("event_at", "timestamp", True, "When it happened."),
        LOADED,
    )),
    SourceTable("product_usage_daily", "concat(account_id, '|', cast(usage_date as string))", "usage_date",
                "Product usage per account per active day.", (
        _c("account_id", "varchar", True, "Customer account."),
        _c("usage_date", "date", True, "The day."),
        _c("logins", "integer", False, "Logins that day."),
        _c("active_users", "integer", False, "Distinct active users that day."),
        _c("feature_usage_index", "double", False, "Breadth of feature use, 0-100."),
        LOADED,
    )),
    SourceTable("support_tickets", "ticket_id", "opened_at", "Support tickets.", (
        _c("ticket_id", "varchar", True, "Ticket id."),
        _c("account_id", "varchar", True, "Customer account."),
        _c("priority", "varchar", False, "Low, Normal or High."),
        _c("category", "varchar", False, "Ticket category."),
        _c("opened_at", "timestamp", True, "When it was opened."),
        _c("closed_at", "timestamp", False, "Export-time state; not used."),
        LOADED,
    )),
    SourceTable("nps_responses", "response_id", "responded_at", "NPS survey answers.", (
        _c("response_id", "varchar", True, "Answer id."),
        _c("account_id", "varchar", True, "Customer account."),
        _c("score", "integer", True, "0-10."),
        _c("responded_at", "timestamp", True, "When it was answered."),
        LOADED,
    )),
    SourceTable("csm_assignments", "assignment_id", "assigned_at", "Customer success manager assignments.", (
        _c("assignment_id", "varchar", True, "Row id."),
        _c("account_id", "varchar", True, "Customer account."),
        _c("csm_id", "varchar", False, "The CSM (NULL = unassigned)."),
        _c("assigned_at", "timestamp", True, "When it took effect."),
        LOADED,
    )),
)

BY_NAME = {s.name: s for s in SOURCES}
RAW_TABLES = tuple(s.name for s in SOURCES)
# The raw tables the incremental lead models read (ingest/incremental.py watches their load times).
LEAD_FEATURE_SOURCES = tuple(s.name for s in SOURCES if s.feeds_lead_models)


def render_markdown() -> str:
    lines = [
        "# Raw source contract",
        "",
        "Generated by `scorehouse contract --write` from `core/contract.py`; do not edit by hand.",
        "Every table needs its required columns; optional ones may be missing or empty. Every row needs",
        "its event time and `_loaded_at` (the loader sets `_loaded_at` to the load time when a file has none).",
        "Every raw table also carries the loader's lineage columns: `_source_file`, `_source_line`, `_extra` (the",
        "file's columns outside the contract, as JSON) and `_load_id` (its row in `raw._load_log`; `scorehouse",
        "unload` removes a load by it). A table nobody loads exists empty with these columns.",
        "",
    ]
    for source in SOURCES:
        lines += [f"## `{source.name}`", "", (f"{source.meaning} Row key: `{source.key}`; event time: "
                  f"`{source.event_time}`."), "", "| column | type | required | meaning |", "|---|---|---|---|"]
        lines += [f"| `{c.name}` | {c.type} | {'yes' if c.required else 'no'} | {c.meaning} |" for c in source.columns]
        lines.append("")
    return "\n".join(lines)


def render_dbt_macro() -> str:
    entries = []
    for source in SOURCES:
        required = ", ".join(f"'{c}'" for c in source.required)
        key = source.key.replace("'", "\\'")
        entries.append(f"        '{source.name}': {{'system': '{source.system}', 'key': '{key}', 'required': [{required}]}},")
    body = "\n".join(entries)
    return (
        "{#- Generated by `scorehouse contract --write` from core/contract.py; do not edit by hand.\n"
        "    Each raw table's source system (its dbt source), row key and the columns a row cannot be used without. -#}\n"
        "{% macro raw_source_contract() -%}\n"
        "    {{ return({\n" + body + "\n    }) }}\n"
        "{%- endmacro %}\n"
    )


def generated_files(project_root: Path) -> dict[Path, str]:
    return {
        project_root / "docs" / "source_contract.md": render_markdown(),
        project_root / "dbt_project" / "macros" / "source_contract.sql": render_dbt_macro(),
    }
