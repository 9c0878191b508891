"""Exports: the API's lists as files. `GET /exports/<list>?format=csv|xlsx&<the list's filters>`
answers every row the list matches (no pages), with the same filters, sort and visibility as
the list endpoint, and the same fields as its JSON (nested objects flattened to dotted columns:
`account.name`, `owner.username`).

Headers are in the caller's language, or the column keys with `header=keys` for programs. CSV
is UTF-8 with a BOM; text that could run as a spreadsheet formula is neutralised
(`loudou.interop.exports`). Errors are problem+json like everywhere in the API."""

import datetime as dt
import zoneinfo
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any, Literal

from django.db.models import Q
from django.utils import timezone
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _
from django.utils.translation import pgettext_lazy
from ninja import Query, Router, Schema
from pydantic import Field, create_model

from loudou.analytics.velocity import stalled
from loudou.api.auth import ApiRequest
from loudou.api.routers.accounts import AccountFilters, accounts_filtered
from loudou.api.routers.analytics import ScopeParams, _scope
from loudou.api.routers.opportunities import (
    SORT_FIELDS,
    OpportunityFilters,
    opportunities_filtered,
)
from loudou.api.schemas.common import Day, Id, Str200
from loudou.api.schemas.customers import SelectionPart, account_out, contact_out
from loudou.api.schemas.pipeline import opportunity_out
from loudou.api.schemas.project import activity_out, approval_out
from loudou.api.selectors import account_get
from loudou.customers.models import Account, Contact
from loudou.interop.exports import CONTENT_TYPES, Table, export_response
from loudou.pipeline.models import Activity, Opportunity
from loudou.pipeline.selectors import approvals_waiting_for, opportunity_get

router = Router(tags=["exports"])

BATCH = 1000
# What the list endpoints page by: an export has every row, so these are not its parameters.
PAGINATION = frozenset({"page", "page_size", "cursor", "limit", "offset"})
BINARY = {"schema": {"type": "string", "format": "binary"}}
FILE_RESPONSE = {
    "responses": {
        "200": {
            "description": "The file: CSV (UTF-8 with a byte order mark) or XLSX, as an "
            "attachment named after the list and today.",
            "content": {"text/csv": BINARY, CONTENT_TYPES["xlsx"]: BINARY},
            "headers": {
                "Content-Disposition": {
                    "description": "attachment; filename=…; filename*=UTF-8''… (RFC 6266)",
                    "schema": {"type": "string"},
                }
            },
        }
    }
}

Format = Literal["csv", "xlsx"]
Headers = Literal["labels", "keys"]


class FileParams(Schema):
    format: Format = Field(default="csv", description="csv (UTF-8 with BOM) or xlsx.")
    header: Headers = Field(
        default="labels",
        description="labels: column names in your language; keys: the dotted JSON field names.",
    )


def without_pagination(filters: type[Schema], name: str) -> Any:
    """The list endpoint's filter schema minus its paging, plus the file's format and headers:
    the export takes exactly the filters and the sort of the list."""
    fields: dict[str, Any] = {
        key: (info.annotation, info)
        for key, info in filters.model_fields.items()
        if key not in PAGINATION
    }
    return create_model(name, __base__=FileParams, **fields)


OpportunityExport = without_pagination(OpportunityFilters, "OpportunityExport")
AccountExport = without_pagination(AccountFilters, "AccountExport")


class ContactExport(FileParams):
    account_id: Id | None = Field(default=None, description="Only this account's contacts.")
    q: Str200 | None = Field(default=None, description="Part of the name, title or email.")
    selection_part: SelectionPart | None = None


class ActivityExport(FileParams):
    opportunity_id: Id | None = Field(default=None, description="Only this deal's activities.")
    owner_id: Id | None = None
    kind: Literal["call", "visit", "presentation", "demo", "meeting", "task"] | None = None
    done: bool | None = Field(default=None, description="Only done (or only planned) ones.")
    due_from: Day | None = Field(default=None, description="Due on or after.")
    due_to: Day | None = Field(default=None, description="Due on or before.")


class StalledExport(ScopeParams, FileParams):
    pass


