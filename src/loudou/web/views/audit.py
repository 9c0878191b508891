"""The audit log pages: every recorded write a manager may read (overrides, 立项 decisions, role
changes, stage moves …), filterable and exportable, and the same log for one opportunity or
one account.

Managers, executives and administrators read it (`core.selectors.audit_events_visible_to`);
sellers get 403 on every URL here, as on /import/."""

from typing import Any
from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils.translation import gettext as _

from loudou.core.audit_words import (
    action_label,
    audit_rows,
    changes_text,
)
from loudou.core.selectors import (
    ACTION_GROUPS,
    OBJECT_TYPES,
    AuditFilters,
    audit_actors,
    audit_events_about,
    audit_events_visible_to,
    audit_subject_get,
    require_audit_reader,
)
from loudou.interop.exports import Table
from loudou.web.views.base import acting_user, date_param, int_param, login_required
from loudou.web.views.exports import BATCH, download, export_format

PER_PAGE = 50
# The events' own columns a page needs; `before`/`after` are read for the diff.
RELATED = ("actor", "content_type")


def _filters(request: HttpRequest, *, whole_log: bool) -> AuditFilters:
    """The filters in the URL (an object's page has no object type or name search)."""
    get = request.GET
    return AuditFilters(
        action=get.get("action", ""),
        actor_id=int_param(get.get("actor")),
        object_type=get.get("type", "") if whole_log else "",
        date_from=date_param(get.get("from", "")),
        date_to=date_param(get.get("to", "")),
        search=get.get("q", "") if whole_log else "",
    ).clean()


def _query(filters: AuditFilters) -> str:
    """The filters as a query string, for the pager and the export links."""
    pairs = {
        "action": filters.action,
        "actor": filters.actor_id or "",
        "type": filters.object_type,
        "from": filters.date_from.isoformat() if filters.date_from else "",
        "to": filters.date_to.isoformat() if filters.date_to else "",
        "q": filters.search,
    }
    return urlencode({k: v for k, v in pairs.items() if v})


def newest_first_batches(events: Any, size: int = BATCH) -> Any:
    """`events` (sorted newest first) in slices of `size`, each read after the last row of the
    one before (keyset): every slice costs the same, where an offset would grow with the log."""
    batch = list(events[:size])
    while batch:
        yield batch
        last = batch[-1]
        batch = list(events.filter(Q(at__lt=last.at) | Q(at=last.at, id__lt=last.pk))[:size])


def audit_table(events: Any, title: str) -> Table:
    """Every event of `events` (sorted, already visible to the reader) as an export."""
    columns = [
        ("id", _("ID")),
        ("at", _("When")),
        ("actor", _("Who")),
        ("action", _("Action")),
        ("action_code", _("Action code")),
        ("object_type", _("Object type")),
        ("object", _("Object")),
        ("object_id", _("Object ID")),
        ("subject", _("Opportunity or account")),
        ("reason", _("Reason")),
        ("changes", _("Changes")),
    ]

    def rows() -> Any:
        for batch in newest_first_batches(events):
            for row in audit_rows(batch):
                e = row.event
                yield [
                    e.pk,
                    e.at,
                    str(e.actor) if e.actor else _("System"),
                    row.action_label,
                    e.action,
                    row.object_type_label,
                    e.object_repr,
                    e.object_id,
                    row.subject[2] if row.subject else "",
                    e.reason,
                    changes_text(row),
                ]

    return Table(columns, rows(), title=title)


def _page(
    request: HttpRequest,
    events: Any,
    filters: AuditFilters,
    context: dict[str, Any],
    title: str,
) -> HttpResponse:
    """The table of `events` (filtered), or its export."""
    matching = filters.apply(events).order_by("-at", "-id")
    if fmt := export_format(request):
        # Actors and types are attached a batch at a time (core.audit_words.audit_rows).
        return download(audit_table(matching, title), fmt)
    matching = matching.select_related(*RELATED)
    page = Paginator(matching, PER_PAGE).get_page(request.GET.get("page"))
    query = _query(filters)
    context.update(
        title=title,
        page=page,
        rows=audit_rows(page.object_list),
        filters=filters,
        query=query,
        action_groups=[
            (label, [(a, action_label(a)) for a in actions]) for label, actions in ACTION_GROUPS
        ],
        object_types=[(key, label) for key, (label, _model) in OBJECT_TYPES.items()],
        actors=audit_actors(events),
    )
    return render(request, "web/audit.html", context)


@login_required
def audit_log(request: HttpRequest) -> HttpResponse:
    """The whole audit log the reader may read, newest first, 50 a page, with filters kept in
    the URL and the same rows as CSV or Excel (`?export=csv|xlsx`)."""
    user = acting_user(request)
    require_audit_reader(user)
    filters = _filters(request, whole_log=True)
    context: dict[str, Any] = {"subject": None, "whole_log": True}
    return _page(request, audit_events_visible_to(user), filters, context, _("Audit log"))


@login_required
def audit_object(request: HttpRequest, kind: str, pk: int) -> HttpResponse:
    """The audit log of one opportunity (with its 立项 requests, quotes, activities …) or one
    account (with its contacts); 404 when the reader may not see it."""
    user = acting_user(request)
    subject = audit_subject_get(user, kind, pk)
    filters = _filters(request, whole_log=False)
    context: dict[str, Any] = {"subject": subject, "kind": kind, "whole_log": False}
    title = _("Audit log of %(name)s") % {"name": subject.name}
    return _page(request, audit_events_about(user, subject), filters, context, title)


urlpatterns = [
    path("audit/", audit_log, name="audit"),
    path("audit/<str:kind>/<int:pk>/", audit_object, name="audit-object"),
]
