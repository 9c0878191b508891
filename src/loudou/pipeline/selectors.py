"""Reads of opportunities: lists filtered by the visibility rule, and the gate progress of one."""

from typing import Any

from django.utils.translation import gettext as _

from loudou.core.errors import NotFound
from loudou.core.i18n import localized
from loudou.pipeline.gates import criteria_states
from loudou.pipeline.models import Opportunity
from loudou.playbooks.models import StageKind


def opportunity_list(
    user: Any,
    *,
    status: str | None = None,
    stage: str | None = None,
    playbook: str | None = None,
    owner_id: int | None = None,
) -> Any:
    """The opportunities `user` may see, optionally filtered, newest first."""
    qs = Opportunity.objects.visible_to(user).select_related(
        "account", "owner", "stage", "playbook", "branch"
    )
    if status:
        qs = qs.filter(status=status)
    if stage:
        qs = qs.filter(stage__key=stage)
    if playbook:
        qs = qs.filter(playbook__key=playbook)
    if owner_id:
        qs = qs.filter(owner_id=owner_id)
    return qs.order_by("-created_at", "-id")


def opportunity_get(user: Any, pk: int) -> Opportunity:
    """One opportunity `user` may see, or NotFound (never telling "exists but hidden")."""
    opp = opportunity_list(user).filter(pk=pk).first()
    if opp is None:
        raise NotFound(_("No such opportunity."))
    return opp


def gate_progress(opportunity: Opportunity) -> dict[str, Any]:
    """For the next stage: its criteria with holds/reason, and "3/4"-style progress."""
    stages = opportunity.playbook.ordered_stages()
    later = [s for s in stages if s.order > opportunity.stage.order and s.kind != StageKind.ACCOUNT]
    if not later or opportunity.status != "open":
        return {"next_stage": None, "criteria": [], "held": 0, "required": 0}
    nxt = later[0]
    states = criteria_states(opportunity, [nxt])
    required = [s for s in states if s.criterion.required]
    return {
        "next_stage": {"key": nxt.key, "name": localized(nxt, "name")},
        "criteria": [s.as_dict() for s in states],
        "held": sum(1 for s in required if s.holds),
        "required": len(required),
    }


def approvals_waiting_for(user: Any) -> Any:
    """The pending 立项 requests `user` may decide: of the branches they manage, never their own
    (the same rule as `approval_decide`). Sellers get an empty queryset."""
    from loudou.org.access import managed_branch_ids
    from loudou.org.models import AccessLevel
    from loudou.pipeline.models import ApprovalStatus, ProjectApproval

    if user is None or not getattr(user, "is_authenticated", False) or not user.is_active:
        return ProjectApproval.objects.none()
    if user.level == AccessLevel.SELLER:
        return ProjectApproval.objects.none()
    qs = ProjectApproval.objects.filter(status=ApprovalStatus.PENDING).exclude(requested_by=user)
    managed = managed_branch_ids(user)
    if managed is not None:
        qs = qs.filter(opportunity__branch_id__in=managed)
    return qs.select_related(
        "opportunity",
        "opportunity__account",
        "opportunity__owner",
        "opportunity__stage",
        "requested_by",
    ).order_by("requested_at", "id")