def _field(model: Any, name: str) -> Any:
    """A model field's name in the caller's language, as a column header."""
    return capfirst(model._meta.get_field(name).verbose_name)


def _pick(row: dict[str, Any], key: str) -> Any:
    """The value at a dotted key of a JSON row (None where a nested object is null)."""
    value: Any = row
    for part in key.split("."):
        if value is None:
            return None
        value = value.get(part)
    return value


def _caller_zone(user: Any) -> Any:
    """The caller's time zone (their preference), None for the installation's: moments in a file
    are written as local times, as the web shows them."""
    try:
        return zoneinfo.ZoneInfo(user.time_zone) if getattr(user, "time_zone", "") else None
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return None


def _file(
    request: ApiRequest,
    params: Any,
    columns: list[tuple[str, Any]],
    rows: Iterable[dict[str, Any]],
    title: Any,
) -> Any:
    """The rows (JSON dicts) as the file asked for, moments in the caller's time zone."""
    keys = [key for key, _label in columns]
    table = Table(columns, ([_pick(row, k) for k in keys] for row in rows), title=str(title))
    with timezone.override(_caller_zone(request.auth)):
        return export_response(
            table, params.format, str(title), header_keys=params.header == "keys"
        )


def _batched(qs: Any, convert: Any) -> Iterator[dict[str, Any]]:
    """Each row of a sorted queryset as its JSON dict, read in slices (bounded memory)."""
    offset = 0
    while batch := list(qs[offset : offset + BATCH]):
        yield from (convert(row) for row in batch)
        offset += BATCH


# --- opportunities ------------------------------------------------------------------------------


def opportunity_columns() -> list[tuple[str, Any]]:
    return [
        ("id", _("ID")),
        ("name", _("Opportunity")),
        ("account.id", _("Account ID")),
        ("account.name", _("Account")),
        ("owner.username", _("User name")),
        ("owner.name", _("Owner")),
        ("branch.code", _("Branch code")),
        ("branch.name", _("Branch")),
        ("playbook.key", _("Playbook")),
        ("playbook.version", _("Playbook version")),
        ("stage.key", _("Stage key")),
        ("stage.name", _("Stage")),
        ("status", _("Status")),
        ("amount", _("Amount")),
        ("currency", _("Currency")),
        ("budget", _("Budget")),
        ("probability", _("Probability")),
        ("probability_override", _("Probability override")),
        ("weighted_amount", _("Weighted amount")),
        ("forecast_category", _("Forecast category")),
        ("close_date", _("Close date")),
        ("closed_on", _("Closed on")),
        ("source", _("Source")),
        ("lost_reason", _field(Opportunity, "lost_reason")),
        ("lost_to", _field(Opportunity, "lost_to")),
        ("stage_entered_at", _field(Opportunity, "stage_entered_at")),
        ("created_at", _field(Opportunity, "created_at")),
        ("updated_at", _field(Opportunity, "updated_at")),
        ("version", _("Version")),
    ]


def opportunities_matching(user: Any, f: Any) -> Any:
    """`GET /opportunities` without its pages: the same selector, filters and sort."""
    return opportunities_filtered(user, f).order_by(SORT_FIELDS.get(f.sort, f.sort), "-id")


# The list's filters this export applies: a filter added to GET /opportunities must be added
# here too (tests/api/test_exports.py checks that the two agree).
OPPORTUNITY_FILTERS = frozenset(
    {"q", "stage", "status", "owner_id", "branch", "industry", "account_id", "playbook"}
    | {"close_from", "close_to", "sort"}
)


@router.get(
    "/opportunities",
    summary="Export the opportunities you may see (CSV or XLSX)",
    openapi_extra=FILE_RESPONSE,
)
def export_opportunities(request: ApiRequest, params: Query[OpportunityExport]) -> Any:  # type: ignore[valid-type]
    """Every opportunity `GET /opportunities` matches with the same filters and sort, all pages
    in one file, with the fields of its JSON."""
    rows = _batched(opportunities_matching(request.auth, params), opportunity_out)
    return _file(request, params, opportunity_columns(), rows, _("Opportunities"))


