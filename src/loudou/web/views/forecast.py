"""The forecast page: a month's or a quarter's booked, weighted and simulated bookings against
the target, with the targets per person, branch and company and the reverse funnel (倒推).

Its figures are those of `loudou forecast`, `loudou targets` and `loudou plan` for the same
scope; the filters, the page frame and the money axis are the other analytics pages'
(`web.views.analytics`)."""

import datetime as dt
from decimal import Decimal
from typing import Any

import numpy as np
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.utils.translation import gettext as _

from loudou.analytics.forecast import (
    PROBABILITY_SOURCES,
    Period,
    forecast,
    learned_for,
    parse_period,
    period_deals,
    simulate,
    targets_view,
)
from loudou.analytics.plan import plan
from loudou.analytics.selectors import funnel_snapshot
from loudou.core import clock
from loudou.core.errors import LoudouError
from loudou.core.money import parse_amount
from loudou.web.templatetags.loudou import money_short
from loudou.web.views.analytics import (
    AnalyticsQuery,
    analytics_page,
    analytics_query,
    money_axis,
    percent,
)
from loudou.web.views.base import login_required

HISTOGRAM_BINS = 40


def _period_choices(today: dt.date, quarters: list[str]) -> list[str]:
    """Quarters around today and the months from three back to six ahead, for the period box."""
    months = []
    for shift in range(-3, 7):
        index = today.year * 12 + today.month - 1 + shift
        months.append(f"{index // 12}-{index % 12 + 1:02d}")
    return quarters + months


def _histogram(totals_cents: Any) -> dict[str, Any] | None:
    """The simulated bookings as bars (amount bins, share of runs in %), or None when every run
    books the same amount (nothing open closes in the period)."""
    totals = np.asarray(totals_cents, dtype=np.float64) / 100.0
    if totals.size == 0 or float(totals.min()) == float(totals.max()):
        return None
    counts, edges = np.histogram(totals, bins=HISTOGRAM_BINS)
    share = counts / totals.size * 100
    scale = money_axis("")["scale"]
    return {
        "x": [round(float(v) / scale, 4) for v in (edges[:-1] + edges[1:]) / 2],
        "width": float(edges[1] - edges[0]) / scale,
        "y": [round(float(v), 2) for v in share],
        "hover": [
            _("%(low)s – %(high)s: %(share)s of the runs")
            % {
                "low": money_short(Decimal(str(round(lo)))),
                "high": money_short(Decimal(str(round(hi)))),
                "share": f"{s:.1f}%",
            }
            for lo, hi, s in zip(edges[:-1], edges[1:], share, strict=True)
        ],
    }


def _forecast_chart(figures: dict[str, Any], totals_cents: Any) -> dict[str, Any] | None:
    bars = _histogram(totals_cents)
    if bars is None:
        return None
    sim = figures["simulated"]
    marks = [
        (_("P10"), sim["p10"], "#8a97ad"),
        (_("P50"), sim["p50"], "#2f6fe4"),
        (_("P90"), sim["p90"], "#8a97ad"),
    ]
    if figures["target"] is not None:
        marks.append((_("Target"), figures["target"], "#c0392b"))
    axis = money_axis(_("Bookings of the period in a run"))
    return {
        **bars,
        "marks": [
            {"name": name, "x": float(Decimal(value)) / axis["scale"], "colour": colour}
            for name, value, colour in marks
        ],
        "xaxis": axis,
        "yaxis": _("Share of the runs (%)"),
    }


def _plan_context(
    request: HttpRequest, query: AnalyticsQuery, period: Period, target: str | None
) -> dict[str, Any]:
    """The reverse funnel for the target typed (or, when none, the scope's own target), with
    the open pipeline at each stage now beside what it needs."""
    typed = (request.GET.get("target") or "").strip()
    text = typed or target or ""
    context: dict[str, Any] = {"plan_target": typed or (target or ""), "plan_typed": bool(typed)}
    if not text:
        return context
    try:
        amount = parse_amount(text, field="target")
    except LoudouError as error:
        context["plan_error"] = error.message
        return context
    except ArithmeticError:
        # parse_amount quantizes before its size check: 1e30 overflows the decimal context.
        context["plan_error"] = _("The amount is too large.")
        return context
    assert amount is not None
    data = plan(query.scope(), period, amount)
    snapshot = funnel_snapshot(query.user, query.playbook, **query.filters())
    open_now = {s["key"]: s for s in snapshot["stages"]}
    context["plan"] = data
    context["plan_rows"] = [
        {
            **row,
            "stage": query.stages.get(row["key"]),
            "conversion_pct": percent(row["conversion_to_won"]),
            "open_count": open_now.get(row["key"], {}).get("count", 0),
            "open_amount": open_now.get(row["key"], {}).get("amount", "0"),
        }
        for row in data["stages"]
    ]
    return context


