"""The analytics pages a sales director steers by: conversion per stage (naive, closed-only and
censoring-aware side by side), time in stage, stalled deals and the pipeline flow (waterfall);
and what the forecast page (`web.views.forecast`: forecast, targets, reverse funnel) shares with
them: the scope from the query string, the page frame, the money axis.

Each page calls the selector its CLI command calls, with the same arguments, so every figure
equals `loudou <command> --json` for the same scope (the user's visibility, playbook, branch and
owner). Charts are plotly, served by the app; their data comes from json_script elements."""

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import path
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from loudou.analytics.conversion import conversion_by_stage
from loudou.analytics.flow import flow_balances, pipeline_flow
from loudou.analytics.forecast import parse_period
from loudou.analytics.scope import Scope
from loudou.analytics.velocity import stalled, velocity
from loudou.core import clock
from loudou.core.errors import LoudouError, NotFound
from loudou.core.i18n import is_chinese, localized
from loudou.org.access import branch_subtree_ids
from loudou.org.models import User
from loudou.pipeline.board import filter_choices
from loudou.playbooks.models import Playbook, Stage, StageKind
from loudou.playbooks.selectors import playbook_get
from loudou.web.templatetags.loudou import money, money_short
from loudou.web.views.base import acting_user, date_param, int_param, login_required
from loudou.web.views.exports import download, export_format, stalled_table


@dataclass
class AnalyticsQuery:
    """What an analytics page is asked about: a playbook, and a branch (with the branches below
    it) and an owner the user may choose; plus the page's own fields as the user wrote them.
    Values the user may not use or that make no sense are dropped and named in `problems`."""

    user: Any
    playbook: Playbook
    branch_id: int | None
    owner_id: int | None
    choices: dict[str, Any]
    problems: list[str] = field(default_factory=list)
    industry_id: int | None = None
    fields: dict[str, str] = field(default_factory=dict)
    _subtrees: dict[int, set[int]] = field(default_factory=dict, repr=False)

    @property
    def branch_ids(self) -> set[int] | None:
        """The chosen branch and the branches below it (read once a request)."""
        if self.branch_id is None:
            return None
        if self.branch_id not in self._subtrees:
            self._subtrees[self.branch_id] = branch_subtree_ids(self.branch_id)
        return self._subtrees[self.branch_id]

    @property
    def stages(self) -> dict[str, Stage]:
        """The playbook's stages by key (cached per process by the playbook)."""
        return {s.key: s for s in self.playbook.ordered_stages()}

    def scope(self) -> Scope:
        """The same question as the CLI's --as/--playbook/--branch/--owner/--industry."""
        return Scope(self.user, self.playbook, self.branch_ids, self.owner_id, self.industry_id)

    def filters(self) -> dict[str, Any]:
        """The filters as keyword arguments of the analytics selectors."""
        return self.scope().filters()

    def params(self, **extra: Any) -> str:
        """The query string of the scope (playbook, branch, owner) plus `extra`: what the tabs
        carry from one page to the next."""
        values: dict[str, Any] = {"playbook": self.playbook.key}
        if self.branch_id:
            values["branch"] = self.branch_id
        if self.owner_id:
            values["owner"] = self.owner_id
        if self.industry_id:
            values["industry"] = self.industry_id
        values.update({k: v for k, v in extra.items() if v not in (None, "")})
        return urlencode(values)

    def date(self, request: HttpRequest, name: str, label: str) -> dt.date | None:
        """The date field `name`, or None when empty; a value that is not a date is named in
        `problems` and left out, never an error page."""
        raw = (request.GET.get(name) or "").strip()
        value = date_param(raw) if raw else None
        if raw and value is None:
            self.problems.append(
                _("%(field)s: “%(value)s” is not a date like 2026-03-31, so it was left out.")
                % {"field": label, "value": raw}
            )
        self.fields[name] = value.isoformat() if value else ""
        return value

    def period(
        self, request: HttpRequest, first_label: str, last_label: str
    ) -> tuple[dt.date | None, dt.date | None]:
        """The `from` and `to` date fields; a `to` before the `from` is left out and said."""
        first = self.date(request, "from", first_label)
        last = self.date(request, "to", last_label)
        if first and last and last < first:
            self.problems.append(_("The period ends before it starts: its end was left out."))
            self.fields["to"] = ""
            last = None
        return first, last


