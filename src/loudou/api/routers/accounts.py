"""Accounts with their ICP fit and group, and their contacts (per account, and every contact
you may see in one long list)."""

from typing import Any, Literal

from django.db.models import Q
from ninja import Query, Router, Schema
from ninja.responses import Status
from pydantic import Field

from loudou.api.auth import ApiRequest
from loudou.api.pagination import Ordering, Paging, asc, desc, page_or_cursor
from loudou.api.schemas.common import CURSOR, PAGE, PAGE_SIZE, Id, Str40, Str200
from loudou.api.schemas.customers import (
    AccountCursorPage,
    AccountDetail,
    AccountIn,
    AccountPage,
    AccountPatch,
    ContactCursorPage,
    ContactIn,
    ContactOut,
    ContactPage,
    ContactPatch,
    SelectionPart,
    SizeBand,
    account_out,
    contact_out,
)
from loudou.api.selectors import (
    account_for_write,
    account_get,
    branch_ids_for,
    contact_get,
    user_by_id,
    visible_group,
)
from loudou.customers.models import Account, Contact
from loudou.customers.selectors import icp_fit
from loudou.customers.services import account_create, account_update, contact_create, contact_update
from loudou.playbooks.selectors import playbook_get

router = Router(tags=["accounts"])
contacts = Router(tags=["accounts"])

AccountSort = Literal["name", "-name", "created_at", "-created_at", "updated_at", "-updated_at"]
# Each sort's full order: ties broken by id, ascending.
ACCOUNT_ORDER: dict[str, Ordering] = {
    sort: ((desc(sort[1:]) if sort.startswith("-") else asc(sort)), asc("id"))
    for sort in AccountSort.__args__  # type: ignore[attr-defined]
}


class AccountFilters(Schema):
    q: Str200 | None = Field(default=None, description="Part of the name or the credit code.")
    industry: Str40 | None = Field(default=None, description="Industry key.")
    target: bool | None = Field(default=None, description="Only target (or non-target) accounts.")
    size_band: SizeBand | None = None
    owner_id: Id | None = None
    branch: Str40 | None = Field(default=None, description="Branch code, with the branches below.")
    parent_id: Id | None = Field(default=None, description="Members of this group.")
    sort: AccountSort = "name"
    page: int = PAGE
    page_size: int = PAGE_SIZE
    cursor: str | None = CURSOR


def _detail(request: ApiRequest, account: Account) -> dict[str, Any]:
    return account_out(account) | {
        "icp_fit": icp_fit(account, playbook_get()),
        "group": visible_group(request.auth, account),
    }


def accounts_filtered(user: Any, filters: Any) -> Any:
    """The accounts `user` may see that match the list's filters (unordered): the list and its
    export (`routers/exports.py`) read the same rows."""
    qs = Account.objects.visible_to(user).select_related("industry", "owner", "branch")
    if filters.q:
        qs = qs.filter(Q(name__icontains=filters.q) | Q(credit_code__iexact=filters.q.strip()))
    if filters.industry:
        qs = qs.filter(industry__key=filters.industry)
    if filters.target is not None:
        qs = qs.filter(is_target=filters.target)
    if filters.size_band is not None:
        qs = qs.filter(size_band=filters.size_band)
    if filters.owner_id:
        qs = qs.filter(owner_id=filters.owner_id)
    branch_ids = branch_ids_for(filters.branch)
    if branch_ids is not None:
        qs = qs.filter(branch_id__in=branch_ids)
    if filters.parent_id:
        qs = qs.filter(parent_id=filters.parent_id)
    return qs


@router.get("", response=AccountPage | AccountCursorPage, summary="List the accounts you may see")
def account_list(request: ApiRequest, filters: Query[AccountFilters]) -> Any:
    """Accounts visible to you, filtered, sorted (name by default), by page or by cursor."""
    qs = accounts_filtered(request.auth, filters)
    paging = Paging("accounts", filters.sort, ACCOUNT_ORDER[filters.sort])
    return page_or_cursor(qs, filters, paging, account_out)


@router.post("", response={201: AccountDetail}, summary="Create an account")
def account_new(request: ApiRequest, payload: AccountIn) -> Any:
    """Create an account (qualified against the ICP at once); owned by you unless a manager
    names another seller."""
    data = payload.model_dump(exclude_unset=True)
    owner = user_by_id(data.pop("owner_id", None), field="owner_id")
    if "parent_id" in data:
        parent_id = data.pop("parent_id")
        data["parent"] = (
            account_for_write(request.auth, parent_id, field="parent_id") if parent_id else None
        )
    account = account_create(actor=request.auth, owner=owner, **data)
    return Status(201, _detail(request, account_get(request.auth, account.pk)))


