"""Salesforce: an Opportunity report export (column labels, "Details only") or a Data Loader /
weekly export (API names), optionally with OpportunityHistory (one row per save that changed a
tracked field: most rows are not stage changes, and bulk-loaded rows carry the load time).

Won and lost come from the Won / Closed (IsWon / IsClosed) columns when present, never from the
stage's label alone; otherwise the stage mapping decides."""

from django.utils.translation import gettext as _

from loudou.interop.formats.common import (
    Aliases,
    DealOptions,
    attach_history,
    history_events,
    match_columns,
    no_sheet,
    read_deals,
    require_columns,
    sheet_score,
)
from loudou.interop.records import Parsed
from loudou.interop.tables import Sheet

SOURCE = "salesforce"
DEALS: Aliases = {
    "external_id": ("Opportunity ID", "Id", "Opportunity Id", "商机 ID", "业务机会 ID"),
    "name": ("Opportunity Name", "Name", "商机名称", "业务机会名称"),
    "account": ("Account Name", "Account", "客户名称", "客户名", "AccountId", "Account ID"),
    "owner": ("Opportunity Owner", "Owner", "Owner Name", "Owner Full Name", "OwnerId",
              "商机所有人", "业务机会所有人"),
    "stage": ("Stage", "StageName", "Stage Name", "阶段"),
    "amount": ("Amount", "Total Amount", "金额", "总金额"),
    "currency": ("Opportunity Currency", "CurrencyIsoCode", "Amount Currency",
                 "Total Amount Currency", "币种"),
    "close_date": ("Close Date", "CloseDate", "结束日期", "结单日期"),
    "created_at": ("Created Date", "CreatedDate", "创建日期"),
    "probability": ("Probability (%)", "Probability", "可能性 (%)", "可能性"),
    "is_won": ("Won", "IsWon", "赢单"),
    "is_closed": ("Closed", "IsClosed", "已结束"),
    "need": ("Description", "描述"),
    "lost_reason": ("Loss Reason", "Reason Lost", "丢单原因"),
}  # fmt: skip
HISTORY: Aliases = {
    "deal_id": ("OpportunityId", "Opportunity ID", "商机 ID"),
    "at": ("CreatedDate", "Created Date", "Last Modified", "Edit Date", "修改日期"),
    "stage": ("StageName", "Stage Name", "To Stage", "Stage", "阶段"),
    "amount": ("Amount", "金额"),
    "close_date": ("CloseDate", "Close Date", "结束日期"),
}
# A stock org's stages and default probabilities (OpportunityStage).
DEFAULT_STAGES = {
    "Prospecting": 10,
    "Qualification": 10,
    "Needs Analysis": 20,
    "Value Proposition": 50,
    "Id. Decision Makers": 60,
    "Perception Analysis": 70,
    "Proposal/Price Quote": 75,
    "Negotiation/Review": 90,
    "Closed Won": 100,
    "Closed Lost": 0,
}


def is_history(sheet: Sheet) -> bool:
    return sheet_score(sheet.headers, HISTORY, ("deal_id", "at", "stage")) == 3 and (
        sheet_score(sheet.headers, DEALS, ("name",)) == 0
    )


def parse(
    sheets: list[Sheet], options: DealOptions, columns: dict[str, str] | None = None
) -> Parsed:
    """The deals of the Opportunity sheet, with the history of the OpportunityHistory sheet if
    the file (or the --history file) has one."""
    parsed = Parsed(source=SOURCE)
    history = [s for s in sheets if is_history(s)]
    deals = [s for s in sheets if s not in history]
    if not deals:
        parsed.problems.append(no_sheet(sheets, "Opportunity"))
        return parsed
    for name in DEFAULT_STAGES:
        parsed.stage_hints.setdefault(name, DEFAULT_STAGES[name])
    for sheet in deals:
        found = match_columns(sheet.headers, DEALS, columns)
        if require_columns(parsed, sheet, found, DEALS, ("name", "account")):
            read_deals(parsed, sheet, found, options)
    for sheet in history:
        found = match_columns(sheet.headers, HISTORY)
        events = history_events(parsed, sheet, found, options)
        attach_history(parsed, events, sheet.name, found.get("deal_id", ""))
        rows = sum(len(v) for v in events.values())
        parsed.notes.append(
            _("%(n)s OpportunityHistory rows for %(d)s deals; rows that change nothing loudou "
              "tracks are left out") % {"n": rows, "d": len(events)}
        )  # fmt: skip
    # Only the stages the file uses belong in the mapping; the defaults were probability hints.
    used = {d.stage for d in parsed.deals} | {e.stage for d in parsed.deals for e in d.events}
    parsed.stage_hints = {k: v for k, v in parsed.stage_hints.items() if k in used}
    return parsed
