"""Pipedrive: a deals list-view export, every header prefixed with its entity ("Deal - Title",
"Deal - Value", "Deal - Organization", "Deal - Stage", "Deal - Status", …). The status column says
open, won or lost; a lost deal's stage is where it was lost. The export holds no stage history,
only the time of the last stage change, not the stage before it: a deal is recorded in its
current stage from its creation (nothing is made up), and the report counts the deals that moved."""

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
from loudou.interop.values import parse_datetime

SOURCE = "pipedrive"
DEALS: Aliases = {
    "external_id": ("Deal - ID", "ID", "id"),
    "name": ("Deal - Title", "Title", "title", "交易 - 标题"),
    "account": ("Deal - Organization", "Organization", "Organization - Name", "org_id",
                "交易 - 组织"),
    "owner": ("Deal - Owner", "Owner", "user_id", "交易 - 负责人"),
    "stage": ("Deal - Stage", "Stage", "stage_id", "交易 - 阶段"),
    "status": ("Deal - Status", "Status", "status", "交易 - 状态"),
    "amount": ("Deal - Value", "Value", "value", "交易 - 价值"),
    "currency": ("Deal - Currency", "Deal - Currency of value", "Currency", "currency"),
    "close_date": ("Deal - Expected close date", "Expected close date", "expected_close_date",
                   "交易 - 预计成交日期"),
    "created_at": ("Deal - Deal created", "Deal - Creation date", "Deal - Add time", "add_time",
                   "交易 - 交易创建时间"),
    "closed_at": ("Deal - Closed on", "Deal - Close time", "close_time"),
    "won_at": ("Deal - Won time", "won_time"),
    "lost_at": ("Deal - Lost time", "lost_time"),
    "stage_changed_at": ("Deal - Last stage change", "stage_change_time"),
    "probability": ("Deal - Probability", "Probability", "probability"),
    "lost_reason": ("Deal - Lost reason", "Lost reason", "lost_reason"),
    "pipeline": ("Deal - Pipeline", "Pipeline"),
}  # fmt: skip
STATUSES = {"open": "open", "won": "won", "lost": "lost", "进行中": "open", "赢单": "won",
            "输单": "lost", "deleted": ""}  # fmt: skip


def parse(
    sheets: list[Sheet], options: DealOptions, columns: dict[str, str] | None = None
) -> Parsed:
    parsed = Parsed(source=SOURCE)
    if not sheets:
        parsed.problems.append(no_sheet(sheets, "deals"))
        return parsed
    deleted = moved = 0

    def status_and_dates(r: RowReader, deal: Deal) -> None:
        nonlocal moved
        status = r.text("status").strip().lower()
        if status and status not in STATUSES:
            # The cell as the user wrote it ("Maybe"), not lower-cased, so they can find it.
            r.problem("status", r.raw("status"), _("must be Open, Won or Lost"))
            return
        deal.status = STATUSES.get(status, "")
        closed = r.parse(
            "won_at" if deal.status == "won" else "lost_at",
            parse_datetime,
            dayfirst=options.dayfirst,
        )
        deal.closed_at = closed or deal.closed_at
        changed = r.parse("stage_changed_at", parse_datetime, dayfirst=options.dayfirst)
        if changed is not None and changed > deal.created_at:
            moved += 1

    for sheet in sheets:
        found = match_columns(sheet.headers, DEALS, columns)
        if not require_columns(parsed, sheet, found, DEALS, ("name", "account", "stage")):
            continue
        before = len(parsed.deals)
        read_deals(parsed, sheet, found, options, extra=status_and_dates)
        kept = []
        for deal in parsed.deals[before:]:
            if deal.status == "" and "status" in found:
                deleted += 1  # Pipedrive's "deleted" deals are not imported
                continue
            kept.append(deal)
        parsed.deals[before:] = kept
    # Only the stages of the deals kept belong in the mapping: a stage only deleted deals use
    # would show in the dry run (and the saved mapping) though no deal goes there.
    used = {d.stage for d in parsed.deals}
    parsed.stage_hints = {k: v for k, v in parsed.stage_hints.items() if k in used}
    parsed.notes.append(
        _("Pipedrive's export has no stage history: each deal is recorded in its current stage "
          "from its creation; %(n)s deals changed stage after it (the export gives only the last "
          "change, not the stages before)") % {"n": moved}
    )  # fmt: skip
    if deleted:
        parsed.notes.append(_("%(n)s deleted deals left out") % {"n": deleted})
    return parsed
