"""HubSpot: a deals export (CRM view → Export), with property labels as headers ("Record ID",
"Deal Name", "Deal Stage", "Deal owner", …) and, when the user included them, the stage
calculated properties `Date entered "<stage> (<pipeline>)"` — which become the deal's history.

Those columns hold only the *latest* entry into each stage: a deal that went back and came again
keeps only its second visit, and the report says how many deals look like that. Internal names
(`dealstage`, `hs_v2_date_entered_<stage id>`) are understood too, with the default pipeline's
stage ids."""

import itertools
import re

from django.utils.translation import gettext as _

from loudou.interop.formats.common import (
    Aliases,
    DealOptions,
    match_columns,
    no_sheet,
    read_deals,
    require_columns,
)
from loudou.interop.records import Deal, DealEvent, Parsed, RowReader
from loudou.interop.tables import Sheet
from loudou.interop.values import parse_datetime

SOURCE = "hubspot"
DEALS: Aliases = {
    "external_id": ("Record ID", "Deal ID", "hs_object_id", "记录 ID", "交易 ID"),
    "name": ("Deal Name", "dealname", "交易名称"),
    "account": ("Associated Company", "Associated Company (Primary)", "Company name", "Company",
                "Associated Company Name", "关联公司", "公司名称"),
    "owner": ("Deal owner", "hubspot_owner_id", "Owner", "交易所有者"),
    "stage": ("Deal Stage", "dealstage", "交易阶段"),
    "amount": ("Amount", "amount", "金额"),
    "currency": ("Currency", "deal_currency_code", "币种"),
    "close_date": ("Close Date", "closedate", "成交日期", "关闭日期"),
    "created_at": ("Create Date", "createdate", "创建日期"),
    "probability": ("Deal probability", "hs_deal_stage_probability", "交易概率"),
    "is_won": ("Is Closed Won", "hs_is_closed_won"),
    "is_closed": ("Is Deal Closed?", "Is Closed", "hs_is_closed"),
    "need": ("Deal Description", "description", "交易描述"),
    "lost_reason": ("Closed Lost Reason", "closed_lost_reason", "丢单原因"),
}  # fmt: skip
# The default sales pipeline: internal id → (label, default probability).
DEFAULT_STAGES = {
    "appointmentscheduled": ("Appointment Scheduled", 20),
    "qualifiedtobuy": ("Qualified To Buy", 40),
    "presentationscheduled": ("Presentation Scheduled", 60),
    "decisionmakerboughtin": ("Decision Maker Bought-In", 80),
    "contractsent": ("Contract Sent", 90),
    "closedwon": ("Closed Won", 100),
    "closedlost": ("Closed Lost", 0),
}
ENTERED = re.compile(r"^Date entered\s*[\"'“](.+?)(?:\s*\(([^()]*)\))?[\"'”]\s*$", re.IGNORECASE)
ENTERED_INTERNAL = re.compile(r"^hs(?:_v2)?_date_entered_(.+)$")


def entered_columns(headers: list[str]) -> dict[str, str]:
    """The "Date entered <stage>" columns: header → stage label."""
    found = {}
    for header in headers:
        if header.lower().startswith(("hs_v2_date_entered_current", "hs_date_entered_current")):
            continue
        match = ENTERED.match(header)
        if match:
            found[header] = match.group(1).strip()
            continue
        match = ENTERED_INTERNAL.match(header)
        if match:
            stage_id = match.group(1)
            found[header] = DEFAULT_STAGES.get(stage_id, (stage_id, 0))[0]
    return found


def parse(
    sheets: list[Sheet], options: DealOptions, columns: dict[str, str] | None = None
) -> Parsed:
    parsed = Parsed(source=SOURCE)
    if not sheets:
        parsed.problems.append(no_sheet(sheets, "deals"))
        return parsed
    labels = {label: p for label, p in DEFAULT_STAGES.values()}
    revisits = 0
    pipeline: list[str] = []
    for sheet in sheets:
        found = match_columns(sheet.headers, DEALS, columns)
        if not require_columns(parsed, sheet, found, DEALS, ("name", "account")):
            continue
        entered = entered_columns(sheet.headers)
        pipeline.extend(stage for stage in entered.values() if stage not in pipeline)

        def history(r: RowReader, deal: Deal, entered: dict[str, str] = entered) -> None:
            nonlocal revisits
            if deal.stage in DEFAULT_STAGES:  # an internal id (API export)
                deal.stage = DEFAULT_STAGES[deal.stage][0]
            entries = []
            for position, (header, stage) in enumerate(entered.items()):
                at = r.parse(header, parse_datetime, dayfirst=options.dayfirst)
                if at is not None:
                    entries.append((at, position))
                    deal.events.append(DealEvent(at, stage))
            deal.events.sort(key=lambda e: e.at)
            # The deal's current stage is always its latest entry, so comparing with it finds
            # nothing. HubSpot lists the columns in the pipeline's order: a deal went back when,
            # taken in time order, it entered a stage that comes before one it entered earlier.
            positions = [position for _at, position in sorted(entries)]
            if any(b < a for a, b in itertools.pairwise(positions)):
                revisits += 1

        for header in entered:
            found[header] = header
        read_deals(parsed, sheet, found, options, extra=history)
    used = {d.stage for d in parsed.deals} | {e.stage for d in parsed.deals for e in d.events}
    # The hints (and so the mapping the dry run shows and --save-mapping writes) in the
    # pipeline's order, as Parsed promises: the "Date entered" columns', then HubSpot's default
    # pipeline's, then the rest by name; sorting by name alone put "Closed Lost" first.
    order = [*pipeline, *labels, *sorted(used)]
    for stage in sorted(used, key=order.index):
        if parsed.stage_hints.get(stage) is None:
            parsed.stage_hints[stage] = labels.get(stage)
    if any(d.events for d in parsed.deals):
        parsed.notes.append(
            _("HubSpot keeps only the latest entry into each stage: %(n)s deals went back to an "
              "earlier stage, and only their latest visits are in the history") % {"n": revisits}
        )  # fmt: skip
    return parsed