# --- accounts and contacts ----------------------------------------------------------------------


def account_columns() -> list[tuple[str, Any]]:
    return [
        ("id", _("ID")),
        ("name", _("Account")),
        ("credit_code", _("Unified social credit code")),
        ("industry", _("Industry")),
        ("industry_name", _field(Account, "industry")),
        ("size_band", _("Size")),
        ("employees", _field(Account, "employees")),
        ("revenue", _("Annual revenue")),
        ("revenue_currency", _field(Account, "revenue_currency")),
        ("parent_id", _field(Account, "parent")),
        ("organisations_count", _("Organisations / sites")),
        ("it_need", _field(Account, "it_need")),
        ("product_fit", _field(Account, "product_fit")),
        ("is_target", _("Target account")),
        ("owner.username", _("User name")),
        ("owner.name", _("Owner")),
        ("branch.code", _("Branch code")),
        ("branch.name", _("Branch")),
        ("created_at", _field(Account, "created_at")),
        ("updated_at", _field(Account, "updated_at")),
    ]


def accounts_matching(user: Any, f: Any) -> Any:
    """`GET /accounts` without its pages: the same visibility, filters and sort."""
    return accounts_filtered(user, f).order_by(f.sort, "id")


ACCOUNT_FILTERS = frozenset(
    {"q", "industry", "target", "size_band", "owner_id", "branch", "parent_id", "sort"}
)


@router.get(
    "/accounts",
    summary="Export the accounts you may see (CSV or XLSX)",
    openapi_extra=FILE_RESPONSE,
)
def export_accounts(request: ApiRequest, params: Query[AccountExport]) -> Any:  # type: ignore[valid-type]
    """Every account `GET /accounts` matches with the same filters and sort, in one file."""
    rows = _batched(accounts_matching(request.auth, params), account_out)
    return _file(request, params, account_columns(), rows, _("Accounts"))


def contact_columns() -> list[tuple[str, Any]]:
    return [
        ("id", _("ID")),
        ("account_id", _("Account ID")),
        ("account_name", _("Account")),
        ("name", _field(Contact, "name")),
        ("title", _field(Contact, "title")),
        ("phone", _field(Contact, "phone")),
        ("email", _field(Contact, "email")),
        ("selection_part", _("Part in the selection team")),
    ]


@router.get(
    "/contacts",
    summary="Export the contacts of the accounts you may see (CSV or XLSX)",
    openapi_extra=FILE_RESPONSE,
)
def export_contacts(request: ApiRequest, params: Query[ContactExport]) -> Any:
    """The people at every account you may see (or at one, `account_id`: 404 if you may not see
    it), by account and name, with the fields of `GET /accounts/{id}/contacts`."""
    qs = Contact.objects.filter(account__in=Account.objects.visible_to(request.auth))
    if params.account_id:
        qs = qs.filter(account=account_get(request.auth, params.account_id))
    if params.q:
        term = params.q.strip()
        qs = qs.filter(
            Q(name__icontains=term) | Q(title__icontains=term) | Q(email__icontains=term)
        )
    if params.selection_part is not None:
        qs = qs.filter(selection_part=params.selection_part)
    qs = qs.select_related("account").order_by("account__name", "account_id", "name", "id")

    def convert(contact: Contact) -> dict[str, Any]:
        return contact_out(contact) | {"account_name": contact.account.name}

    return _file(request, params, contact_columns(), _batched(qs, convert), _("Contacts"))


# --- activities, 立项 requests, stalled deals -----------------------------------------------------


def activity_columns() -> list[tuple[str, Any]]:
    return [
        ("id", _("ID")),
        ("opportunity_id", _("Opportunity ID")),
        ("opportunity_name", _("Opportunity")),
        ("kind", _field(Activity, "kind")),
        ("subject", _field(Activity, "subject")),
        ("notes", _field(Activity, "notes")),
        ("owner.username", _("User name")),
        ("owner.name", _("Owner")),
        ("due_on", _field(Activity, "due_on")),
        ("done_at", _field(Activity, "done_at")),
        ("outcome", _field(Activity, "outcome")),
        ("created_at", _field(Activity, "created_at")),
    ]


