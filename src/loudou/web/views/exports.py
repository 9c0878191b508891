"""Exports of the web lists. A list's own URL with `?export=csv` or `?export=xlsx` (and every other
parameter kept: the same filters and sort) answers a file with every row the list matches — all
its pages — read through the same selector, and so the same visibility, as the page.

A list view adds two lines: `if fmt := export_format(request): return download(<table>, fmt)`,
with one of the table builders below (the columns of the page, headers in the reader's language,
amounts and dates typed). The writing and the formula neutralising are `interop.exports`'."""

import sys
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils.translation import gettext as _
from django.utils.translation import pgettext

from loudou.core.i18n import localized
from loudou.core.money import base_currency
from loudou.customers.models import Contact
from loudou.customers.pages import icp_score
from loudou.interop.exports import FORMATS, Table, export_response
from loudou.pipeline.board import make_cards, stall_thresholds
from loudou.pipeline.models import Status
from loudou.playbooks.models import Playbook
from loudou.web.templatetags.loudou import loc

# Rows are read and their related data loaded this many at a time: a fixed number of queries per
# batch, whatever the size of the export, and bounded memory.
BATCH = 1000
# "No limit" for the selectors that cap what a page shows (the funnel's stage list).
ALL = sys.maxsize
CENT = Decimal("0.01")


def export_format(request: HttpRequest) -> str | None:
    """ "csv" or "xlsx" when the request asks for an export, else None (the page itself)."""
    value = request.GET.get("export", "")
    return value if value in FORMATS else None


def download(table: Table, fmt: str) -> HttpResponse:
    """The table as a file named after its title and today."""
    return export_response(table, fmt, table.title)


def batches(qs: Any, size: int = BATCH) -> Iterator[list[Any]]:
    """A sorted queryset in slices of `size` (its ordering ends with the id: slices are stable)."""
    offset = 0
    while batch := list(qs[offset : offset + size]):
        yield batch
        offset += size


def money(amount: Any) -> Decimal | None:
    """An amount with its two decimals (sums read from SQLite lose them), or None."""
    return None if amount is None else Decimal(amount).quantize(CENT)


def yes_no(flag: bool) -> str:
    return _("Yes") if flag else _("No")


def _label(model: Any, name: str) -> str:
    return str(model._meta.get_field(name).verbose_name).capitalize()


# --- opportunities (the list, the board, an account's deals) ----------------------------------


def opportunities_table(user: Any, qs: Any, playbook: Playbook) -> Table:
    """The opportunity list's columns for every deal of `qs` (already visible to `user`,
    filtered and sorted): gate progress toward the next stage, days in stage and the stalled
    mark as the list shows them, plus probability and weighted amount."""
    columns = [
        ("id", _("ID")),
        ("name", _("Opportunity")),
        ("account", _("Account")),
        ("stage", _("Stage")),
        ("status", _("Status")),
        ("amount", _("Amount")),
        ("currency", _("Currency")),
        ("probability", _("Probability")),
        ("weighted_amount", _("Weighted amount")),
        ("close_date", _("Close date")),
        ("owner", _("Owner")),
        ("branch", _("Branch")),
        ("days_in_stage", _("Days in stage")),
        ("stalled", _("Stalled")),
        ("next_stage", _("Next stage")),
        # Two numbers, not "2/4": a spreadsheet would read that as a date.
        ("criteria_held", _("Criteria held")),
        ("criteria_required", _("Criteria required")),
    ]
    thresholds = stall_thresholds(user, playbook)

    def rows() -> Iterator[list[Any]]:
        for batch in batches(qs):
            # Gate progress, days in stage and the stalled mark are shown for open deals only:
            # the gate data of closed ones is not loaded.
            open_deals = [o for o in batch if o.status == Status.OPEN]
            cards = {c.opportunity.pk: c for c in make_cards(open_deals, playbook, thresholds)}
            for o in batch:
                card = cards.get(o.pk)
                gate = card is not None and card.required > 0
                yield [
                    o.pk,
                    o.name,
                    o.account.name,
                    localized(o.stage, "name"),
                    o.get_status_display(),
                    o.amount,
                    o.currency,
                    o.probability,
                    money(o.weighted_amount),
                    o.close_date,
                    str(o.owner),
                    loc(o.branch, "name"),
                    card.days_in_stage if card else None,
                    yes_no(card is not None and card.stalled),
                    localized(card.next_stage, "name") if card and gate else "",
                    card.held if card and gate else None,
                    card.required if card and gate else None,
                ]

    return Table(columns, rows(), title=_("Opportunities"))


