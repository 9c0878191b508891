"""Time in stage, cycle time to won and stalled deals (DESIGN.md, "Definitions the analytics
must follow"). Reads the stays (the analytics cache derived from history), restricted by the
visibility rule; a handful of queries whatever the number of deals.

Durations are in days (floats). A *completed* stay has left its stage; a stay still open is
right-censored at now: it has lasted at least that long, and the Kaplan–Meier estimate counts it
as such instead of dropping it (which would make slow stages look fast) or treating it as ended.
"""

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
from django.db.models import OuterRef, Subquery
from django.db.models.functions import Coalesce

from loudou.analytics.models import OpportunityStay, StayOutcome
from loudou.analytics.scope import Scope
from loudou.analytics.selectors import day_start, end_of_day
from loudou.core import clock
from loudou.core.i18n import localized
from loudou.pipeline.models import OpportunityHistory, Status
from loudou.playbooks.models import Playbook, StageKind

SECONDS_PER_DAY = 86_400.0
# Survival products such as 3/4 × 2/3 land a hair above or below 0.5 in floating point.
_HALF = 0.5 + 1e-9


def days_between(start: dt.datetime, end: dt.datetime) -> float:
    """Days from `start` to `end`, as a float (never negative: a clock skew in imported data
    counts as zero rather than as negative time)."""
    return max(0.0, (end - start).total_seconds() / SECONDS_PER_DAY)


def percentiles(durations: Sequence[float]) -> tuple[float | None, float | None]:
    """(median, p80) with numpy's linear interpolation; (None, None) when there is nothing."""
    if not durations:
        return None, None
    median, p80 = np.percentile(np.asarray(durations, dtype=float), [50, 80])
    return float(median), float(p80)


def km_median(durations: Sequence[float], observed: Sequence[bool]) -> float | None:
    """The Kaplan–Meier median: the first time the estimated survival S(t) drops to 0.5 or below.

    `durations[i]` is how long item i lasted (or has lasted so far), `observed[i]` whether it
    ended then (True) or is still going, i.e. right-censored (False). At each distinct time t
    with d ended items and n items still at risk (duration ≥ t; items censored at t count as at
    risk), S is multiplied by 1 − d/n. None when S never reaches 0.5 (too many still going).
    """
    times = np.asarray(durations, dtype=float)
    ended = np.asarray(observed, dtype=bool)
    if times.size == 0 or not ended.any():
        return None
    event_times = np.sort(times[ended])
    distinct = np.unique(event_times)
    deaths = np.searchsorted(event_times, distinct, side="right") - np.searchsorted(
        event_times, distinct, side="left"
    )
    at_risk = times.size - np.searchsorted(np.sort(times), distinct, side="left")
    survival = np.cumprod(1.0 - deaths / at_risk)
    below = np.flatnonzero(survival <= _HALF)
    return float(distinct[below[0]]) if below.size else None