def analytics_query(request: HttpRequest) -> AnalyticsQuery:
    """The scope from the query string, checked against what the user may choose (the funnel
    page's rule: `pipeline.board.filter_choices`)."""
    problems = []
    try:
        playbook = playbook_get(request.GET.get("playbook") or None)
    except NotFound:
        playbook = playbook_get(None)
        problems.append(_("There is no such playbook: showing the default one."))
    choices = filter_choices(request.user)
    branch_id = int_param(request.GET.get("branch"))
    if request.GET.get("branch") and branch_id not in {b.pk for b in choices["branches"]}:
        problems.append(_("That branch is not one you may look at: showing all of yours."))
        branch_id = None
    owner_id = int_param(request.GET.get("owner"))
    if request.GET.get("owner") and owner_id not in {u.pk for u in choices["owners"]}:
        problems.append(_("That person is not one you may look at: showing everyone you may."))
        owner_id = None
    industry_id = int_param(request.GET.get("industry"))
    if request.GET.get("industry") and industry_id not in {i.pk for i in choices["industries"]}:
        problems.append(_("There is no such industry: showing every industry."))
        industry_id = None
    return AnalyticsQuery(
        acting_user(request), playbook, branch_id, owner_id, choices, problems, industry_id
    )


def analytics_page(
    request: HttpRequest, template: str, query: AnalyticsQuery, **context: Any
) -> Any:
    """An analytics page: `template` with the scope's filters, choices and problems."""
    playbooks = Playbook.objects.filter(is_current=True).order_by("key")
    return render(
        request,
        f"web/analytics/{template}",
        {"query": query, "playbooks": playbooks, "today": clock.today(), **context},
    )


def money_axis(title: str) -> dict[str, Any]:
    """How a chart's money axis counts: in 万 for Chinese readers (values divided by 10,000),
    in K/M for English ones (plotly's SI ticks), as money_short does in the tables."""
    if is_chinese():
        return {"scale": 10_000, "title": f"{title}（万）", "tickformat": ",.0f"}
    return {"scale": 1, "title": title, "tickformat": "~s"}


def percent(rate: float | None) -> str:
    """A fraction as "62.5%", or — when undefined."""
    return "—" if rate is None else f"{100 * rate:.1f}%"


def _stage_name(query: AnalyticsQuery, key: str) -> str:
    stage = query.stages.get(key)
    return localized(stage, "name") if stage else key


@login_required
def analytics(request: HttpRequest) -> HttpResponse:
    """The analytics overview: the scope to look through and the five analyses, one line each."""
    return analytics_page(request, "index.html", analytics_query(request))


# --- conversion -----------------------------------------------------------------------------


def _conversion_row(row: dict[str, Any]) -> dict[str, Any]:
    """A conversion row with its rates as texts and the deals behind each."""
    interval = row["interval"]
    return {
        **row,
        "naive_pct": percent(row["naive"]),
        "closed_only_pct": percent(row["closed_only"]),
        "censored_pct": percent(row["censored_estimate"]),
        "interval_pct": f"{percent(interval[0])} – {percent(interval[1])}" if interval else "—",
        "closed": row["advanced"] + row["lost_here"],
    }


