"""The approvals inbox: 立项 requests waiting for a manager's decision with everything the seller
gathered, the decisions of the last 30 days, and the user's own requests with their outcome."""

import datetime as dt
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import path
from django.utils.translation import gettext as _

from loudou.core import clock
from loudou.core.errors import LoudouError, NotFound, PermissionDenied, ValidationFailed
from loudou.core.money import base_currency
from loudou.org.access import managed_branch_ids, manages_branch
from loudou.org.models import AccessLevel
from loudou.pipeline.models import ApprovalStatus, Opportunity, ProjectApproval
from loudou.pipeline.selectors import approvals_waiting_for
from loudou.pipeline.services import approval_decide, approval_withdraw
from loudou.web.views.base import login_required, require_post, service_errors
from loudou.web.views.exports import approvals_table, download, export_format

RECENT_DAYS = 30
MY_REQUESTS_SHOWN = 50
CARD_RELATED = (
    "opportunity",
    "opportunity__account",
    "opportunity__owner",
    "opportunity__stage",
    "opportunity__branch",
    "requested_by",
    "decided_by",
)


def decided_recently(user: Any) -> Any:
    """Requests of the branches `user` manages decided in the last 30 days, newest first
    (nothing for sellers)."""
    if user.level == AccessLevel.SELLER:
        return ProjectApproval.objects.none()
    since = clock.now() - dt.timedelta(days=RECENT_DAYS)
    qs = ProjectApproval.objects.filter(
        status__in=[ApprovalStatus.APPROVED, ApprovalStatus.REJECTED], decided_at__gte=since
    )
    managed = managed_branch_ids(user)
    if managed is not None:
        qs = qs.filter(opportunity__branch_id__in=managed)
    return qs.select_related(*CARD_RELATED).order_by("-decided_at", "-id")


def requests_by(user: Any) -> Any:
    """The 立项 requests `user` made, newest first: how a seller learns the decision."""
    return (
        ProjectApproval.objects.filter(requested_by=user)
        .select_related(*CARD_RELATED)
        .order_by("-requested_at", "-id")
    )


def _approval_get(user: Any, pk: int) -> ProjectApproval:
    """A request on an opportunity `user` may see, or NotFound."""
    found = (
        ProjectApproval.objects.filter(pk=pk, opportunity__in=Opportunity.objects.visible_to(user))
        .select_related(*CARD_RELATED)
        .first()
    )
    if found is None:
        raise NotFound(_("No such project set-up request."))
    return found


def _can_decide(user: Any, approval: ProjectApproval) -> bool:
    """The rule of `approval_decide`, to show the decision form only to who may use it."""
    return (
        approval.status == ApprovalStatus.PENDING
        and approval.requested_by_id != user.pk
        and manages_branch(user, approval.opportunity.branch_id)
    )


@login_required
def inbox(request: HttpRequest) -> HttpResponse:
    """Managers: what waits for their decision and what was decided lately; everyone: their own
    requests and the decisions on them. `?export=csv|xlsx&list=waiting|decided|mine` gives one
    of the three lists, every row of it, as a file."""
    if fmt := export_format(request):
        return download(_export_table(request), fmt)
    return _render_inbox(request)


def _export_table(request: HttpRequest) -> Any:
    """The list the export asks for (by default the user's own requests)."""
    user: Any = request.user
    chosen = request.GET.get("list", "mine")
    if chosen == "waiting":
        qs = approvals_waiting_for(user).select_related(*CARD_RELATED)
        return approvals_table(qs, _("Waiting for your decision"))
    if chosen == "decided":
        title = _("Decided in the last %(n)s days") % {"n": RECENT_DAYS}
        return approvals_table(decided_recently(user), title)
    return approvals_table(requests_by(user), _("My requests"))


