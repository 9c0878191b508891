"""Targets (业绩目标): the monthly bookings a person, a branch or the company should win, as
set (`GET /targets`), and setting one (`POST /targets`) through `target_set`, which decides who
may: a manager for the people and branches they manage, an administrator for the company.

Progress against the targets (booked, weighted, P50) is `GET /analytics/targets`."""

import datetime as dt
from typing import Annotated, Any, Literal

from django.db.models import Q
from django.utils.translation import gettext as _
from ninja import Query, Router, Schema
from pydantic import Field, StringConstraints

from loudou.api.auth import ApiRequest
from loudou.api.pagination import Ordering, Paging, asc, desc, page_or_cursor
from loudou.api.schemas.common import (
    CURSOR,
    PAGE,
    PAGE_SIZE,
    Amount,
    BranchRef,
    Currency,
    CursorMeta,
    Id,
    In,
    PageMeta,
    UserRef,
    branch_ref,
    user_ref,
)
from loudou.api.selectors import user_by_id
from loudou.core.errors import ValidationFailed
from loudou.org.access import managed_branch_ids
from loudou.org.models import Branch, Target, TargetScope
from loudou.org.services import target_set

router = Router(tags=["targets"])

Scope = Literal["user", "branch", "company"]
# A month as 2026-03; years a sales plan can mean.
Month = Annotated[str, StringConstraints(pattern=r"^(19|2[0-9])[0-9]{2}-(0[1-9]|1[0-2])$")]
MONTH_HELP = "A month, as 2026-03."

TargetSort = Literal["month", "-month"]
TARGET_ORDER: dict[str, Ordering] = {
    "month": (asc("month"), asc("id")),
    "-month": (desc("month"), asc("id")),
}


class TargetOut(Schema):
    id: int
    scope: Scope
    month: str = Field(description=MONTH_HELP)
    user: UserRef | None = Field(description="The person (scope user).")
    branch: BranchRef | None = Field(description="The branch (scope branch).")
    amount: str = Field(description="The bookings to win in the month (decimal string).")
    currency: str


class TargetPage(PageMeta):
    results: list[TargetOut]


class TargetCursorPage(CursorMeta):
    results: list[TargetOut]


class TargetIn(In):
    scope: Scope = Field(description="user (a person), branch, or company.")
    user_id: Id | None = Field(default=None, description="The person; with scope user only.")
    branch_id: Id | None = Field(default=None, description="The branch; with scope branch only.")
    month: Month = Field(description=MONTH_HELP)
    amount: Amount
    currency: Currency | None = Field(default=None, description="Default: the base currency.")


class TargetFilters(Schema):
    scope: Scope | None = None
    user_id: Id | None = None
    branch_id: Id | None = None
    month_from: Month | None = Field(default=None, description="From this month on.")
    month_to: Month | None = Field(default=None, description="Up to this month.")
    sort: TargetSort = "month"
    page: int = PAGE
    page_size: int = PAGE_SIZE
    cursor: str | None = CURSOR


def _first_day(month: str) -> dt.date:
    year, number = month.split("-")
    return dt.date(int(year), int(number), 1)


def target_out(target: Target) -> dict[str, Any]:
    return {
        "id": target.pk,
        "scope": target.scope,
        "month": f"{target.month:%Y-%m}",
        "user": user_ref(target.user),
        "branch": branch_ref(target.branch),
        "amount": f"{target.amount:.2f}",
        "currency": target.currency,
    }


def targets_visible_to(user: Any) -> Any:
    """The targets `user` may read, as the targets report shows them: their own, those of the
    people and branches they manage, and the company's for those who see every branch."""
    qs = Target.objects.select_related("user", "branch")
    managed = managed_branch_ids(user)
    if managed is None:
        return qs
    return qs.filter(
        Q(scope=TargetScope.USER, user=user)
        | Q(scope=TargetScope.USER, user__branch_id__in=managed)
        | Q(scope=TargetScope.BRANCH, branch_id__in=managed)
    )


@router.get("", response=TargetPage | TargetCursorPage, summary="Targets you may see")
def target_list(request: ApiRequest, filters: Query[TargetFilters]) -> Any:
    """The monthly targets as set: yours, those of the people and branches you manage, and the
    company's if you see every branch; by page or by cursor."""
    qs = targets_visible_to(request.auth)
    if filters.scope:
        qs = qs.filter(scope=filters.scope)
    if filters.user_id:
        qs = qs.filter(user_id=filters.user_id)
    if filters.branch_id:
        qs = qs.filter(branch_id=filters.branch_id)
    if filters.month_from:
        qs = qs.filter(month__gte=_first_day(filters.month_from))
    if filters.month_to:
        qs = qs.filter(month__lte=_first_day(filters.month_to))
    paging = Paging("targets", filters.sort, TARGET_ORDER[filters.sort])
    return page_or_cursor(qs, filters, paging, target_out)


def _subject(payload: TargetIn) -> dict[str, Any]:
    """The user or branch the target is for, checked against its scope."""
    wanted = {"user": "user_id", "branch": "branch_id"}.get(payload.scope)
    for field in ("user_id", "branch_id"):
        given = getattr(payload, field) is not None
        if given != (field == wanted):
            raise ValidationFailed(
                _("A target for scope “%(scope)s” needs %(needs)s.")
                % {"scope": payload.scope, "needs": wanted or _("neither user_id nor branch_id")},
                details={field: "required" if field == wanted else "not_with_scope"},
            )
    if payload.scope == "user":
        return {"user": user_by_id(payload.user_id, field="user_id")}
    if payload.scope == "branch" and payload.branch_id is not None:
        branch = Branch.objects.filter(pk=payload.branch_id).first()
        if branch is None:
            raise ValidationFailed(
                _("No branch with id %(id)s.") % {"id": payload.branch_id},
                details={"branch_id": "unknown"},
            )
        return {"branch": branch}
    return {}


@router.post("", response=TargetOut, summary="Set a monthly target")
def target_put(request: ApiRequest, payload: TargetIn) -> Any:
    """Set (create or replace) the month's target of a person, a branch or the company. A
    manager sets them for the people and branches they manage, an administrator for anyone and
    the company; others get 403 `permission_denied` and nothing changes. Audited."""
    target = target_set(
        actor=request.auth,
        month=_first_day(payload.month),
        amount=payload.amount,
        currency=payload.currency or "",
        **_subject(payload),
    )
    return target_out(Target.objects.select_related("user", "branch").get(pk=target.pk))