def _conversion_chart(query: AnalyticsQuery, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Grouped bars: the three rates per open stage (percent), the interval as error bars."""

    def values(key: str) -> list[float | None]:
        return [None if r[key] is None else round(100 * r[key], 1) for r in rows]

    estimate = values("censored_estimate")
    return {
        "labels": [_stage_name(query, r["key"]) for r in rows],
        "series": [
            {"name": _("Naive"), "values": values("naive"), "colour": "#b8c2d3"},
            {"name": _("Closed only"), "values": values("closed_only"), "colour": "#8fb0ef"},
            {"name": _("Censoring-aware"), "values": estimate, "colour": "#2f6fe4"},
        ],
        "low": [
            None if r["interval"] is None or e is None else round(e - 100 * r["interval"][0], 1)
            for r, e in zip(rows, estimate, strict=True)
        ],
        "high": [
            None if r["interval"] is None or e is None else round(100 * r["interval"][1] - e, 1)
            for r, e in zip(rows, estimate, strict=True)
        ],
        "axis": _("Share of the deals that reached the stage (%)"),
    }


@login_required
def conversion(request: HttpRequest) -> HttpResponse:
    """Conversion per stage of the deals created between two days (both included): reached,
    advanced, lost here, still open and the three rates — `loudou conversion` with
    --to = the day after the last."""
    query = analytics_query(request)
    first, last = query.period(request, _("Created from"), _("Created to"))
    today = clock.today()
    if first and first > today:
        query.problems.append(_("No deal is created in the future: the first day was left out."))
        first, query.fields["from"] = None, ""
    data = conversion_by_stage(
        query.user,
        query.playbook,
        date_from=first,
        date_to=last + dt.timedelta(days=1) if last else None,
        **query.filters(),
    )
    rows = [{**_conversion_row(r), "stage": query.stages.get(r["key"])} for r in data["stages"]]
    year_ago = today - dt.timedelta(days=364)
    return analytics_page(
        request,
        "conversion.html",
        query,
        data=data,
        rows=rows,
        overall=_conversion_row(data["overall"]),
        cohort_from=dt.date.fromisoformat(data["cohort"]["from"]),
        cohort_last=dt.date.fromisoformat(data["cohort"]["to"]) - dt.timedelta(days=1),
        chart=_conversion_chart(query, rows[:-1]),
        presets=[
            (_("Last 12 months"), query.params(**{"from": year_ago, "to": today})),
            (_("This year"), query.params(**{"from": today.replace(month=1, day=1)})),
            (_("Every deal"), query.params()),
        ],
    )


# --- time in stage and stalled deals ---------------------------------------------------------


@login_required
def velocity_page(request: HttpRequest) -> HttpResponse:
    """Time in each stage (median, p80 and Kaplan–Meier median of the stays) and the cycle to
    won — `loudou velocity` with --from/--to on the day the stays began."""
    query = analytics_query(request)
    first, last = query.period(request, _("Entered from"), _("Entered to"))
    data = velocity(
        query.user,
        query.playbook,
        entered_from=first,
        entered_to=last,
        **query.filters(),
    )
    rows = [{**s, "stage": query.stages.get(s["key"])} for s in data["stages"]]
    chart = {
        "labels": [_stage_name(query, s["key"]) for s in rows],
        "series": [
            {"name": _("Median"), "values": [s["median_days"] for s in rows], "colour": "#8fb0ef"},
            {
                "name": _("Kaplan–Meier median"),
                "values": [s["km_median_days"] for s in rows],
                "colour": "#2f6fe4",
            },
            {"name": _("P80"), "values": [s["p80_days"] for s in rows], "colour": "#b8c2d3"},
        ],
        "axis": _("Days in the stage"),
    }
    return analytics_page(
        request,
        "velocity.html",
        query,
        data=data,
        rows=rows,
        cycle=data["cycle_to_won"],
        chart=chart,
    )


@login_required
def stalled_page(request: HttpRequest) -> HttpResponse:
    """The open deals that have sat in their stage past its threshold (the stage's max days,
    else its historical p80), most overdue first — `loudou stalled`."""
    query = analytics_query(request)
    data = stalled(query.user, query.playbook, **query.filters())
    usernames = {d["owner"] for d in data["deals"]}
    owners = {u.username: u for u in User.objects.filter(username__in=usernames)}
    deals = [
        {
            **d,
            "stage_obj": query.stages.get(d["stage"]),
            "owner_user": owners.get(d["owner"]),
            "amount_value": Decimal(d["amount"]),
            "close": dt.date.fromisoformat(d["close_date"]),
        }
        for d in data["deals"]
    ]
    if fmt := export_format(request):
        return download(stalled_table(deals), fmt)
    by_stage = [
        (stage, sum(1 for d in deals if d["stage"] == stage.key))
        for stage in query.stages.values()
        if stage.kind == StageKind.OPEN
    ]
    return analytics_page(
        request,
        "stalled.html",
        query,
        data=data,
        deals=deals,
        by_stage=by_stage,
        total=sum((d["amount_value"] for d in deals), Decimal(0)),
    )


# --- flow -----------------------------------------------------------------------------------


def _quarter(day: dt.date) -> tuple[dt.date, dt.date]:
    """The first and last day of the quarter holding `day`."""
    label = f"{day.year}Q{(day.month - 1) // 3 + 1}"
    period = parse_period(label)
    return period.start, period.end


def _flow_chart(lines: list[dict[str, Any]]) -> dict[str, Any]:
    """Two waterfalls (amount, count): the start and end bars absolute, the rest signed steps."""
    axis = money_axis(_("Amount"))
    counted = [line for line in lines if line["count"] is not None]

    def measure(line: dict[str, Any]) -> str:
        return "absolute" if line["key"] in ("start", "end") else "relative"

    def signed(line: dict[str, Any], value: Any) -> Any:
        return -value if line["sign"] == "−" else value

    return {
        "amount": {
            "labels": [line["label"] for line in lines],
            "measure": [measure(line) for line in lines],
            "values": [float(signed(x, x["magnitude"])) / axis["scale"] for x in lines],
            "text": [f"{x['sign'].strip('=')}{money_short(x['magnitude'])}" for x in lines],
            "axis": axis,
        },
        "count": {
            "labels": [line["label"] for line in counted],
            "measure": [measure(line) for line in counted],
            "values": [signed(x, x["count"]) for x in counted],
            "text": [f"{x['sign'].strip('=')}{x['count']}" for x in counted],
            "axis": {"scale": 1, "title": _("Deals"), "tickformat": ",d"},
        },
    }


def _flow_table(flow: dict[str, Any]) -> list[dict[str, Any]]:
    """The eight lines of the waterfall with the sign each takes in the sum (an amount change
    by its own sign; it counts no deal)."""
    labels = {
        "start": ("", _("Pipeline at the start")),
        "created": ("+", _("Created")),
        "pulled_in": ("+", _("Pulled in")),
        "pushed_out": ("−", _("Pushed out")),
        "amount_change": ("+", _("Amount changes")),
        "won": ("−", _("Won")),
        "lost": ("−", _("Lost")),
        "end": ("=", _("Pipeline at the end")),
    }
    lines = []
    for key, (sign, label) in labels.items():
        amount = flow[key]["amount"]
        lines.append(
            {
                "key": key,
                "label": label,
                "sign": "−" if key == "amount_change" and amount < 0 else sign,
                "count": None if key == "amount_change" else flow[key]["count"],
                "amount": amount,
                "magnitude": abs(amount),
            }
        )
    return lines


@login_required
def flow_page(request: HttpRequest) -> HttpResponse:
    """The waterfall of the open pipeline for a close window between two days: start, created,
    pulled in, pushed out, amount changes, won, lost, end — `loudou flow`. By default: this
    quarter so far, for the deals expected to close in this quarter."""
    query = analytics_query(request)
    today = clock.today()
    q_start, q_end = _quarter(today)
    chosen = any(request.GET.get(k) for k in ("from", "to", "window_from", "window_to"))
    first = query.date(request, "from", _("From")) or q_start
    last = query.date(request, "to", _("To")) or today
    w_first = query.date(request, "window_from", _("Expected to close from"))
    w_last = query.date(request, "window_to", _("Expected to close to"))
    if not chosen:
        w_first, w_last = q_start, q_end
    if first > today:
        query.problems.append(
            _("The period cannot start after today: it starts with this quarter.")
        )
        first = q_start
    if last > today:
        # The pipeline at the end of a future day would only be today's, under a later date.
        query.problems.append(_("The period cannot end after today: it ends today."))
        last = today
    flow = None
    try:
        flow = pipeline_flow(
            query.user,
            query.playbook,
            date_from=first,
            date_to=last,
            window_from=w_first,
            window_to=w_last,
            **query.filters(),
        )
    except LoudouError as error:
        query.problems.append(error.message)
    query.fields.update(
        {
            "from": first.isoformat(),
            "to": last.isoformat(),
            "window_from": w_first.isoformat() if w_first else "",
            "window_to": w_last.isoformat() if w_last else "",
        }
    )
    context: dict[str, Any] = {"flow": flow}
    if flow is not None:
        lines = _flow_table(flow)
        context.update(
            lines=lines,
            balanced=flow_balances(flow),
            chart=_flow_chart(lines),
            count_sum=" ".join(
                f"{x['sign']} {x['count']}" for x in lines if x["count"] is not None
            ).strip(),
            amount_sum=" ".join(f"{x['sign']} {money(x['magnitude'])}" for x in lines).strip(),
        )
    return analytics_page(request, "flow.html", query, **context)


urlpatterns = [
    path("analytics/", analytics, name="analytics"),
    path("analytics/conversion/", conversion, name="analytics-conversion"),
    path("analytics/velocity/", velocity_page, name="analytics-velocity"),
    path("analytics/stalled/", stalled_page, name="analytics-stalled"),
    path("analytics/flow/", flow_page, name="analytics-flow"),
]