def account_opportunities_table(account: Any, opportunities: Iterable[Any]) -> Table:
    """The deals of one account as its page lists them (open first, then won, then lost)."""
    columns = [
        ("id", _("ID")),
        ("name", _("Opportunity")),
        ("stage", _("Stage")),
        ("status", _("Status")),
        ("amount", _("Amount")),
        ("currency", _("Currency")),
        ("close_date", _("Close date")),
        ("closed_on", _("Closed on")),
        ("owner", _("Owner")),
    ]
    rows = (
        [
            o.pk,
            o.name,
            localized(o.stage, "name"),
            o.get_status_display(),
            o.amount,
            o.currency,
            o.close_date,
            o.closed_on,
            str(o.owner),
        ]
        for o in opportunities
    )
    return Table(columns, rows, title=f"{account.name} {_('Opportunities')}")


# --- accounts and contacts ------------------------------------------------------------------


def accounts_table(qs: Any) -> Table:
    """The account list's columns for every account of `qs` (`customers.pages.account_rows`)."""
    currency = base_currency()
    columns = [
        ("id", _("ID")),
        ("name", _("Account")),
        ("credit_code", _("Unified social credit code")),
        ("group", _("Group")),
        ("target", _("Target account")),
        ("icp_held", _("Required ICP criteria that hold")),
        ("icp_required", _("Required ICP criteria")),
        ("industry", _("Industry")),
        ("size", _("Size")),
        ("owner", _("Owner")),
        ("branch", _("Branch")),
        ("open_count", _("Open deals")),
        ("open_amount", _("Open amount")),
        ("currency", _("Currency")),
        ("updated_at", _("Last updated")),
    ]

    def rows() -> Iterator[list[Any]]:
        for batch in batches(qs):
            for a in batch:
                icp = icp_score(a.icp_results)
                yield [
                    a.pk,
                    a.name,
                    a.credit_code,
                    a.parent.name if a.parent else "",
                    yes_no(a.is_target),
                    icp["held"] if icp["required"] else None,
                    icp["required"] if icp["required"] else None,
                    loc(a.industry, "name"),
                    a.get_size_band_display() if a.size_band else "",
                    str(a.owner),
                    loc(a.branch, "name"),
                    a.open_count,
                    money(a.open_amount),
                    currency,
                    a.updated_at,
                ]

    return Table(columns, rows(), title=_("Accounts"))


def contacts_table(account: Any, contacts: Iterable[Contact]) -> Table:
    """The contacts of one account, selection team first, as its page lists them."""
    columns = [
        ("id", _("ID")),
        ("name", _label(Contact, "name")),
        ("title", _label(Contact, "title")),
        ("selection_part", _("Part in the selection team")),
        ("phone", _label(Contact, "phone")),
        ("email", _label(Contact, "email")),
    ]
    rows = (
        [c.pk, c.name, c.title, c.get_selection_part_display(), c.phone, c.email] for c in contacts
    )
    return Table(columns, rows, title=f"{account.name} {_('Contacts')}")


# --- 立项 requests ----------------------------------------------------------------------------


