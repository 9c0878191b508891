"""The funnel page: target accounts, then the open deals in each stage of a playbook, for a
branch or a person, as of today or any past date — the figures of `loudou funnel`, as a plotly
funnel and a table; a click on a stage lists its deals at that date, and a second table gives
the honest (censoring-aware) conversion per stage."""

import contextlib
import datetime as dt
import itertools
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from loudou.analytics.conversion import conversion_by_stage
from loudou.analytics.dashboard import stage_deals_at
from loudou.analytics.selectors import funnel_snapshot
from loudou.core import clock
from loudou.core.errors import NotFound
from loudou.org.access import branch_subtree_ids
from loudou.pipeline.board import filter_choices
from loudou.playbooks.models import Playbook, StageKind
from loudou.playbooks.selectors import playbook_get
from loudou.web.templatetags.loudou import money_short
from loudou.web.views.base import date_param, int_param, login_required
from loudou.web.views.exports import ALL, download, export_format, stage_deals_table

STAGE_DEALS_LIMIT = 200
COHORT_DAYS = 365


@dataclass
class FunnelQuery:
    """What the funnel is asked about: playbook, branch, owner and as-of date (None = now),
    each checked against what the user may choose."""

    playbook: Playbook
    branch_id: int | None
    owner_id: int | None
    as_of: dt.date | None
    choices: dict[str, Any]
    industry_id: int | None = None

    @property
    def branch_ids(self) -> set[int] | None:
        return None if self.branch_id is None else branch_subtree_ids(self.branch_id)

    def filters(self) -> dict[str, Any]:
        """The filters as keyword arguments of the analytics selectors."""
        return {
            "branch_ids": self.branch_ids,
            "owner_id": self.owner_id,
            "industry_id": self.industry_id,
        }

    @property
    def day(self) -> dt.date:
        return self.as_of or clock.today()

    def params(self, **extra: Any) -> str:
        """The query string that asks the same question (plus `extra`)."""
        values: dict[str, Any] = {"playbook": self.playbook.key}
        if self.branch_id:
            values["branch"] = self.branch_id
        if self.owner_id:
            values["owner"] = self.owner_id
        if self.industry_id:
            values["industry"] = self.industry_id
        if self.as_of:
            values["as_of"] = self.as_of.isoformat()
        values.update(extra)
        return urlencode(values)


def _query(request: HttpRequest) -> FunnelQuery:
    """The filters from the query string; a branch or owner the user may not pick is ignored,
    a future date means today."""
    try:
        playbook = playbook_get(request.GET.get("playbook") or None)
    except NotFound:
        playbook = playbook_get(None)
    choices = filter_choices(request.user)
    branch_id = int_param(request.GET.get("branch"))
    if branch_id not in {b.pk for b in choices["branches"]}:
        branch_id = None
    owner_id = int_param(request.GET.get("owner"))
    if owner_id not in {u.pk for u in choices["owners"]}:
        owner_id = None
    industry_id = int_param(request.GET.get("industry"))
    if industry_id not in {i.pk for i in choices["industries"]}:
        industry_id = None
    as_of = date_param(request.GET.get("as_of") or "")
    if as_of is not None and as_of >= clock.today():
        as_of = None
    return FunnelQuery(playbook, branch_id, owner_id, as_of, choices, industry_id)


def _steps(snapshot: dict[str, Any]) -> list[dict[str, Any]]:
    """Target accounts, then each open stage: count, amount, weighted amount and the count as a
    share of the step above (the funnel's shape at that moment)."""
    steps: list[dict[str, Any]] = [
        {
            "key": "",
            "name": _("Target accounts"),
            "count": snapshot["target_accounts"],
            "amount": None,
            "weighted_amount": None,
        }
    ]
    for stage in snapshot["stages"]:
        steps.append(
            {
                **stage,
                "amount": Decimal(stage["amount"]),
                "weighted_amount": Decimal(stage["weighted_amount"]),
            }
        )
    for previous, step in itertools.pairwise(steps):
        step["share"] = (
            round(100 * step["count"] / previous["count"]) if previous["count"] else None
        )
    steps[0]["share"] = None
    return steps


def _chart_data(query: FunnelQuery, steps: list[dict[str, Any]]) -> dict[str, Any]:
    """What charts.js draws: labels in the user's language, counts, hover texts, and the URL
    that lists a stage's deals (target accounts are not clickable)."""
    deals_url = reverse("web:funnel-deals")
    return {
        "labels": [s["name"] for s in steps],
        "counts": [s["count"] for s in steps],
        "hover": [
            (
                _("%(n)s target accounts") % {"n": s["count"]}
                if s["amount"] is None
                else _("%(n)s deals · %(amount)s · weighted %(weighted)s")
                % {
                    "n": s["count"],
                    "amount": money_short(s["amount"]),
                    "weighted": money_short(s["weighted_amount"]),
                }
            )
            for s in steps
        ],
        "urls": [f"{deals_url}?{query.params(stage=s['key'])}" if s["key"] else "" for s in steps],
        "text": [
            str(s["count"]) if s["share"] is None else f"{s['count']} · {s['share']}%"
            for s in steps
        ],
    }


