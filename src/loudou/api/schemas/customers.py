"""Accounts (with ICP fit and group) and contacts."""

import datetime as dt
from decimal import Decimal
from typing import Any, Literal

from ninja import Schema
from pydantic import Field

from loudou.api.schemas.common import (
    Amount,
    BranchRef,
    Currency,
    CursorMeta,
    Id,
    In,
    Name120,
    Name200,
    PageMeta,
    Str18,
    Str40,
    Str120,
    Str254,
    Text,
    UserRef,
    branch_ref,
    user_ref,
)
from loudou.customers.models import Account, Contact

SizeBand = Literal["large", "medium", "small", "micro", ""]
SelectionPart = Literal["", "decision_maker", "influencer", "evaluator", "user"]
Count = Field(default=None, ge=0, le=2_000_000_000)


class IcpCriterion(Schema):
    key: str
    text: str
    holds: bool
    reason: str
    required: bool


class GroupMember(Schema):
    depth: int
    id: int
    name: str


class AccountOut(Schema):
    id: int
    name: str
    credit_code: str | None
    industry: str | None = Field(description="Industry key.")
    industry_name: str | None
    size_band: str
    employees: int | None
    revenue: Decimal | None
    revenue_currency: str
    parent_id: int | None
    organisations_count: int
    it_need: str
    product_fit: str
    is_target: bool
    owner: UserRef
    branch: BranchRef | None
    created_at: dt.datetime
    updated_at: dt.datetime


class AccountDetail(AccountOut):
    icp_fit: list[IcpCriterion] = Field(
        description="The default playbook's stage-1 criteria for this account."
    )
    group: list[GroupMember] = Field(
        description="The group hierarchy from its top, as far as you may see it."
    )


class AccountPage(PageMeta):
    results: list[AccountOut]


class AccountCursorPage(CursorMeta):
    results: list[AccountOut]


class AccountIn(In):
    name: Name200
    credit_code: Str18 | None = None
    industry: Str40 | None = Field(default=None, description="Industry key.")
    size_band: SizeBand = ""
    employees: int | None = Count
    revenue: Amount | None = None
    revenue_currency: Currency | Literal[""] = ""
    parent_id: Id | None = None
    organisations_count: int | None = Count
    it_need: Text = ""
    product_fit: Text = ""
    owner_id: Id | None = Field(
        default=None, description="Another seller of your branches (managers); default you."
    )


class AccountPatch(In):
    name: Name200 | None = None
    credit_code: Str18 | None = None
    industry: Str40 | None = None
    size_band: SizeBand | None = None
    employees: int | None = Count
    revenue: Amount | None = None
    revenue_currency: Currency | Literal[""] | None = None
    parent_id: Id | None = None
    organisations_count: int | None = Count
    it_need: Text | None = None
    product_fit: Text | None = None


class ContactOut(Schema):
    id: int
    account_id: int
    name: str
    title: str
    phone: str
    email: str
    selection_part: str


class ContactListed(ContactOut):
    account_name: str


class ContactPage(PageMeta):
    results: list[ContactListed]


class ContactCursorPage(CursorMeta):
    results: list[ContactListed]


class ContactIn(In):
    name: Name120
    title: Str120 = ""
    phone: Str40 = ""
    email: Str254 = ""
    selection_part: SelectionPart = ""


class ContactPatch(In):
    name: Name120 | None = None
    title: Str120 | None = None
    phone: Str40 | None = None
    email: Str254 | None = None
    selection_part: SelectionPart | None = None


def account_out(account: Account) -> dict[str, Any]:
    industry = account.industry
    return {
        "id": account.pk,
        "name": account.name,
        "credit_code": account.credit_code,
        "industry": industry.key if industry else None,
        "industry_name": str(industry) if industry else None,
        "size_band": account.size_band,
        "employees": account.employees,
        "revenue": account.revenue,
        "revenue_currency": account.revenue_currency,
        "parent_id": account.parent_id,
        "organisations_count": account.organisations_count,
        "it_need": account.it_need,
        "product_fit": account.product_fit,
        "is_target": account.is_target,
        "owner": user_ref(account.owner),
        "branch": branch_ref(account.branch),
        "created_at": account.created_at,
        "updated_at": account.updated_at,
    }


def contact_out(contact: Contact) -> dict[str, Any]:
    return {
        "id": contact.pk,
        "account_id": contact.account_id,
        "name": contact.name,
        "title": contact.title,
        "phone": contact.phone,
        "email": contact.email,
        "selection_part": contact.selection_part,
    }