@router.get(
    "/activities",
    summary="Export the activities of the deals you may see (CSV or XLSX)",
    openapi_extra=FILE_RESPONSE,
)
def export_activities(request: ApiRequest, params: Query[ActivityExport]) -> Any:
    """Planned and done activities on every opportunity you may see (or on one,
    `opportunity_id`: 404 if you may not see it), by due date."""
    visible = Opportunity.objects.visible_to(request.auth)
    qs = Activity.objects.filter(opportunity__in=visible)
    if params.opportunity_id:
        qs = qs.filter(opportunity=opportunity_get(request.auth, params.opportunity_id))
    if params.owner_id:
        qs = qs.filter(owner_id=params.owner_id)
    if params.kind:
        qs = qs.filter(kind=params.kind)
    if params.done is not None:
        qs = qs.filter(done_at__isnull=not params.done)
    if params.due_from:
        qs = qs.filter(due_on__gte=params.due_from)
    if params.due_to:
        qs = qs.filter(due_on__lte=params.due_to)
    qs = qs.select_related("owner", "opportunity").order_by("due_on", "id")

    def convert(activity: Activity) -> dict[str, Any]:
        return activity_out(activity) | {"opportunity_name": activity.opportunity.name}

    return _file(request, params, activity_columns(), _batched(qs, convert), _("Activities"))


def approval_columns() -> list[tuple[str, Any]]:
    return [
        ("id", _("ID")),
        ("opportunity.id", _("Opportunity ID")),
        ("opportunity.name", _("Opportunity")),
        ("opportunity.account", _("Account")),
        ("status", _("Status")),
        ("requested_by.name", _("Requested by")),
        ("requested_at", _("Requested")),
        ("requirement", _("Project requirement")),
        ("budget", _("Customer budget")),
        ("timeline", _("Timeline")),
        ("selection_team", _("Selection team and leadership support")),
        ("competition", _("Competitors and consultants involved")),
        ("strategy", _("How we are guiding the customer")),
        ("decided_by.name", _("Decided by")),
        ("decided_at", _("Decided")),
        ("comment", _("Comment")),
    ]


@router.get(
    "/approvals",
    summary="Export the 立项 requests waiting for your decision (CSV or XLSX)",
    openapi_extra=FILE_RESPONSE,
)
def export_approvals(request: ApiRequest, params: Query[FileParams]) -> Any:
    """What `GET /approvals` lists: the pending project set-up requests of the branches you
    manage, oldest first (a seller's file has only the header row)."""
    qs = approvals_waiting_for(request.auth).select_related("decided_by")
    rows = _batched(qs, approval_out)
    return _file(request, params, approval_columns(), rows, _("Waiting for your decision"))


def stalled_columns() -> list[tuple[str, Any]]:
    return [
        ("id", _("ID")),
        ("name", _("Deal")),
        ("account", _("Account")),
        ("owner", _("User name")),
        ("stage", _("Stage key")),
        ("stage_name", _("Stage")),
        ("days_in_stage", _("Days in stage")),
        ("threshold_days", _("Threshold")),
        ("threshold_source", pgettext_lazy("where a stall threshold comes from", "Threshold from")),
        ("days_over", _("Days over")),
        ("amount", _("Amount")),
        ("currency", _("Currency")),
        ("close_date", _("Close date")),
    ]


@router.get(
    "/stalled",
    summary="Export the stalled deals (CSV or XLSX)",
    openapi_extra=FILE_RESPONSE,
)
def export_stalled(request: ApiRequest, params: Query[StalledExport]) -> Any:
    """The deals of `GET /analytics/stalled` for the same scope, most overdue first; amounts as
    numbers and dates as dates."""
    scope = _scope(request, params)
    data = stalled(scope.actor, scope.playbook, **scope.filters())
    rows = (
        d | {"amount": Decimal(d["amount"]), "close_date": dt.date.fromisoformat(d["close_date"])}
        for d in data["deals"]
    )
    return _file(request, params, stalled_columns(), rows, _("Stalled deals"))
