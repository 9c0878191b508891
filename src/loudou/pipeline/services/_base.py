"""What every opportunity service shares: finding the row under lock, checking the version and
the actor's right, saving with a version bump, and writing history and audit."""

from typing import Any

from django.utils.translation import gettext as _

from loudou.core import clock
from loudou.core.audit import audit
from loudou.core.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from loudou.pipeline.models import Opportunity, OpportunityHistory, Status

TRACKED = (
    "stage",
    "status",
    "amount",
    "currency",
    "close_date",
    "probability",
    "owner",
    "forecast_category",
)
AUDITED = (
    "name",
    "need",
    "amount",
    "currency",
    "budget",
    "close_date",
    "owner",
    "stage",
    "status",
    "probability_override",
    "source",
    "lost_reason",
    "lost_to",
    "closed_on",
    "version",
)


def tracked_values(opp: Opportunity) -> dict[str, Any]:
    """The tracked fields (DESIGN.md rule 3) as they are now on the instance."""
    return {
        "stage": opp.stage_id,
        "status": opp.status,
        "amount": opp.amount,
        "currency": opp.currency,
        "close_date": opp.close_date,
        "probability": opp.probability,
        "owner": opp.owner_id,
        "forecast_category": opp.forecast_category,
    }


def audit_values(opp: Opportunity) -> dict[str, Any]:
    out = {}
    for name in AUDITED:
        field = opp._meta.get_field(name)
        value = getattr(opp, getattr(field, "attname", name))
        out[name] = value if isinstance(value, int | str | bool | type(None)) else str(value)
    return out


def lock(opportunity: Opportunity | int, actor: Any, expected_version: int | None) -> Opportunity:
    """The opportunity, locked for this transaction, if `actor` may see it and it has not changed
    since `expected_version`."""
    pk = opportunity if isinstance(opportunity, int) else opportunity.pk
    # The lock on the row alone, then the read, then the visibility rule on the loaded row. On PostgreSQL a FOR UPDATE
    # that waited re-checks its WHERE clause and joins against the new row version with the
    # *old* joined rows, so locking with the visibility rule or select_related would turn a
    # concurrent writer into a false "not found"; the read after the lock sees the new version.
    if not list(Opportunity.objects.select_for_update().filter(pk=pk).values_list("pk", flat=True)):
        raise NotFound(_("No such opportunity."))
    opp = Opportunity.objects.select_related("stage", "playbook", "account").get(pk=pk)
    if not Opportunity.objects.can_see(actor, opp):
        raise NotFound(_("No such opportunity."))
    if expected_version is not None and opp.version != expected_version:
        raise Conflict(
            _(
                "Someone changed “%(name)s” since you opened it (version %(yours)s, now %(now)s). "
                "Reload it and try again; nothing was changed."
            )
            % {"name": opp.name, "yours": expected_version, "now": opp.version},
            current_version=opp.version,
        )
    return opp


def require_open(opp: Opportunity) -> None:
    if opp.status != Status.OPEN:
        raise ValidationFailed(
            _("“%(name)s” is %(status)s; reopen it first.")
            % {"name": opp.name, "status": opp.get_status_display()},
            details={"status": opp.status},
        )


def require_editor(opp: Opportunity, actor: Any) -> None:
    """Executives see everything but sell nothing: only sellers, team members and managers edit."""
    if actor.level == "executive" and opp.owner_id != actor.pk:
        raise PermissionDenied(
            _("Executives read opportunities; their owners and managers edit them.")
        )


def commit(
    opp: Opportunity,
    *,
    actor: Any,
    action: str,
    before_tracked: dict[str, Any],
    before_audit: dict[str, Any],
    reason: str = "",
) -> Opportunity:
    """Save the changed opportunity with version + 1; write a history row if a tracked field
    changed, and the audit event."""
    old_version = opp.version
    now = clock.now()
    after_tracked = tracked_values(opp)
    changed = [k for k in TRACKED if after_tracked[k] != before_tracked[k]]
    if "stage" in changed or ("status" in changed and opp.status == Status.OPEN):
        opp.stage_entered_at = now
    opp.version = old_version + 1
    opp.updated_at = now
    # The lock already serialises writers; the version filter makes a lost update impossible
    # even if a caller forgot to lock.
    updated = Opportunity.objects.filter(pk=opp.pk, version=old_version).update(version=opp.version)
    if updated != 1:
        raise Conflict(
            _("The opportunity changed while you were saving it."), current_version=old_version + 1
        )
    opp.save()
    if changed:
        history_write(opp, actor=actor, action=action, changed=changed, reason=reason, at=now)
    audit(
        f"opportunity.{action}" if "." not in action else action,
        opp,
        actor=actor,
        before=before_audit,
        after=audit_values(opp),
        reason=reason,
    )
    return opp


def history_write(
    opp: Opportunity, *, actor: Any, action: str, changed: list[str], reason: str, at: Any
) -> OpportunityHistory:
    """Append the opportunity's tracked fields as they are from `at` on, and bring the stays
    and the state spans (the analytics caches derived from history) up to it in the same
    transaction."""
    from loudou.analytics.spans import span_apply
    from loudou.analytics.stays import stay_apply

    stay_apply(opportunity_id=opp.pk, stage=opp.stage, status=opp.status, at=at)
    span_apply(opp, at=at)
    return OpportunityHistory.objects.create(
        opportunity=opp,
        valid_from=at,
        stage_id=opp.stage_id,
        status=opp.status,
        amount=opp.amount,
        currency=opp.currency,
        close_date=opp.close_date,
        probability=opp.probability,
        owner_id=opp.owner_id,
        forecast_category=opp.forecast_category,
        actor=actor if getattr(actor, "pk", None) else None,
        action=action,
        changed=changed,
        reason=reason,
    )
