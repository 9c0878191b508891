"""The audit log: a registry of event types and the one function that writes them."""

import datetime as dt
from decimal import Decimal
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models

from loudou.core import clock
from loudou.core.models import AuditEvent

# Every action a service may record. A service that records an unknown action is a bug.
ACTIONS = frozenset(
    {
        "account.create",
        "account.update",
        "account.qualify",
        "contact.create",
        "contact.update",
        "branch.create",
        "branch.update",
        "user.create",
        "user.update",
        "user.role_change",
        "user.preferences",
        "user.password_change",
        "target.set",
        "playbook.load",
        "playbook.probabilities_accept",
        "catalog.save",
        "catalog.delete",
        "opportunity.create",
        "opportunity.import",
        "opportunity.update",
        "opportunity.reassign",
        "opportunity.advance",
        "opportunity.regress",
        "opportunity.win",
        "opportunity.lose",
        "opportunity.reopen",
        "gate.override",
        "evidence.record",
        "approval.request",
        "approval.approve",
        "approval.reject",
        "approval.withdraw",
        "team.add",
        "team.remove",
        "competitor.add",
        "competitor.update",
        "keydate.set",
        "objection.raise",
        "objection.answer",
        "quote.create",
        "quote.submit",
        "activity.plan",
        "activity.complete",
        "token.create",
        "token.revoke",
    }
)


def snapshot(obj: models.Model, fields: list[str]) -> dict[str, Any]:
    """The values of `fields` on `obj`, JSON-ready (foreign keys as ids)."""
    out: dict[str, Any] = {}
    for name in fields:
        field = obj._meta.get_field(name)
        value = getattr(obj, getattr(field, "attname", name))
        if isinstance(value, Decimal):
            value = str(value)
        elif isinstance(value, dt.date | dt.datetime):
            value = value.isoformat()
        out[name] = value
    return out


def audit(
    action: str,
    obj: models.Model,
    *,
    actor: Any,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    reason: str = "",
) -> AuditEvent:
    """Record that `actor` did `action` to `obj`; call inside the service's transaction."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    return AuditEvent.objects.create(
        at=clock.now(),
        actor=actor if getattr(actor, "pk", None) else None,
        action=action,
        content_type=ContentType.objects.get_for_model(type(obj)),
        object_id=str(obj.pk),
        object_repr=str(obj)[:300],
        before=before,
        after=after,
        reason=reason,
    )