def _days(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def _summary(completed: Sequence[float], censored: Sequence[float]) -> dict[str, Any]:
    median, p80 = percentiles(completed)
    km = km_median([*completed, *censored], [True] * len(completed) + [False] * len(censored))
    return {"median_days": _days(median), "p80_days": _days(p80), "km_median_days": _days(km)}


def _open_stages(playbook: Playbook) -> list[Any]:
    return [s for s in playbook.ordered_stages() if s.kind == StageKind.OPEN]


def _stay_rows(opportunities: Any, **filters: Any) -> Iterable[tuple[str, dt.datetime, Any]]:
    """(stage key, entered_at, exited_at) of the stays of `opportunities`, in open stages."""
    return (
        OpportunityStay.objects.filter(
            opportunity__in=opportunities.values("pk"),
            stage__kind=StageKind.OPEN,
            **filters,
        )
        # No ordering: the model's would join the opportunities again only to sort by their
        # creation, and PostgreSQL planned that join as a nested loop over every stay.
        .order_by()
        .values_list("stage__key", "entered_at", "exited_at")
        .iterator(chunk_size=5000)
    )


def velocity(
    user: Any,
    playbook: Playbook,
    *,
    entered_from: dt.date | None = None,
    entered_to: dt.date | None = None,
    branch_ids: set[int] | None = None,
    owner_id: int | None = None,
    industry_id: int | None = None,
) -> dict[str, Any]:
    """Time in each open stage and the cycle time to won, for the deals `user` may see.

    Per stage (matched by key across playbook versions): the number of completed stays, their
    median and p80 in days, the Kaplan–Meier median with stays still open censored at now, and
    the number of open stays. `entered_from`/`entered_to` (both days included) keep the stays
    that began in that period; for the cycle to won they keep the deals created in it.

    Cycle to won: days from creation to the won moment (the end of the stay that ended in a
    win) of the deals won; its Kaplan–Meier median counts deals still open as censored at their
    age. Lost deals are left out of that estimate: they will never be won, and counting them as
    censored would pretend they still might.
    """
    now = clock.now()
    opportunities = Scope(
        actor=user,
        playbook=playbook,
        branch_ids=branch_ids,
        owner_id=owner_id,
        industry_id=industry_id,
    ).opportunities()
    period: dict[str, Any] = {}
    created: dict[str, Any] = {}
    if entered_from is not None:
        period["entered_at__gte"] = day_start(entered_from)
        created["created_at__gte"] = day_start(entered_from)
    if entered_to is not None:
        period["entered_at__lte"] = end_of_day(entered_to)
        created["created_at__lte"] = end_of_day(entered_to)

    completed: dict[str, list[float]] = defaultdict(list)
    still_open: dict[str, list[float]] = defaultdict(list)
    for key, entered_at, exited_at in _stay_rows(opportunities, **period):
        if exited_at is None:
            still_open[key].append(days_between(entered_at, now))
        else:
            completed[key].append(days_between(entered_at, exited_at))
    stages = [
        {
            "key": stage.key,
            "name": localized(stage, "name"),
            "completed_stays": len(completed[stage.key]),
            **_summary(completed[stage.key], still_open[stage.key]),
            "open_stays": len(still_open[stage.key]),
        }
        for stage in _open_stages(playbook)
    ]
    return {
        "playbook": playbook.key,
        "stages": stages,
        "cycle_to_won": _cycle_to_won(opportunities, now, created),
    }


def _cycle_to_won(opportunities: Any, now: dt.datetime, created: dict[str, Any]) -> dict[str, Any]:
    won_stay = OpportunityStay.objects.filter(
        opportunity=OuterRef("pk"), outcome=StayOutcome.WON
    ).order_by("-exited_at")
    # A deal imported as already won has no open stay; its first won history row is the moment.
    won_row = OpportunityHistory.objects.filter(
        opportunity=OuterRef("pk"), status=Status.WON
    ).order_by("valid_from")
    rows = (
        opportunities.filter(status__in=[Status.WON, Status.OPEN], **created)
        .annotate(
            won_at=Coalesce(
                Subquery(won_stay.values("exited_at")[:1]),
                Subquery(won_row.values("valid_from")[:1]),
            )
        )
        .values_list("status", "created_at", "won_at")
    )
    won: list[float] = []
    ages: list[float] = []
    for status, created_at, won_at in rows:
        if status == Status.OPEN:
            ages.append(days_between(created_at, now))
        elif won_at is not None:
            won.append(days_between(created_at, won_at))
    return {"completed": len(won), **_summary(won, ages)}


def stalled(
    user: Any,
    playbook: Playbook,
    *,
    branch_ids: set[int] | None = None,
    owner_id: int | None = None,
    industry_id: int | None = None,
) -> dict[str, Any]:
    """The open deals `user` may see that have been in their stage longer than its threshold:
    the stage's `max_days`, or where that is unset the p80 of the completed stays in the stage
    (over every deal of the playbook `user` may see, so narrowing by branch or owner lists fewer
    deals but never changes a threshold). A stage with neither stalls no one. Sorted by days over
    the threshold, most overdue first."""
    now = clock.now()
    scope = Scope(
        actor=user,
        playbook=playbook,
        branch_ids=branch_ids,
        owner_id=owner_id,
        industry_id=industry_id,
    )
    names = {s.key: localized(s, "name") for s in _open_stages(playbook)}
    rows = list(
        OpportunityStay.objects.filter(
            opportunity__in=scope.opportunities().filter(status=Status.OPEN).values("pk"),
            stage__kind=StageKind.OPEN,
            exited_at__isnull=True,
        )
        .order_by()  # the model's ordering would join and sort the opportunities for nothing
        .values_list(
            "opportunity_id",
            "opportunity__name",
            "opportunity__account__name",
            "opportunity__owner__username",
            "stage__key",
            "stage__max_days",
            "entered_at",
            "opportunity__amount",
            "opportunity__currency",
            "opportunity__close_date",
        )
    )
    needs_p80 = {row[4] for row in rows if row[5] is None}
    p80 = stage_p80(user, playbook, needs_p80) if needs_p80 else {}
    found: list[tuple[float, dict[str, Any]]] = []
    for pk, name, account, owner, key, max_days, entered_at, amount, currency, close in rows:
        if max_days is not None:
            threshold, source = float(max_days), "max_days"
        elif (historical := p80.get(key)) is not None:
            threshold, source = historical, "p80"
        else:
            continue
        days = days_between(entered_at, now)
        if days <= threshold:
            continue
        found.append(
            (
                days - threshold,
                {
                    "id": pk,
                    "name": name,
                    "account": account,
                    "owner": owner,
                    "stage": key,
                    "stage_name": names.get(key, key),
                    "days_in_stage": round(days, 1),
                    "threshold_days": round(threshold, 1),
                    "threshold_source": source,
                    "days_over": round(days - threshold, 1),
                    "amount": str(amount),
                    "currency": currency,
                    "close_date": close.isoformat(),
                },
            )
        )
    found.sort(key=lambda item: (-item[0], item[1]["id"]))
    return {
        "playbook": playbook.key,
        "as_of": clock.today().isoformat(),
        "deals": [deal for _, deal in found],
    }


def stage_p80(user: Any, playbook: Playbook, keys: Iterable[str]) -> dict[str, float | None]:
    """The p80 in days of the completed stays in each stage of `keys`, over the deals of the
    playbook `user` may see (None for a stage with no completed stay)."""
    opportunities = Scope(actor=user, playbook=playbook).opportunities()
    wanted = set(keys)
    durations: dict[str, list[float]] = {key: [] for key in wanted}
    for key, entered_at, exited_at in _stay_rows(
        opportunities, stage__key__in=wanted, exited_at__isnull=False
    ):
        durations[key].append(days_between(entered_at, exited_at))
    return {key: percentiles(values)[1] for key, values in durations.items()}
