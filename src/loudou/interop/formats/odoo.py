"""Odoo CRM: a `crm.lead` export, with field labels ("Opportunity", "Customer", "Stage",
"Expected Revenue", "Salesperson", …) or, from an import-compatible export, technical names
(`name`, `partner_id`, `stage_id`, `expected_revenue`, `user_id`, …; `stage_id/id` columns hold
external ids and are not stage names). Leads (type "lead") are not opportunities and are left
out. A deal is lost when it is archived (Active false) or has a lost reason; won when its stage
maps to won. Odoo keeps stage history in the chatter, not in the export: a deal is recorded in its
stage from its creation, and the report says so."""

from django.utils.translation import gettext as _

from loudou.interop.formats.common import (
    Aliases,
    DealOptions,
    match_columns,
    no_sheet,
    read_deals,
    require_columns,
)
from loudou.interop.records import Deal, Parsed, RowReader
from loudou.interop.tables import Sheet
from loudou.interop.values import parse_bool

SOURCE = "odoo"
DEALS: Aliases = {
    "external_id": ("External ID", "id", "ID"),
    "name": ("Opportunity", "name", "商机", "线索"),
    "account": ("Customer", "partner_id", "Customer/Display Name", "Company Name", "partner_name",
                "客户", "公司名称"),
    "owner": ("Salesperson", "user_id", "销售员"),
    "stage": ("Stage", "stage_id", "阶段"),
    "amount": ("Expected Revenue", "expected_revenue", "预期收入"),
    "currency": ("Currency", "company_currency", "币种"),
    "close_date": ("Expected Closing", "date_deadline", "预计结束"),
    "created_at": ("Created on", "create_date", "创建时间"),
    "closed_at": ("Closed Date", "date_closed", "关闭日期"),
    "probability": ("Probability", "probability", "概率"),
    "lost_reason": ("Lost Reason", "lost_reason_id", "丢单原因"),
    "active": ("Active", "active", "有效"),
    "type": ("Type", "type", "类型"),
    "need": ("Notes", "description", "备注"),
}  # fmt: skip
DEFAULT_STAGES = {"New": 10, "Qualified": 30, "Proposition": 70, "Won": 100}


def parse(
    sheets: list[Sheet], options: DealOptions, columns: dict[str, str] | None = None
) -> Parsed:
    parsed = Parsed(source=SOURCE)
    if not sheets:
        parsed.problems.append(no_sheet(sheets, "crm.lead"))
        return parsed
    leads = 0

    def lost_and_type(r: RowReader, deal: Deal) -> None:
        nonlocal leads
        if r.text("type").strip().lower() in ("lead", "线索"):
            deal.external_id = ""  # a lead: dropped below
            leads += 1
            return
        active = r.parse("active", parse_bool)
        if active is False or deal.lost_reason:
            deal.status = "lost"

    for sheet in sheets:
        found = match_columns(sheet.headers, DEALS, columns)
        if not require_columns(parsed, sheet, found, DEALS, ("name", "account", "stage")):
            continue
        before = len(parsed.deals)
        read_deals(parsed, sheet, found, options, extra=lost_and_type)
        parsed.deals[before:] = [d for d in parsed.deals[before:] if d.external_id]
    used = {d.stage for d in parsed.deals}
    # A stage only leads use is no stage any imported deal goes to: keep it out of the mapping.
    parsed.stage_hints = {k: v for k, v in parsed.stage_hints.items() if k in used}
    for stage in sorted(used):
        if parsed.stage_hints.get(stage) is None:
            parsed.stage_hints[stage] = DEFAULT_STAGES.get(stage)
    parsed.notes.append(
        _(
            "Odoo's export has no stage history: each deal is recorded in its current stage from "
            "its creation"
        )
    )
    if leads:
        parsed.notes.append(_("%(n)s leads (not opportunities) left out") % {"n": leads})
    return parsed
