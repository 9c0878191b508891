"""Time in stage, cycle time to won and stalled deals (DESIGN.md, "Definitions the analytics
must follow"). Reads the stays (the analytics cache derived from history), restricted by the
visibility rule; a handful of queries whatever the number of deals, each read as numbers straight
from the cursor (`rows.columns`), and the durations computed in numpy from whole microseconds.

Durations are in days (floats). A *completed* stay has left its stage; a stay still open is
right-censored at now: it has lasted at least that long, and the Kaplan–Meier estimate counts it
as such instead of dropping it (which would make slow stages look fast) or treating it as ended.
"""

import datetime as dt
from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt
from django.db.models import (
    Case,
    DateTimeField,
    IntegerField,
    OuterRef,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce

from loudou.analytics import rows
from loudou.analytics.models import OpportunityStay, StayOutcome
from loudou.analytics.scope import Scope
from loudou.analytics.selectors import day_start, end_of_day
from loudou.core import clock
from loudou.core.i18n import localized
from loudou.pipeline.models import Opportunity, OpportunityHistory, Status
from loudou.playbooks.models import Playbook, StageKind

FloatArray = npt.NDArray[np.float64]

# Survival products such as 3/4 × 2/3 land a hair above or below 0.5 in floating point.
_HALF = 0.5 + 1e-9


def percentiles(durations: npt.ArrayLike) -> tuple[float | None, float | None]:
    """(median, p80) with numpy's linear interpolation; (None, None) when there is nothing."""
    if np.size(durations) == 0:
        return None, None
    median, p80 = np.percentile(np.asarray(durations, dtype=float), [50, 80])
    return float(median), float(p80)


def km_median(durations: npt.ArrayLike, observed: npt.ArrayLike) -> float | None:
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


def _summary(completed: FloatArray, censored: FloatArray) -> dict[str, Any]:
    median, p80 = percentiles(completed)
    observed = np.arange(completed.size + censored.size) < completed.size
    km = km_median(np.concatenate([completed, censored]), observed)
    return {"median_days": _days(median), "p80_days": _days(p80), "km_median_days": _days(km)}


def _open_stages(playbook: Playbook) -> list[Any]:
    return [s for s in playbook.ordered_stages() if s.kind == StageKind.OPEN]


def _stays_by_key(
    scope: Scope, opportunities: Any, keys: list[str], **filters: Any
) -> dict[str, tuple[rows.Moments, rows.Moments]]:
    """For each stage key of `keys`, (entered, exited) of the stays of the deals in `scope`
    (`opportunities`: `scope.opportunities()`) in the open stages of that key (exited NaT: still
    open), read as arrays in one query."""
    whole = rows.whole_playbook(scope)
    if whole:
        # Every deal of the playbook: one scan of the stays, without the `IN (deals)` lookups,
        # kept to the playbook's stages below.
        stays = OpportunityStay.objects.filter(**filters)
    else:
        stays = OpportunityStay.objects.filter(
            opportunity__in=opportunities.values("pk"), **filters
        )
    stage_ids, entered, exited = rows.columns(stays, "stage_id", "entered_at", "exited_at")
    stages = rows.stages_by_id(scope.playbook, stage_ids).values()
    found: dict[str, tuple[rows.Moments, rows.Moments]] = {}
    for key in keys:
        ids = [
            stage.pk
            for stage in stages
            if stage.key == key
            and stage.kind == StageKind.OPEN
            and (not whole or stage.playbook.key == scope.playbook.key)
        ]
        mine = np.isin(stage_ids, ids)
        found[key] = entered[mine], exited[mine]
    return found


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
    now = rows.moment(clock.now())
    scope = Scope(
        actor=user,
        playbook=playbook,
        branch_ids=branch_ids,
        owner_id=owner_id,
        industry_id=industry_id,
    )
    period: dict[str, Any] = {}
    created: dict[str, Any] = {}
    if entered_from is not None:
        period["entered_at__gte"] = day_start(entered_from)
        created["created_at__gte"] = day_start(entered_from)
    if entered_to is not None:
        period["entered_at__lte"] = end_of_day(entered_to)
        created["created_at__lte"] = end_of_day(entered_to)

    opportunities = scope.opportunities()
    open_stages = _open_stages(playbook)
    by_key = _stays_by_key(scope, opportunities, [stage.key for stage in open_stages], **period)
    stages = []
    for stage in open_stages:
        entered, exited = by_key[stage.key]
        still_open = np.isnat(exited)
        completed = rows.days_between(entered[~still_open], exited[~still_open])
        censored = rows.days_between(entered[still_open], now)
        stages.append(
            {
                "key": stage.key,
                "name": localized(stage, "name"),
                "completed_stays": int(completed.size),
                **_summary(completed, censored),
                "open_stays": int(censored.size),
            }
        )
    return {
        "playbook": playbook.key,
        "stages": stages,
        "cycle_to_won": _cycle_to_won(opportunities, now, created),
    }


# Open deals as 1, the others (won, in `_cycle_to_won`) as 0: read as numbers, not as text.
_IS_OPEN = Case(
    When(status=Status.OPEN, then=Value(1)), default=Value(0), output_field=IntegerField()
)


def _cycle_to_won(
    opportunities: Any, now: np.datetime64, created: dict[str, Any]
) -> dict[str, Any]:
    won_stay = OpportunityStay.objects.filter(
        opportunity=OuterRef("pk"), outcome=StayOutcome.WON
    ).order_by("-exited_at")
    # A deal imported as already won has no open stay; its first won history row is the moment.
    won_row = OpportunityHistory.objects.filter(
        opportunity=OuterRef("pk"), status=Status.WON
    ).order_by("valid_from")
    # Only won deals have a won moment: the CASE spares the open ones both lookups.
    deals = opportunities.filter(status__in=[Status.WON, Status.OPEN], **created).annotate(
        won_at=Case(
            When(
                status=Status.WON,
                then=Coalesce(
                    Subquery(won_stay.values("exited_at")[:1]),
                    Subquery(won_row.values("valid_from")[:1]),
                ),
            ),
            default=Value(None),
            output_field=DateTimeField(),
        )
    )
    is_open, created_at, won_at = rows.columns(deals, _IS_OPEN, "created_at", "won_at")
    is_open = is_open.astype(bool)
    won = ~is_open & ~np.isnat(won_at)
    ages = rows.days_between(created_at[is_open], now)
    cycles = rows.days_between(created_at[won], won_at[won])
    return {"completed": int(cycles.size), **_summary(cycles, ages)}


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
    the threshold, most overdue first.

    The open stays are read as numbers; only the deals found stalled are then read in full."""
    now = rows.moment(clock.now())
    scope = Scope(
        actor=user,
        playbook=playbook,
        branch_ids=branch_ids,
        owner_id=owner_id,
        industry_id=industry_id,
    )
    names = {s.key: localized(s, "name") for s in _open_stages(playbook)}
    open_deals = scope.opportunities().filter(status=Status.OPEN)
    open_stays = OpportunityStay.objects.filter(exited_at__isnull=True)
    if rows.whole_playbook(scope):
        # Every open deal of the playbook: the open stays by one scan, kept to those deals here,
        # took half the time of the `IN (deals)` lookups.
        (open_ids,) = rows.columns(open_deals, "pk")
        deal_ids, stage_ids, entered = rows.columns(
            open_stays, "opportunity_id", "stage_id", "entered_at"
        )
        mine = np.isin(deal_ids, open_ids)
    else:
        deal_ids, stage_ids, entered = rows.columns(
            open_stays.filter(opportunity__in=open_deals.values("pk")),
            "opportunity_id",
            "stage_id",
            "entered_at",
        )
        mine = np.ones(deal_ids.size, bool)
    stages_of = rows.stages_by_id(playbook, stage_ids)
    in_open_stage = [pk for pk, stage in stages_of.items() if stage.kind == StageKind.OPEN]
    mine &= np.isin(stage_ids, in_open_stage)
    deal_ids, stage_ids, entered = deal_ids[mine], stage_ids[mine], entered[mine]
    present = set(np.unique(stage_ids).tolist())
    stages = {pk: (stage.key, stage.max_days) for pk, stage in stages_of.items() if pk in present}
    needs_p80 = {key for key, max_days in stages.values() if max_days is None}
    p80 = stage_p80(user, playbook, needs_p80) if needs_p80 else {}
    thresholds: dict[int, tuple[float, str]] = {}
    for pk, (key, max_days) in stages.items():
        if max_days is not None:
            thresholds[pk] = (float(max_days), "max_days")
        elif (historical := p80.get(key)) is not None:
            thresholds[pk] = (historical, "p80")
    limit = np.full(stage_ids.size, np.inf)  # a stage with no threshold stalls no one
    for pk, (threshold, _) in thresholds.items():
        limit[stage_ids == pk] = threshold
    days = rows.days_between(entered, now)
    over = days > limit
    deal_ids, stage_ids, days, limit = deal_ids[over], stage_ids[over], days[over], limit[over]
    order = np.lexsort((deal_ids, -(days - limit)))  # most overdue first, then by id
    details = _deal_details(deal_ids.tolist())
    # Per stage: its key, its name and its threshold (rounded once).
    shown = {
        pk: (key, names.get(key, key), round(threshold, 1), source)
        for pk, (threshold, source) in thresholds.items()
        for key in [stages[pk][0]]
    }
    found = []
    for pk, stage_id, in_stage, threshold in zip(
        deal_ids[order].tolist(),
        stage_ids[order].tolist(),
        days[order].tolist(),
        limit[order].tolist(),
        strict=True,
    ):
        if pk not in details:
            continue  # deleted since its stay was read
        key, stage_name, threshold_days, source = shown[stage_id]
        name, account, owner, amount, currency, close = details[pk]
        found.append(
            {
                "id": pk,
                "name": name,
                "account": account,
                "owner": owner,
                "stage": key,
                "stage_name": stage_name,
                "days_in_stage": round(in_stage, 1),
                "threshold_days": threshold_days,
                "threshold_source": source,
                "days_over": round(in_stage - threshold, 1),
                "amount": str(amount),
                "currency": currency,
                "close_date": close.isoformat(),
            }
        )
    return {
        "playbook": playbook.key,
        "as_of": clock.today().isoformat(),
        "deals": found,
    }


def _deal_details(ids: list[int]) -> dict[int, tuple[Any, ...]]:
    """(name, account name, owner's user name, amount, currency, close date) of each deal."""
    deals = (
        Opportunity.objects.filter(pk__in=rows.id_set(ids))
        .order_by()
        .values_list(
            "pk", "name", "account__name", "owner__username", "amount", "currency", "close_date"
        )
    )
    return {pk: tuple(rest) for pk, *rest in deals}


def stage_p80(user: Any, playbook: Playbook, keys: Iterable[str]) -> dict[str, float | None]:
    """The p80 in days of the completed stays in each stage of `keys`, over the deals of the
    playbook `user` may see (None for a stage with no completed stay)."""
    wanted = list(dict.fromkeys(keys))
    scope = Scope(actor=user, playbook=playbook)
    by_key = _stays_by_key(scope, scope.opportunities(), wanted, exited_at__isnull=False)
    return {key: percentiles(rows.days_between(*by_key[key]))[1] for key in wanted}