@login_required
def funnel(request: HttpRequest) -> HttpResponse:
    """The funnel of a playbook (for a branch or a person) as of a date, chart and table."""
    if export_format(request) and request.GET.get("stage"):
        return funnel_deals(request)  # the stage's deals as a file
    query = _query(request)
    snapshot = funnel_snapshot(
        request.user,
        query.playbook,
        as_of=query.as_of,
        **query.filters(),
    )
    steps = _steps(snapshot)
    context: dict[str, Any] = {
        "query": query,
        "snapshot": snapshot,
        "steps": steps,
        "open_count": sum(s["count"] for s in steps[1:]),
        "open_amount": sum((s["amount"] for s in steps[1:]), Decimal(0)),
        "open_weighted": sum((s["weighted_amount"] for s in steps[1:]), Decimal(0)),
        "won": {**snapshot["won"], "amount": Decimal(snapshot["won"]["amount"])},
        "lost": {**snapshot["lost"], "amount": Decimal(snapshot["lost"]["amount"])},
        "data": _chart_data(query, steps),
        "playbooks": Playbook.objects.filter(is_current=True).order_by("key"),
        "today": clock.today(),
    }
    stage_key = request.GET.get("stage", "")
    if stage_key:
        # Without JavaScript the table's stage links reload the page with the list below; an
        # unknown stage there just shows no list.
        with contextlib.suppress(NotFound):
            context.update(_stage_context(request, query, stage_key))
    return render(request, "web/funnel/funnel.html", context)


def _stage_context(
    request: HttpRequest, query: FunnelQuery, stage_key: str, limit: int | None = None
) -> dict[str, Any]:
    stage = next(
        (
            s
            for s in query.playbook.ordered_stages()
            if s.key == stage_key and s.kind == StageKind.OPEN
        ),
        None,
    )
    if stage is None:
        raise NotFound(_("No such stage in this playbook."))
    count, deals = stage_deals_at(
        request.user,
        query.playbook,
        stage.key,
        as_of=query.as_of,
        **query.filters(),
        limit=limit or STAGE_DEALS_LIMIT,
    )
    return {
        "stage": stage,
        "stage_count": count,
        "stage_deals": deals,
        "query": query,
        "export_query": query.params(stage=stage.key),
    }


@login_required
def funnel_deals(request: HttpRequest) -> HttpResponse:
    """The deals of one stage at the funnel's date (htmx fragment under the chart); with
    `?export=csv|xlsx` every one of them (not only the largest shown) as a file."""
    query = _query(request)
    if fmt := export_format(request):
        found = _stage_context(request, query, request.GET.get("stage", ""), limit=ALL)
        return download(stage_deals_table(found["stage"], found["stage_deals"], query.as_of), fmt)
    context = _stage_context(request, query, request.GET.get("stage", ""))
    return render(request, "web/funnel/_deals.html", context)


def _percent(rate: float | None) -> str:
    return "—" if rate is None else f"{100 * rate:.1f}%"


def _percents(row: dict[str, Any]) -> dict[str, Any]:
    """A conversion row with its rates (fractions) also as "62.5%" texts."""
    shown = {f"{k}_pct": _percent(row[k]) for k in ("naive", "closed_only", "censored_estimate")}
    interval = row.get("interval")
    shown["interval_pct"] = f"{_percent(interval[0])} – {_percent(interval[1])}" if interval else ""
    return {**row, **shown}


@login_required
def funnel_conversion(request: HttpRequest) -> HttpResponse:
    """Conversion per stage of the deals created in the year up to the funnel's date, with the
    naive, closed-only and censoring-aware rates (htmx fragment, loaded after the page)."""
    query = _query(request)
    date_to = query.day + dt.timedelta(days=1)
    date_from = date_to - dt.timedelta(days=COHORT_DAYS)
    data = conversion_by_stage(
        request.user,
        query.playbook,
        date_from=date_from,
        date_to=date_to,
        **query.filters(),
    )
    names = {s.key: s for s in query.playbook.ordered_stages()}
    rows = [{**_percents(row), "stage": names.get(row["key"])} for row in data["stages"]]
    return render(
        request,
        "web/funnel/_conversion.html",
        {
            "rows": rows,
            "overall": _percents(data["overall"]),
            "date_from": date_from,
            "date_last": query.day,
        },
    )


urlpatterns = [
    path("funnel/", funnel, name="funnel"),
    path("funnel/deals/", funnel_deals, name="funnel-deals"),
    path("funnel/conversion/", funnel_conversion, name="funnel-conversion"),
]
