"""立项: the seller asks for the project set-up; a manager of the seller's branch decides."""

from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from loudou.core import clock
from loudou.core.audit import audit, snapshot
from loudou.core.errors import NotFound, PermissionDenied, ValidationFailed
from loudou.core.money import parse_amount
from loudou.org.access import manages_branch
from loudou.pipeline.models import ApprovalStatus, Opportunity, ProjectApproval
from loudou.pipeline.services._base import (
    audit_values,
    commit,
    lock,
    require_editor,
    require_open,
    tracked_values,
)

APPROVAL_FIELDS = ["opportunity", "status", "requested_by", "budget", "decided_by", "comment"]


@transaction.atomic
def approval_request(
    *,
    opportunity: Opportunity | int,
    actor: Any,
    requirement: str,
    budget: Any,
    timeline: str,
    selection_team: str,
    competition: str = "",
    strategy: str = "",
) -> ProjectApproval:
    """The seller reports the opportunity and asks for the project set-up, with what stage 4 asks
    for; the customer's budget is recorded on the opportunity too."""
    opp = lock(opportunity, actor, None)
    require_open(opp)
    require_editor(opp, actor)
    if opp.approvals.filter(status=ApprovalStatus.PENDING).exists():
        raise ValidationFailed(
            _("A project set-up request for this opportunity is already waiting.")
        )
    if opp.approvals.filter(status=ApprovalStatus.APPROVED).exists():
        raise ValidationFailed(_("The project set-up of this opportunity is already approved."))
    missing = {
        k: _("required")
        for k, v in {
            "requirement": requirement,
            "timeline": timeline,
            "selection_team": selection_team,
        }.items()
        if not (v or "").strip()
    }
    if missing:
        raise ValidationFailed(
            _(
                "A project set-up request needs the requirement, the budget, the timeline and the "
                "selection team."
            ),
            details=missing,
        )
    value = parse_amount(budget, field="budget")
    approval = ProjectApproval.objects.create(
        opportunity=opp,
        requested_by=actor,
        requested_at=clock.now(),
        requirement=requirement.strip(),
        budget=value,
        timeline=timeline.strip(),
        selection_team=selection_team.strip(),
        competition=competition.strip(),
        strategy=strategy.strip(),
    )
    audit("approval.request", approval, actor=actor, after=snapshot(approval, APPROVAL_FIELDS))
    if opp.budget != value:
        before_t, before_a = tracked_values(opp), audit_values(opp)
        opp.budget = value
        commit(
            opp,
            actor=actor,
            action="update",
            before_tracked=before_t,
            before_audit=before_a,
            reason=_("Budget from the project set-up request"),
        )
    return approval


def _pending(approval: ProjectApproval | int, actor: Any) -> ProjectApproval:
    pk = approval if isinstance(approval, int) else approval.pk
    visible = ProjectApproval.objects.filter(
        pk=pk, opportunity__in=Opportunity.objects.visible_to(actor)
    ).exists()
    found = ProjectApproval.objects.select_for_update().filter(pk=pk).first() if visible else None
    if found is None:
        raise NotFound(_("No such project set-up request."))
    if found.status != ApprovalStatus.PENDING:
        raise ValidationFailed(
            _("This request was already decided (%(s)s).") % {"s": found.get_status_display()},
            details={"status": found.status},
        )
    return found


@transaction.atomic
def approval_decide(
    *, approval: ProjectApproval | int, actor: Any, approve: bool, comment: str = ""
) -> ProjectApproval:
    """A manager of the seller's branch approves or rejects a 立项 request (a rejection says why)."""
    found = _pending(approval, actor)
    if not manages_branch(actor, found.opportunity.branch_id):
        raise PermissionDenied(
            _("Only a manager of the seller's branch may decide a project set-up.")
        )
    if found.requested_by_id == actor.pk:
        raise PermissionDenied(_("Nobody approves their own project set-up request."))
    if not approve and not comment.strip():
        raise ValidationFailed(
            _("Say why the request is rejected."), details={"comment": "required"}
        )
    before = snapshot(found, APPROVAL_FIELDS)
    found.status = ApprovalStatus.APPROVED if approve else ApprovalStatus.REJECTED
    found.decided_by = actor
    found.decided_at = clock.now()
    found.comment = comment.strip()
    found.save()
    audit(
        "approval.approve" if approve else "approval.reject",
        found,
        actor=actor,
        before=before,
        after=snapshot(found, APPROVAL_FIELDS),
        reason=found.comment,
    )
    return found


@transaction.atomic
def approval_withdraw(*, approval: ProjectApproval | int, actor: Any) -> ProjectApproval:
    """The requester withdraws a request that is still waiting."""
    found = _pending(approval, actor)
    if found.requested_by_id != actor.pk:
        raise PermissionDenied(_("Only the requester may withdraw a request."))
    before = snapshot(found, APPROVAL_FIELDS)
    found.status = ApprovalStatus.WITHDRAWN
    found.save()
    audit(
        "approval.withdraw",
        found,
        actor=actor,
        before=before,
        after=snapshot(found, APPROVAL_FIELDS),
    )
    return found