def _default_subject(query: AnalyticsQuery) -> None:
    """Whose target the forecast is set against when no branch or person is chosen: a seller's
    own, a manager's branch's; the company's only for those who see every deal. (The CLI
    without --owner or --branch compares with the company's target, which for anyone who sees
    only part of the company would read as a miss.)"""
    user = query.user
    if query.branch_id or query.owner_id or user.sees_everything:
        return
    if user.branch_id in {b.pk for b in query.choices["branches"]}:
        query.branch_id = user.branch_id
    elif user.pk in {u.pk for u in query.choices["owners"]}:
        query.owner_id = user.pk


@login_required
def forecast_page(request: HttpRequest) -> HttpResponse:
    """A month's or a quarter's forecast — booked, weighted, simulated P10/P50/P90, the target
    and the chance of meeting it (`loudou forecast`, 10,000 runs, seed 0) — with the targets
    per person, branch and company (`loudou targets`) and the reverse funnel (`loudou plan`)."""
    query = analytics_query(request)
    today = clock.today()
    current = f"{today.year}Q{(today.month - 1) // 3 + 1}"
    raw = (request.GET.get("period") or "").strip()
    try:
        period = parse_period(raw or current)
    except ValueError as error:
        query.problems.append(
            str(error) + " " + _("Showing this quarter (%(q)s) instead.") % {"q": current}
        )
        period = parse_period(current)
    query.fields["period"] = period.label
    source = request.GET.get("probabilities") or "deal"
    if source not in PROBABILITY_SOURCES:
        query.problems.append(
            _("“%(value)s” is not a choice of probabilities: the deals' own are used.")
            % {"value": source}
        )
        source = "deal"
    query.fields["probabilities"] = source
    _default_subject(query)
    scope = query.scope()
    # The learned probabilities are computed once for the figures, the histogram and the
    # targets table (the per-deal model reads the open deals' history).
    learned = learned_for(scope, period) if source == "learned" else None
    figures = forecast(scope, period, probabilities=source, learned=learned)
    # The runs themselves, for the histogram: the same deals, runs and seed as the figures.
    by_deal = learned[0] if learned is not None else None
    runs = simulate(period_deals(scope, period, by_deal), runs=figures["simulated"]["runs"])
    targets = targets_view(scope, period, probabilities=source, learned=learned)
    carried = None if source == "deal" else source
    branches = {b.code: b.pk for b in query.choices["branches"]}
    owners = {u.username: u.pk for u in query.choices["owners"]}
    for row in targets["rows"]:
        if row["kind"] == "person" and row["key"] in owners:
            row["link"] = query.params(
                owner=owners[row["key"]], period=period.label, probabilities=carried
            )
        elif row["kind"] == "branch" and row["key"] in branches:
            row["link"] = query.params(
                branch=branches[row["key"]], period=period.label, probabilities=carried
            )
        row["p_hit_pct"] = "—" if row["p_hit_target"] is None else f"{row['p_hit_target']:.0%}"
        row["attained"] = (
            min(100, round(100 * Decimal(row["booked"]) / Decimal(row["target"])))
            if row["target"] and Decimal(row["target"]) > 0
            else None
        )
    return analytics_page(
        request,
        "forecast.html",
        query,
        period=period,
        figures=figures,
        p_hit_pct="—" if figures["p_hit_target"] is None else f"{figures['p_hit_target']:.1%}",
        chart=_forecast_chart(figures, runs.bookings_cents),
        targets=targets["rows"],
        period_choices=_period_choices(today, query.choices["quarters"]),
        **_plan_context(request, query, period, figures["target"]),
    )


urlpatterns = [
    path("analytics/forecast/", forecast_page, name="analytics-forecast"),
]