def approvals_table(qs: Any, title: str) -> Table:
    """Project set-up requests with the deal's figures, the decision and what the seller wrote."""
    columns = [
        ("id", _("ID")),
        ("opportunity", _("Opportunity")),
        ("account", _("Account")),
        ("owner", _("Owner")),
        ("branch", _("Branch")),
        ("stage", _("Stage")),
        ("amount", _("Amount")),
        ("budget", _("Customer budget")),
        ("currency", _("Currency")),
        ("close_date", _("Close date")),
        ("requested_by", _("Requested by")),
        ("requested_at", _("Requested")),
        ("status", _("Status")),
        ("decided_by", _("Decided by")),
        ("decided_at", _("Decided")),
        ("comment", _("Comment")),
        ("requirement", _("Project requirement")),
        ("timeline", _("Timeline")),
        ("selection_team", _("Selection team and leadership support")),
        ("competition", _("Competitors and consultants involved")),
        ("strategy", _("How we are guiding the customer")),
    ]

    def rows() -> Iterator[list[Any]]:
        for batch in batches(qs):
            for a in batch:
                o = a.opportunity
                yield [
                    a.pk,
                    o.name,
                    o.account.name,
                    str(o.owner),
                    loc(o.branch, "name"),
                    localized(o.stage, "name") if o.status == Status.OPEN else "",
                    o.amount,
                    money(a.budget),
                    o.currency,
                    o.close_date,
                    str(a.requested_by) if a.requested_by else "",
                    a.requested_at,
                    a.get_status_display(),
                    str(a.decided_by) if a.decided_by else "",
                    a.decided_at,
                    a.comment,
                    a.requirement,
                    a.timeline,
                    a.selection_team,
                    a.competition,
                    a.strategy,
                ]

    return Table(columns, rows(), title=title)


# --- analytics lists ----------------------------------------------------------------------------


def stage_deals_table(stage: Any, deals: Iterable[Any], as_of: Any) -> Table:
    """The funnel's deals of one stage at its date, with the amount, owner and close date they
    had then, and where each is now."""
    columns = [
        ("id", _("ID")),
        ("account", _("Account")),
        ("name", _("Deal")),
        ("amount", _("Amount")),
        ("currency", _("Currency")),
        ("owner", _("Owner")),
        ("close_date", _("Close date")),
        ("status_now", _("Status")),
        ("stage_now", _("Stage")),
    ]
    rows = (
        [
            d.opportunity.pk,
            d.opportunity.account.name,
            d.opportunity.name,
            money(d.amount),
            d.opportunity.currency,
            str(d.owner) if d.owner else "",
            d.close_date,
            d.opportunity.get_status_display(),
            localized(d.opportunity.stage, "name") if d.opportunity.stage_id else "",
        ]
        for d in deals
    )
    name = localized(stage, "name")
    title = f"{name} {as_of.isoformat()}" if as_of else name
    return Table(columns, rows, title=title)


def stalled_table(deals: Iterable[dict[str, Any]]) -> Table:
    """The stalled deals as the analytics page lists them, most overdue first."""
    columns = [
        ("id", _("ID")),
        ("name", _("Deal")),
        ("account", _("Account")),
        ("owner", _("Owner")),
        ("stage", _("Stage")),
        ("days_in_stage", _("Days in stage")),
        ("threshold_days", _("Threshold")),
        ("threshold_source", pgettext("where a stall threshold comes from", "Threshold from")),
        ("days_over", _("Days over")),
        ("amount", _("Amount")),
        ("currency", _("Currency")),
        ("close_date", _("Close date")),
    ]
    sources = {"max_days": _("max days"), "p80": _("P80")}
    rows = (
        [
            d["id"],
            d["name"],
            d["account"] or "",
            str(d["owner_user"] or d["owner"]),
            localized(d["stage_obj"], "name") if d["stage_obj"] else d["stage_name"],
            d["days_in_stage"],
            d["threshold_days"],
            sources.get(d["threshold_source"], d["threshold_source"]),
            d["days_over"],
            money(d["amount_value"]),
            d["currency"],
            d["close"],
        ]
        for d in deals
    )
    return Table(columns, rows, title=_("Stalled deals"))