def _render_inbox(
    request: HttpRequest, card_states: dict[int, dict[str, Any]] | None = None
) -> HttpResponse:
    """The inbox; `card_states` holds, per request, an error and the comment typed."""
    user: Any = request.user
    is_manager = user.level != AccessLevel.SELLER
    waiting = list(approvals_waiting_for(user).select_related(*CARD_RELATED))
    decided = list(decided_recently(user)[:100])
    mine_qs = requests_by(user)
    mine = list(mine_qs[:MY_REQUESTS_SHOWN])
    states = card_states or {}
    for approval in waiting:
        approval.card = states.get(approval.pk, {})  # type: ignore[attr-defined]
    context = {
        "is_manager": is_manager,
        "waiting": waiting,
        "decided": decided,
        "approved_count": sum(1 for a in decided if a.status == ApprovalStatus.APPROVED),
        "rejected_count": sum(1 for a in decided if a.status == ApprovalStatus.REJECTED),
        "mine": mine,
        "mine_total": mine_qs.count() if len(mine) == MY_REQUESTS_SHOWN else len(mine),
        "mine_pending": sum(1 for a in mine if a.status == ApprovalStatus.PENDING),
        "recent_days": RECENT_DAYS,
        "currency": base_currency(),
    }
    return render(request, "web/approvals/inbox.html", context, status=400 if states else 200)


def _card(
    request: HttpRequest, approval: ProjectApproval, status: int = 200, **state: Any
) -> HttpResponse:
    """One request's card, re-rendered in place after an htmx decision."""
    mode = "decide" if _can_decide(request.user, approval) else "read"
    approval.card = state  # type: ignore[attr-defined]
    return render(
        request,
        "web/approvals/_card.html",
        {"a": approval, "mode": mode, "currency": base_currency(), "in_place": True},
        status=status,
    )


@login_required
@require_post
def decide(request: HttpRequest, pk: int) -> HttpResponse:
    """Approve or reject a 立项 request with a comment (a rejection must say why)."""
    choice = request.POST.get("decision", "")
    comment = request.POST.get("comment", "")
    try:
        if choice not in ("approve", "reject"):
            _approval_get(request.user, pk)  # a hidden request stays a 404, whatever was sent
            raise ValidationFailed(_("Choose to approve or to reject the request."))
        approval = approval_decide(
            approval=pk, actor=request.user, approve=choice == "approve", comment=comment
        )
    except LoudouError as error:
        if isinstance(error, (NotFound, PermissionDenied)):
            raise  # the middleware answers 404 / 403
        state = {**service_errors(error), "comment": comment}
        approval = _approval_get(request.user, pk)
        if getattr(request, "htmx", False):
            return _card(request, approval, status=400, **state)
        if approval.status == ApprovalStatus.PENDING:
            return _render_inbox(request, card_states={pk: state})
        messages.error(request, error.message)
        return redirect("web:approvals")
    done = (
        _("Approved: the project set-up of “%(name)s” is granted.")
        if approval.status == ApprovalStatus.APPROVED
        else _("Rejected: the seller sees your comment on “%(name)s”.")
    ) % {"name": approval.opportunity.name}
    if getattr(request, "htmx", False):
        return _card(request, _approval_get(request.user, pk), notice=done)
    messages.success(request, done)
    return redirect("web:approvals")


@login_required
@require_post
def withdraw(request: HttpRequest, pk: int) -> HttpResponse:
    """The requester takes back a request that is still waiting."""
    try:
        approval = approval_withdraw(approval=pk, actor=request.user)
    except LoudouError as error:
        if isinstance(error, (NotFound, PermissionDenied)):
            raise
        messages.error(request, error.message)
        return redirect("web:approvals")
    messages.info(
        request,
        _("Request for “%(name)s” withdrawn.") % {"name": approval.opportunity.name},
    )
    return redirect("web:approvals")


urlpatterns = [
    path("approvals/", inbox, name="approvals"),
    path("approvals/<int:pk>/decide/", decide, name="approval-decide"),
    path("approvals/<int:pk>/withdraw/", withdraw, name="approval-withdraw"),
]
