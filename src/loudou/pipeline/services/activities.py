"""Activities: plan a call, visit, presentation, demo, meeting or task; mark it done."""

import datetime as dt
from typing import Any

from django.db import transaction
from django.utils.translation import gettext as _

from loudou.core import clock
from loudou.core.audit import audit, snapshot
from loudou.core.errors import NotFound, ValidationFailed
from loudou.pipeline.models import Activity, ActivityKind, Opportunity
from loudou.pipeline.services._base import lock, require_editor


@transaction.atomic
def activity_plan(
    *,
    opportunity: Opportunity | int,
    actor: Any,
    kind: str,
    subject: str,
    due_on: dt.date,
    owner: Any = None,
    notes: str = "",
) -> Activity:
    """Plan a piece of work on the opportunity for `owner` (default: the actor)."""
    opp = lock(opportunity, actor, None)
    require_editor(opp, actor)
    if kind not in ActivityKind.values:
        raise ValidationFailed(
            _("Unknown activity kind “%(k)s”.") % {"k": kind}, details={"kind": "invalid"}
        )
    if not subject.strip():
        raise ValidationFailed(_("An activity needs a subject."), details={"subject": "required"})
    if not isinstance(due_on, dt.date):
        raise ValidationFailed(_("An activity needs a due date."), details={"due_on": "required"})
    row = Activity.objects.create(
        opportunity=opp,
        kind=kind,
        subject=subject.strip()[:200],
        notes=notes.strip(),
        owner=owner or actor,
        due_on=due_on,
        created_at=clock.now(),
    )
    audit(
        "activity.plan",
        row,
        actor=actor,
        after=snapshot(row, ["kind", "subject", "due_on", "owner"]),
    )
    return row


@transaction.atomic
def activity_complete(*, activity: Activity | int, actor: Any, outcome: str = "") -> Activity:
    """Mark an activity done, with its outcome."""
    pk = activity if isinstance(activity, int) else activity.pk
    visible = Activity.objects.visible_to(actor).filter(pk=pk).exists()
    row = (
        Activity.objects.select_for_update(of=("self",)).filter(pk=pk).first() if visible else None
    )
    if row is None:
        raise NotFound(_("No such activity."))
    if row.owner_id != actor.pk:
        # Whoever the activity is planned for completes it; otherwise the deal's editors do
        # (executives read deals, they do not work them).
        require_editor(row.opportunity, actor)
    if row.done_at is not None:
        raise ValidationFailed(_("This activity is already done."))
    row.done_at = clock.now()
    row.outcome = outcome.strip()
    row.save(update_fields=["done_at", "outcome"])
    audit(
        "activity.complete",
        row,
        actor=actor,
        after={"done_at": row.done_at.isoformat(), "outcome": row.outcome},
    )
    return row
