"""The board (one column per stage, drag to move) and the opportunity list beside it."""

from typing import Any

from django.core.paginator import Paginator
from django.db.models import F
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path

from loudou.core.errors import NotFound
from loudou.pipeline.board import (
    CARD_RELATED,
    BoardFilters,
    board_columns,
    board_opportunities,
    column_cards,
    filter_choices,
    make_cards,
    stall_thresholds,
)
from loudou.pipeline.models import Opportunity, Status
from loudou.playbooks.models import Playbook
from loudou.playbooks.selectors import playbook_get
from loudou.web.views.base import int_param, login_required
from loudou.web.views.exports import download, export_format, opportunities_table

PER_COLUMN = 20
PER_PAGE = 50

SORTS = {
    "name": "name",
    "account": "account__name",
    "stage": "stage__order",
    "amount": "amount",
    "close": "close_date",
    "owner": "owner__username",
    "age": "stage_entered_at",
}


def _filters(request: HttpRequest) -> BoardFilters:
    return BoardFilters(
        owner_id=int_param(request.GET.get("owner")),
        branch_id=int_param(request.GET.get("branch")),
        industry_id=int_param(request.GET.get("industry")),
        quarter=request.GET.get("quarter", ""),
        search=request.GET.get("q", ""),
        source=request.GET.get("source", "")[:120],
    )


def _playbook(request: HttpRequest) -> Playbook:
    try:
        return playbook_get(request.GET.get("playbook") or None)
    except NotFound:
        return playbook_get(None)


def _context(request: HttpRequest, playbook: Playbook, filters: BoardFilters) -> dict[str, Any]:
    query = request.GET.copy()
    query.pop("page", None)
    query.pop("sort", None)
    return {
        "playbook": playbook,
        "playbooks": Playbook.objects.filter(is_current=True).order_by("key"),
        "filters": filters,
        "choices": filter_choices(request.user),
        "query": query.urlencode(),
    }


@login_required
def board(request: HttpRequest) -> HttpResponse:
    """The open deals of a playbook, one column per stage, filtered as asked."""
    playbook, filters = _playbook(request), _filters(request)
    if fmt := export_format(request):
        qs = board_opportunities(request.user, playbook, filters).select_related(*CARD_RELATED)
        qs = qs.order_by("stage__order", "close_date", "id")  # the columns, left to right
        return download(opportunities_table(request.user, qs, playbook), fmt)
    columns = board_columns(request.user, playbook, filters, per_column=PER_COLUMN)
    context = _context(request, playbook, filters)
    context.update(
        columns=columns,
        total_count=sum(c.count for c in columns),
        total_amount=sum(c.amount for c in columns),
        total_weighted=sum(c.weighted for c in columns),
    )
    return render(request, "web/board/board.html", context)


@login_required
def board_more(request: HttpRequest, stage: str) -> HttpResponse:
    """The next cards of one column, appended by htmx ("show more")."""
    playbook, filters = _playbook(request), _filters(request)
    offset = max(int_param(request.GET.get("offset")) or 0, 0)
    cards = column_cards(request.user, playbook, filters, stage, offset=offset, limit=PER_COLUMN)
    total = int_param(request.GET.get("total")) or 0
    return render(
        request,
        "web/board/more.html",
        {
            "cards": cards,
            "stage": stage,
            "next_offset": offset + len(cards),
            "total": total,
            "remaining": max(total - offset - len(cards), 0),
            "query": request.GET.urlencode(),
            "playbook": playbook,
        },
    )


@login_required
def opportunity_list(request: HttpRequest) -> HttpResponse:
    """Every deal the user may see, as a sortable table: open by default, or won, lost, all."""
    playbook, filters = _playbook(request), _filters(request)
    status = request.GET.get("status", Status.OPEN)
    qs = filters.apply(
        Opportunity.objects.visible_to(request.user).filter(playbook__key=playbook.key)
    )
    if status in Status.values:
        qs = qs.filter(status=status)
    sort = request.GET.get("sort", "close")
    field = SORTS.get(sort.lstrip("-"), "close_date")
    ordering = F(field).desc(nulls_last=True) if sort.startswith("-") else F(field).asc()
    qs = qs.select_related(*CARD_RELATED).order_by(ordering, "id")
    if fmt := export_format(request):
        return download(opportunities_table(request.user, qs, playbook), fmt)
    page = Paginator(qs, PER_PAGE).get_page(request.GET.get("page"))
    rows = make_cards(list(page.object_list), playbook, stall_thresholds(request.user, playbook))
    context = _context(request, playbook, filters)
    context.update(page=page, rows=rows, sort=sort, status=status, statuses=Status.choices)
    return render(request, "web/board/list.html", context)


urlpatterns = [
    path("board/", board, name="board"),
    path("board/<slug:stage>/more/", board_more, name="board-more"),
    path("opportunities/", opportunity_list, name="opportunity-list"),
]
