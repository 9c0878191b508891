"""The reverse funnel (倒推): from a target for a period, the pipeline each open stage must hold,
and by when, given the historical closed-only conversion to won, the average won deal and the
median time to win (DESIGN.md, "Definitions the analytics must follow";
docs/analytics-forecast.md).

It reads current opportunity fields and the stays cache for the closed deals' history, through
the visibility rule of the scope's actor; what is booked already comes from `analytics.forecast`.
"""

import datetime as dt
import math
from collections import Counter
from decimal import ROUND_CEILING, Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
from django.db.models import Count
from django.utils.translation import gettext as _

from loudou.analytics import rows
from loudou.analytics.forecast import CENT, ZERO, Period, money, period_deals
from loudou.analytics.models import OpportunityStay, StayOutcome
from loudou.analytics.scope import Scope
from loudou.analytics.selectors import cents_sum
from loudou.core.i18n import localized
from loudou.pipeline.models import Status
from loudou.playbooks.models import StageKind

FloatArray = npt.NDArray[np.float64]

# A stage that fewer closed deals reached gets no conversion or needs.
MIN_CLOSED_FOR_PLAN = 5


def _furthest_orders(stays: Any) -> Counter[int]:
    """How many of the deals of `stays` stayed furthest (highest stage order) at each order."""
    deal, order = rows.columns(stays, "opportunity_id", "stage_order")
    if not deal.size:
        return Counter()
    by_deal = np.argsort(deal, kind="stable")
    deal, order = deal[by_deal], order[by_deal]
    firsts = np.flatnonzero(np.r_[True, deal[1:] != deal[:-1]])
    orders, counts = np.unique(np.maximum.reduceat(order, firsts), return_counts=True)
    return Counter(dict(zip(orders.tolist(), counts.tolist(), strict=True)))


def _days_to_won(stays: Any, orders: list[int]) -> dict[int, FloatArray]:
    """Per stage order s, the days from each won deal's first entry into s or a later stage (its
    won moment when it skipped them) to its won moment, the end of its last stay that ended in a
    win; deals with no such stay are left out. As `timedelta.total_seconds() / 86400` of the
    exact microseconds, to the last bit. `stays`: those of the won deals."""
    deal, order, entered, exited, outcome = rows.columns(
        stays, "opportunity_id", "stage_order", "entered_at", "exited_at", rows.Text("outcome")
    )
    won = (outcome == StayOutcome.WON.value.encode()) & ~np.isnat(exited)
    deals = np.unique(deal[won])
    if not deals.size:
        return {s: np.empty(0) for s in orders}
    position = rows.id_positions(deals, deal)  # −1: a deal with no won stay
    known = position >= 0
    won_at = np.full(deals.size, np.iinfo(np.int64).min)
    np.maximum.at(won_at, position[won], exited[won].astype(np.int64))
    entered_us = entered.astype(np.int64)
    days = {}
    for s in orders:
        reached = won_at.copy()
        later = known & (order >= s)
        np.minimum.at(reached, position[later], entered_us[later])
        days[s] = (won_at - reached) / 1e6 / 86400
    return days


def plan(scope: Scope, period: Period, target: Decimal) -> dict[str, Any]:
    """The pipeline each open stage needs, and by when, for the scope to reach `target`.

    Per open stage s, from the closed deals in scope (history as of now):
    - conversion_to_won = won / closed deals that reached s (closed-only; a lost deal reached
      the stages up to its furthest stay, a won deal reached every stage);
    - needed_amount = (target − booked) / conversion_to_won;
    - needed_count = ceil(needed_amount / average won amount);
    - median_days_to_won = median over won deals of (won moment − first entry into s or a later
      stage; 0 when s was skipped straight to the win);
    - by_date = period end − ceil(median_days_to_won).
    A stage fewer than MIN_CLOSED_FOR_PLAN closed deals reached gets no conversion or needs.
    The stays are read as numpy columns (`rows.columns`): at a million deals the ORM's rows took
    13 s.
    """
    deals = period_deals(scope, period)
    gap = max(target - deals.booked, ZERO)
    opps = scope.opportunities()
    won = opps.filter(status=Status.WON)
    totals = won.aggregate(cents=cents_sum("amount"), count=Count("pk"))
    won_count = totals["count"]
    # The sum as the Decimals it is made of would add up: whole cents, two places.
    won_sum = Decimal(totals["cents"] or 0).scaleb(-2)
    average_won = won_sum / won_count if won_count else None

    lost = opps.filter(status=Status.LOST)
    furthest = _furthest_orders(
        OpportunityStay.objects.filter(opportunity_id__in=lost.values("pk"))
    )
    open_stages = [s for s in scope.playbook.ordered_stages() if s.kind == StageKind.OPEN]
    orders = [s.order for s in open_stages]
    days_by_order = _days_to_won(
        OpportunityStay.objects.filter(opportunity_id__in=won.values("pk")), orders
    )

    stages = []
    for stage in open_stages:
        lost_reached = sum(n for order, n in furthest.items() if order >= stage.order)
        closed = won_count + lost_reached
        days = days_by_order[stage.order]
        median_days = float(np.median(days)) if days.size else None
        by_date = (
            period.end - dt.timedelta(days=math.ceil(median_days))
            if median_days is not None
            else None
        )
        row: dict[str, Any] = {
            "key": stage.key,
            "name": localized(stage, "name"),
            "closed_reached": closed,
            "conversion_to_won": None,
            "needed_amount": None,
            "needed_count": None,
            "median_days_to_won": None if median_days is None else round(median_days, 1),
            "by_date": by_date,
            "note": None,
        }
        if closed < MIN_CLOSED_FOR_PLAN:
            row["note"] = _(
                "Only %(n)s closed deals reached this stage; at least %(min)s are needed."
            ) % {"n": closed, "min": MIN_CLOSED_FOR_PLAN}
        elif won_count == 0 or average_won is None or average_won <= 0:
            row["conversion_to_won"] = 0.0
            row["note"] = _("No deal that reached this stage was won: no plan can be made.")
        else:
            row["conversion_to_won"] = round(won_count / closed, 4)
            needed = gap * closed / won_count
            row["needed_amount"] = money(needed.quantize(CENT, rounding=ROUND_CEILING))
            row["needed_count"] = int((needed / average_won).to_integral_value(ROUND_CEILING))
        stages.append(row)
    return {
        "period": period.label,
        "target": money(target),
        "booked": money(deals.booked),
        "gap": money(gap),
        "average_won_amount": None if average_won is None else money(average_won.quantize(CENT)),
        "won_deals": won_count,
        "stages": stages,
    }
