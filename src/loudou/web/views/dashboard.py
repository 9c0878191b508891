"""My dashboard: the signed-in user's pipeline by stage and what each deal needs next, overdue
activities, coming key dates, stalled deals, approvals waiting and the month's and quarter's
target against won and weighted pipeline. Managers see their branches (or, by a switch, their
own deals)."""

from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path

from loudou.analytics.dashboard import (
    BRANCH,
    KEY_DATE_DAYS,
    MINE,
    approvals_for,
    coming_key_dates,
    current_periods,
    dashboard_scope,
    overdue_activities,
    pipeline_by_stage,
    stalled_deals,
    target_progress,
)
from loudou.core import clock
from loudou.core.errors import NotFound
from loudou.playbooks.models import Playbook
from loudou.playbooks.selectors import playbook_get
from loudou.web.views.base import login_required


def _playbook(request: HttpRequest) -> Playbook:
    """The playbook asked for, else the default one (an unknown key is not an error here)."""
    try:
        return playbook_get(request.GET.get("playbook") or None)
    except NotFound:
        return playbook_get(None)


def _board_query(scope: Any) -> str:
    """The board's query string that shows the same deals as the dashboard."""
    filters = scope.board_filters
    parts = [f"playbook={scope.playbook.key}"]
    if filters.owner_id:
        parts.append(f"owner={filters.owner_id}")
    if filters.branch_id:
        parts.append(f"branch={filters.branch_id}")
    return "&".join(parts)


@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """The morning view: KPI tiles, then the lists, each item linking to its deal."""
    playbook = _playbook(request)
    scope = dashboard_scope(request.user, playbook, request.GET.get("view"))
    stages = pipeline_by_stage(scope)
    activities_count, activities = overdue_activities(scope)
    key_dates_count, key_dates = coming_key_dates(scope)
    approvals_count, approvals = approvals_for(request.user)
    month, quarter = current_periods(clock.today())
    playbooks = list(Playbook.objects.filter(is_current=True).order_by("key"))
    context = {
        "scope": scope,
        "mine": MINE,
        "branch": BRANCH,
        "playbook": playbook,
        "playbooks": playbooks,
        "stages": stages,
        "open_count": sum(g.column.count for g in stages),
        "open_amount": sum(g.column.amount for g in stages),
        "open_weighted": sum(g.column.weighted for g in stages),
        "activities": activities,
        "activities_count": activities_count,
        "key_dates": key_dates,
        "key_dates_count": key_dates_count,
        "key_date_days": KEY_DATE_DAYS,
        "stalled": stalled_deals(scope),
        "approvals": approvals,
        "approvals_count": approvals_count,
        "is_manager": scope.can_switch,
        "periods": [
            ("month", target_progress(scope, month)),
            ("quarter", target_progress(scope, quarter)),
        ],
        "board_query": _board_query(scope),
        "today": clock.today(),
    }
    return render(request, "web/dashboard.html", context)


urlpatterns = [path("", dashboard, name="dashboard")]
