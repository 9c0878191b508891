"""The audit log over the API: the events a manager, an executive or an administrator may read
(`core.selectors.audit_events_visible_to`), newest first, with the audit pages' filters, by
page or by cursor. Sellers get 403; another branch's objects never appear."""

import zoneinfo
from typing import Any, Literal

from django.utils import timezone
from django.utils.translation import gettext as _
from ninja import Query, Router, Schema
from pydantic import Field

from loudou.api.auth import ApiRequest
from loudou.api.pagination import Ordering, Paging, desc, page_or_cursor
from loudou.api.schemas.audit import (
    Action,
    AuditEventCursorPage,
    AuditEventPage,
    ObjectType,
    SubjectKind,
    audit_event_out,
)
from loudou.api.schemas.common import CURSOR, PAGE, PAGE_SIZE, Day, Id, Str200
from loudou.core.audit_words import (
    audit_rows,
)
from loudou.core.errors import ValidationFailed
from loudou.core.selectors import (
    AuditFilters,
    audit_events_about,
    audit_events_visible_to,
    audit_subject_get,
    require_audit_reader,
)

router = Router(tags=["audit log"])

AUDIT_ORDER: Ordering = (desc("at"), desc("id"))


class AuditEventFilters(Schema):
    action: Action | None = Field(default=None, description="Only this action.")
    actor_id: Id | None = Field(default=None, description="Only what this user did.")
    object_type: ObjectType | None = Field(default=None, description="Only objects of this type.")
    subject_kind: SubjectKind | None = Field(
        default=None,
        description="With subject_id: the log of one opportunity (with its 立项 requests, "
        "quotes, activities …) or one account (with its contacts); 404 if you may not see it.",
    )
    subject_id: Id | None = None
    date_from: Day | None = Field(default=None, description="On or after this day (your zone).")
    date_to: Day | None = Field(default=None, description="On or before this day (your zone).")
    q: Str200 | None = Field(
        default=None, description="Text in the object's name (or its deal's or account's)."
    )
    sort: Literal["-at"] = Field(default="-at", description="Newest first.")
    page: int = PAGE
    page_size: int = PAGE_SIZE
    cursor: str | None = CURSOR


def _zone(user: Any) -> Any:
    try:
        return zoneinfo.ZoneInfo(user.time_zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return timezone.get_current_timezone()


@router.get(
    "",
    response=AuditEventPage | AuditEventCursorPage,
    summary="List the audit events you may read",
)
def audit_event_list(request: ApiRequest, filters: Query[AuditEventFilters]) -> Any:
    """Overrides, 立项 decisions, role changes, stage moves and every other recorded write, newest
    first. Managers read the events about their branches' deals, accounts, people and targets;
    executives and administrators read all; sellers are refused (403)."""
    user = request.auth
    require_audit_reader(user)
    if (filters.subject_kind is None) != (filters.subject_id is None):
        raise ValidationFailed(
            _("Give subject_kind and subject_id together."),
            details={"subject_id" if filters.subject_kind else "subject_kind": "required"},
        )
    if filters.subject_kind and filters.subject_id:
        subject = audit_subject_get(user, filters.subject_kind, filters.subject_id)
        events = audit_events_about(user, subject)
    else:
        events = audit_events_visible_to(user)
    wanted = AuditFilters(
        action=filters.action or "",
        actor_id=filters.actor_id,
        object_type=filters.object_type or "",
        date_from=filters.date_from,
        date_to=filters.date_to,
        search=filters.q or "",
    ).clean()
    with timezone.override(_zone(user)):
        events = wanted.apply(events)
    events = events.select_related("actor", "content_type")
    paging = Paging("audit-events", filters.sort, AUDIT_ORDER)
    answer = page_or_cursor(events, filters, paging, lambda event: event)
    answer["results"] = [audit_event_out(row) for row in audit_rows(answer["results"])]
    return answer
