"""The reverse funnel (倒推): from a target for a period, the pipeline each open stage must hold,
and by when, given the historical closed-only conversion to won, the average won deal and the
median time to win (DESIGN.md, "Definitions the analytics must follow";
docs/analytics-forecast.md).

It reads current opportunity fields and the stays cache for the closed deals' history, through
the visibility rule of the scope's actor; what is booked already comes from `analytics.forecast`.
"""

import datetime as dt
import math
import statistics
from collections import Counter, defaultdict
from decimal import ROUND_CEILING, Decimal
from typing import Any

from django.db.models import Max
from django.utils.translation import gettext as _

from loudou.analytics.forecast import CENT, ZERO, Period, money, period_deals
from loudou.analytics.models import OpportunityStay, StayOutcome
from loudou.analytics.scope import Scope
from loudou.core.i18n import localized
from loudou.pipeline.models import Status
from loudou.playbooks.models import StageKind

# A stage that fewer closed deals reached gets no conversion or needs.
MIN_CLOSED_FOR_PLAN = 5


def _won_moments(won_ids: Any) -> dict[int, dt.datetime]:
    """Each won deal's moment of winning: the end of its (last) stay that ended in a win."""
    rows = OpportunityStay.objects.filter(
        opportunity_id__in=won_ids, outcome=StayOutcome.WON
    ).values_list("opportunity_id", "exited_at")
    moments: dict[int, dt.datetime] = {}
    for opp_id, exited in rows:
        if exited is None:
            continue
        if opp_id not in moments or exited > moments[opp_id]:
            moments[opp_id] = exited
    return moments


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
    """
    deals = period_deals(scope, period)
    gap = max(target - deals.booked, ZERO)
    opps = scope.opportunities()
    won_ids = opps.filter(status=Status.WON).values("pk")
    lost_ids = opps.filter(status=Status.LOST).values("pk")
    won_amounts = list(opps.filter(status=Status.WON).values_list("amount", flat=True))
    won_count = len(won_amounts)
    average_won = sum(won_amounts, ZERO) / won_count if won_count else None

    furthest = Counter(
        OpportunityStay.objects.filter(opportunity_id__in=lost_ids)
        .values("opportunity_id")
        .annotate(m=Max("stage_order"))
        .values_list("m", flat=True)
    )
    moments = _won_moments(won_ids)
    entries: dict[int, list[tuple[int, dt.datetime]]] = defaultdict(list)
    for opp_id, order, entered in OpportunityStay.objects.filter(
        opportunity_id__in=won_ids
    ).values_list("opportunity_id", "stage_order", "entered_at"):
        entries[opp_id].append((order, entered))

    stages = []
    for stage in scope.playbook.ordered_stages():
        if stage.kind != StageKind.OPEN:
            continue
        lost_reached = sum(n for order, n in furthest.items() if order >= stage.order)
        closed = won_count + lost_reached
        days = []
        for opp_id, won_at in moments.items():
            later = [entered for order, entered in entries[opp_id] if order >= stage.order]
            reached_at = min(later) if later else won_at
            days.append((won_at - reached_at).total_seconds() / 86400)
        median_days = statistics.median(days) if days else None
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