@router.get("/{account_id}", response=AccountDetail, summary="One account with its ICP fit")
def account_detail(request: ApiRequest, account_id: Id) -> Any:
    """The account, how it fits the ICP (stage 1 of the default playbook) and its group."""
    return _detail(request, account_get(request.auth, account_id))


@router.patch("/{account_id}", response=AccountDetail, summary="Change an account")
def account_change(request: ApiRequest, account_id: Id, payload: AccountPatch) -> Any:
    """Change the fields sent (owner, manager or administrator); the account is re-qualified."""
    account = account_get(request.auth, account_id)
    data = payload.model_dump(exclude_unset=True)
    if "parent_id" in data:
        parent_id = data.pop("parent_id")
        data["parent"] = (
            account_for_write(request.auth, parent_id, field="parent_id") if parent_id else None
        )
    for field in ("name", "size_band", "it_need", "product_fit", "revenue_currency"):
        if field in data and data[field] is None:
            data[field] = ""
    account_update(account=account, actor=request.auth, **data)
    return _detail(request, account_get(request.auth, account_id))


@router.get("/{account_id}/contacts", response=list[ContactOut], summary="An account's contacts")
def contact_list(request: ApiRequest, account_id: Id) -> Any:
    """The people at the account, with their part in the selection team."""
    account = account_get(request.auth, account_id)
    return [contact_out(c) for c in account.contacts.order_by("name", "id")]


@router.post(
    "/{account_id}/contacts", response={201: ContactOut}, summary="Add a contact to an account"
)
def contact_new(request: ApiRequest, account_id: Id, payload: ContactIn) -> Any:
    """Add a person at the account (owner, manager or administrator)."""
    account = account_get(request.auth, account_id)
    contact = contact_create(account=account, actor=request.auth, **payload.model_dump())
    return Status(201, contact_out(contact))


@router.patch(
    "/{account_id}/contacts/{contact_id}", response=ContactOut, summary="Change a contact"
)
def contact_change(
    request: ApiRequest, account_id: Id, contact_id: Id, payload: ContactPatch
) -> Any:
    """Change the fields sent."""
    contact = contact_get(request.auth, contact_id, account_id=account_id)
    data = {k: v for k, v in payload.model_dump(exclude_unset=True).items() if v is not None}
    contact = contact_update(contact=contact, actor=request.auth, **data)
    return contact_out(contact)


ContactSort = Literal["account", "name", "-name"]
CONTACT_ORDER: dict[str, Ordering] = {
    # By account (its name, then the account itself), then the person: as the export sorts.
    "account": (asc("account__name"), asc("account_id"), asc("name"), asc("id")),
    "name": (asc("name"), asc("id")),
    "-name": (desc("name"), asc("id")),
}


class ContactFilters(Schema):
    account_id: Id | None = Field(default=None, description="Only this account's contacts.")
    q: Str200 | None = Field(default=None, description="Part of the name, title or email.")
    selection_part: SelectionPart | None = None
    sort: ContactSort = Field(default="account", description="account: by account, then name.")
    page: int = PAGE
    page_size: int = PAGE_SIZE
    cursor: str | None = CURSOR


def contact_listed(contact: Contact) -> dict[str, Any]:
    return contact_out(contact) | {"account_name": contact.account.name}


@contacts.get("", response=ContactPage | ContactCursorPage, summary="List the contacts you may see")
def contact_search(request: ApiRequest, filters: Query[ContactFilters]) -> Any:
    """The people at every account you may see (or at one, `account_id`: 404 if you may not
    see it), filtered, by page or by cursor."""
    qs = Contact.objects.filter(account__in=Account.objects.visible_to(request.auth))
    if filters.account_id:
        qs = qs.filter(account=account_get(request.auth, filters.account_id))
    if filters.q:
        term = filters.q.strip()
        qs = qs.filter(
            Q(name__icontains=term) | Q(title__icontains=term) | Q(email__icontains=term)
        )
    if filters.selection_part is not None:
        qs = qs.filter(selection_part=filters.selection_part)
    paging = Paging("contacts", filters.sort, CONTACT_ORDER[filters.sort])
    return page_or_cursor(qs.select_related("account"), filters, paging, contact_listed)
