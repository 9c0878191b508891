"""The audit log over the API: one event as a reader sees it, and its list's pages."""

from typing import Any, Literal

from ninja import Schema
from pydantic import Field

from loudou.api.schemas.common import CursorMeta, PageMeta, UserRef, user_ref
from loudou.core.audit_words import (
    AuditRow,
    changes_text,
)

# Written out for the type checker and the OpenAPI document; a test holds them equal to
# core.audit.ACTIONS and core.selectors.OBJECT_TYPES.
Action = Literal[
    "account.create", "account.qualify", "account.update", "activity.complete", "activity.plan",
    "approval.approve", "approval.reject", "approval.request", "approval.withdraw",
    "branch.create", "branch.update", "catalog.delete", "catalog.save", "competitor.add",
    "competitor.update", "contact.create", "contact.update", "evidence.record", "gate.override",
    "keydate.set", "objection.answer", "objection.raise", "opportunity.advance",
    "opportunity.create", "opportunity.import", "opportunity.lose", "opportunity.reassign",
    "opportunity.regress", "opportunity.reopen", "opportunity.update", "opportunity.win",
    "playbook.load", "playbook.probabilities_accept", "quote.create", "quote.submit",
    "target.set", "team.add", "team.remove", "token.create", "token.revoke", "user.create",
    "user.password_change", "user.preferences", "user.role_change", "user.update",
]  # fmt: skip
ObjectType = Literal[
    "opportunity", "approval", "quote", "activity", "objection", "competitor", "account",
    "contact", "user", "branch", "target", "playbook", "token", "catalogue",
]  # fmt: skip
SubjectKind = Literal["opportunity", "account"]


class AuditChangeOut(Schema):
    field: str = Field(description="The recorded field (stage, amount, owner …).")
    label: str = Field(description="The field in the caller's language.")
    before: str | None = Field(description="The value before, in words; null on a creation.")
    after: str = Field(description="The value after, in words (people, stages and criteria named).")


class AuditSubjectOut(Schema):
    kind: SubjectKind
    id: int
    name: str


class AuditEventOut(Schema):
    id: int
    at: str = Field(description="When, ISO 8601 with the offset (UTC).")
    actor: UserRef | None = Field(description="Who; null for the system (an import, a command).")
    action: Action
    action_label: str = Field(description="The action in the caller's language.")
    object_type: str = Field(description="opportunity, approval, quote, account, user …")
    object_type_label: str
    object_id: str
    object_repr: str = Field(description="The object's name when the event was recorded.")
    subject: AuditSubjectOut | None = Field(
        description="The opportunity or account the event concerns (the object itself or the "
        "one it hangs off), when it still exists."
    )
    reason: str = Field(description="The reason given (an override's, a decision's comment …).")
    changes: list[AuditChangeOut] = Field(description="The fields the event changed, in words.")
    changes_text: str = Field(description="The same changes on one line.")
    before: dict[str, Any] | None = Field(description="The recorded values before, as stored.")
    after: dict[str, Any] | None = Field(description="The recorded values after, as stored.")


class AuditEventPage(PageMeta):
    results: list[AuditEventOut]


class AuditEventCursorPage(CursorMeta):
    results: list[AuditEventOut]


def audit_event_out(row: AuditRow) -> dict[str, Any]:
    """One event, put into words by `core.audit_words.audit_rows`, as the API answers it."""
    e = row.event
    return {
        "id": e.pk,
        "at": e.at.isoformat(),
        "actor": user_ref(e.actor),
        "action": e.action,
        "action_label": row.action_label,
        "object_type": row.object_type,
        "object_type_label": row.object_type_label,
        "object_id": e.object_id,
        "object_repr": e.object_repr,
        "subject": (
            {"kind": row.subject[0], "id": row.subject[1], "name": row.subject[2]}
            if row.subject
            else None
        ),
        "reason": e.reason,
        "changes": [
            {
                "field": c.field,
                "label": c.label,
                "before": None if c.created else c.before,
                "after": c.after,
            }
            for c in row.changes
        ],
        "changes_text": changes_text(row),
        "before": e.before if isinstance(e.before, dict) else None,
        "after": e.after if isinstance(e.after, dict) else None,
    }
