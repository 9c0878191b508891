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
    IntegerField,
    Value,
    When,
)

from loudou.analytics import parallel, rows
from loudou.analytics.models import OpportunityStay, StayOutcome
from loudou.analytics.scope import Scope
from loudou.analytics.selectors import day_start, end_of_day
from loudou.core import clock
from loudou.core.i18n import localized
from loudou.pipeline.models import Opportunity, OpportunityHistory, Status
from loudou.playbooks.models import Playbook, Stage, StageKind

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


def _stays(scope: Scope, opportunities: Any, **filters: Any) -> Any:
    """The stays of the deals in `scope` (`opportunities`: `scope.opportunities()`)."""
    if rows.whole_playbook(scope):
        # Every deal of the playbook: one scan of the stays, without the `IN (deals)` lookups,
        # kept to the playbook's stages by `_stays_by_key`.
        return OpportunityStay.objects.filter(**filters)
    return OpportunityStay.objects.filter(opportunity__in=opportunities.values("pk"), **filters)


_STAY_COLUMNS = ("stage_id", "entered_at", "exited_at")
# Stay tables whose ids span at least this many are read on two connections (`parallel`).
_PARALLEL_STAYS = 200_000


def _stays_by_key(
    scope: Scope, columns: list[npt.NDArray[Any]], keys: list[str]
) -> dict[str, tuple[rows.Moments, rows.Moments]]:
    """For each stage key of `keys`, (entered, exited) of the stays read as `columns` (stage,
    entered, exited) in the open stages of that key (exited NaT: still open)."""
    whole = rows.whole_playbook(scope)
    stage_ids, entered, exited = columns
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
    stays = _stays(scope, opportunities, **period)
    parts = parallel.split_by_id(stays, _PARALLEL_STAYS, 2 / 3)
    if parts is None:
        columns = rows.columns(stays, *_STAY_COLUMNS)
        cycle_to_won = _cycle_to_won(scope, opportunities, now, created)
    else:
        # Two thirds of the stays on a second connection; the other third and the cycle to won
        # (reads of deals and won stays, then numpy) here.
        low, cycle_to_won, high = parallel.run_reads(
            [
                lambda: rows.columns(parts[0], *_STAY_COLUMNS),
                lambda: _cycle_to_won(scope, opportunities, now, created),
                lambda: rows.columns(parts[1], *_STAY_COLUMNS),
            ],
            stays.db,
            parallel=True,
        )
        columns = [np.concatenate(both) for both in zip(low, high, strict=True)]
    by_key = _stays_by_key(scope, columns, [stage.key for stage in open_stages])
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
        "cycle_to_won": cycle_to_won,
    }


# Open deals as 1, the others (won, in `_cycle_to_won`) as 0: read as numbers, not as text.
_IS_OPEN = Case(
    When(status=Status.OPEN, then=Value(1)), default=Value(0), output_field=IntegerField()
)


def _cycle_to_won(
    scope: Scope, opportunities: Any, now: np.datetime64, created: dict[str, Any]
) -> dict[str, Any]:
    """Days from creation to won of the won deals in `scope` (created in `created`'s range), and
    the open ones' ages as censored observations (`opportunities`: `scope.opportunities()`).

    A won deal's moment is the end of its latest stay that ended in a win; a deal imported as
    already won has no such stay, and its first won history row is the moment. Both are read in
    bulk and matched to the deals in numpy: a lookup per won deal (two correlated subqueries)
    took most of the time at a million deals."""
    deals = opportunities
    if rows.whole_playbook(scope):
        # The playbook's versions as a subquery: SQLite then walks the (playbook, status) index
        # instead of the status index across every playbook (half the time at a million deals).
        versions = Playbook.objects.filter(key=scope.playbook.key).values("pk")
        deals = Opportunity.objects.filter(playbook__in=versions)
    deals = deals.filter(status__in=[Status.WON, Status.OPEN], **created)
    ids, is_open, created_at = rows.columns(deals, "pk", _IS_OPEN, "created_at")
    is_open = is_open.astype(bool)
    order = np.argsort(ids, kind="stable")
    ids, is_open, created_at = ids[order], is_open[order], created_at[order]
    won_at = np.full(ids.size, np.datetime64("NaT"), "datetime64[us]")
    won_stays = OpportunityStay.objects.filter(outcome=StayOutcome.WON, exited_at__isnull=False)
    if not rows.whole_playbook(scope):
        won_stays = won_stays.filter(opportunity__in=deals.filter(status=Status.WON).values("pk"))
    _latest(won_at, ids, ~is_open, *rows.columns(won_stays, "opportunity_id", "exited_at"))
    missing = ~is_open & np.isnat(won_at)
    if missing.any():
        won_rows = OpportunityHistory.objects.filter(
            opportunity__in=rows.id_set(ids[missing].tolist(), deals.db), status=Status.WON
        )
        deal_ids, moments = rows.columns(won_rows, "opportunity_id", "valid_from")
        # The earliest: the latest of the moments negated, in whole microseconds.
        earliest = np.full(ids.size, np.datetime64("NaT"), "datetime64[us]")
        _latest(earliest, ids, missing, deal_ids, moments, first=True)
        won_at[missing] = earliest[missing]
    won = ~is_open & ~np.isnat(won_at)
    ages = rows.days_between(created_at[is_open], now)
    cycles = rows.days_between(created_at[won], won_at[won])
    return {"completed": int(cycles.size), **_summary(cycles, ages)}


def _latest(
    into: rows.Moments,
    ids: npt.NDArray[np.int64],
    wanted: npt.NDArray[np.bool_],
    deal_ids: npt.NDArray[np.int64],
    moments: rows.Moments,
    *,
    first: bool = False,
) -> None:
    """Set `into[i]` to the latest (`first`: the earliest) of the `moments` of deal `ids[i]` (ids
    sorted), for the deals `wanted`; the others, and deals without a moment, are left alone."""
    micros = moments.astype("datetime64[us]").view(np.int64)
    at = np.searchsorted(ids, deal_ids)
    found = at < ids.size
    found[found] = ids[at[found]] == deal_ids[found]
    found[found] = wanted[at[found]]
    at, micros = at[found], micros[found]
    if not at.size:
        return
    best = np.full(ids.size, np.iinfo(np.int64).max if first else np.iinfo(np.int64).min)
    (np.minimum if first else np.maximum).at(best, at, micros)
    hit = np.zeros(ids.size, bool)
    hit[at] = True
    into[hit] = best[hit].view("datetime64[us]")


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

    Only the open stays that began before their stage's threshold are read (an index of the open
    stays by stage and entry: `stay_open_by_stage`), then the deals found stalled, in full."""
    now = rows.moment(clock.now())
    scope = Scope(
        actor=user,
        playbook=playbook,
        branch_ids=branch_ids,
        owner_id=owner_id,
        industry_id=industry_id,
    )
    names = {s.key: localized(s, "name") for s in _open_stages(playbook)}
    # The open stages of every version of the playbook: a deal on an older version still counts.
    stages = list(
        Stage.objects.filter(playbook__key=playbook.key, kind=StageKind.OPEN).order_by("pk")
    )
    needs_p80 = {stage.key for stage in stages if stage.max_days is None}
    p80 = stage_p80(user, playbook, needs_p80) if needs_p80 else {}
    thresholds: dict[int, tuple[float, str]] = {}
    for stage in stages:
        if stage.max_days is not None:
            thresholds[stage.pk] = (float(stage.max_days), "max_days")
        elif (historical := p80.get(stage.key)) is not None:
            thresholds[stage.pk] = (historical, "p80")
    deal_ids, stage_ids, entered = _overdue_stays(scope, thresholds, now)
    limit = np.array([thresholds[pk][0] for pk in stage_ids.tolist()], np.float64)
    days = rows.days_between(entered, now)
    over = days > limit  # the exact test; the read kept a second more, never less
    deal_ids, stage_ids, days, limit = deal_ids[over], stage_ids[over], days[over], limit[over]
    order = np.lexsort((deal_ids, -(days - limit)))  # most overdue first, then by id
    deal_ids, stage_ids, days, limit = deal_ids[order], stage_ids[order], days[order], limit[order]
    # Closed deals and deals outside the scope's playbook drop out here.
    shown, details = _deal_details(deal_ids, {stage.playbook_id for stage in stages})
    deal_ids, stage_ids, days, limit = deal_ids[shown], stage_ids[shown], days[shown], limit[shown]
    # Per stage: its key, its name and its threshold (rounded once).
    stage_of = {
        stage.pk: (stage.key, names.get(stage.key, stage.key), round(threshold, 1), source)
        for stage in stages
        if stage.pk in thresholds
        for threshold, source in [thresholds[stage.pk]]
    }
    found = [
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
            "amount": amount,
            "currency": currency,
            "close_date": close,
        }
        for pk, (key, stage_name, threshold_days, source), in_stage, threshold, (
            name,
            account,
            owner,
            amount,
            currency,
            close,
        ) in zip(
            deal_ids.tolist(),
            map(stage_of.__getitem__, stage_ids.tolist()),
            days.tolist(),
            limit.tolist(),
            details,
            strict=True,
        )
    ]
    return {
        "playbook": playbook.key,
        "as_of": clock.today().isoformat(),
        "deals": found,
    }


def _overdue_stays(
    scope: Scope, thresholds: dict[int, tuple[float, str]], now: np.datetime64
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], rows.Moments]:
    """(deal, stage, entered) of the open stays in the stages of `thresholds` that began more
    than the stage's threshold in days before `now`, plus a second: a superset of the stalled
    stays, which the caller tests exactly. One index range per stage (`UNION ALL`: SQLite reads
    each from the index alone, where an OR of ranges fetched every row from the table). For a
    narrower scope, its open deals are read apart and matched in numpy: inside the ranges their
    `IN` made SQLite run the scope's query once per stay (four times the whole read for a
    seller at a million deals)."""
    if not thresholds:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, "datetime64[us]")
    moment = rows.to_datetime(now)
    arms = [
        OpportunityStay.objects.filter(
            exited_at__isnull=True,
            stage_id=pk,
            entered_at__lt=moment - dt.timedelta(days=days, seconds=-1),
        )
        for pk, (days, _) in thresholds.items()
    ]
    deal_ids, stage_ids, entered = rows.columns(arms, "opportunity_id", "stage_id", "entered_at")
    if not rows.whole_playbook(scope):
        (mine,) = rows.columns(scope.opportunities().filter(status=Status.OPEN), "pk")
        keep = np.isin(deal_ids, mine)
        deal_ids, stage_ids, entered = deal_ids[keep], stage_ids[keep], entered[keep]
    return deal_ids, stage_ids, entered


def _deal_details(
    ids: npt.NDArray[np.int64], versions: set[int]
) -> tuple[npt.NDArray[np.bool_], list[tuple[Any, ...]]]:
    """Which deals of `ids` are open and on a playbook of `versions`, and for those, in the order
    of `ids`: (name, account name, owner's user name, amount, currency, close date), the amount
    and the date as the JSON shows them. The ids come from stays already kept to the scope's
    deals (`_overdue_stays`); the status and the playbook are checked here in numpy, since a
    filter on them would have SQLite walk their index over every open deal instead of looking
    up the ids."""
    deals = Opportunity.objects.filter(pk__in=rows.id_set(ids.tolist()))
    pks, status, playbook_ids, name, account, owner, cents, currency, close = rows.columns(
        deals,
        "pk",
        rows.Text("status"),
        "playbook_id",
        rows.Label("name"),
        rows.Label("account__name"),
        rows.Label("owner__username"),
        "amount",
        rows.Text("currency"),
        "close_date",
    )
    wanted = (status == Status.OPEN.encode()) & np.isin(playbook_ids, list(versions))
    by_id = np.argsort(pks)
    at = by_id[np.minimum(np.searchsorted(pks, ids, sorter=by_id), max(pks.size - 1, 0))]
    shown = np.zeros(ids.size, bool)
    if pks.size:
        shown = (pks[at] == ids) & wanted[at]
    at = at[shown]
    amounts = [
        f"{'-' if c < 0 else ''}{abs(c) // 100}.{abs(c) % 100:02d}" for c in cents[at].tolist()
    ]
    currencies = [code.decode() for code in currency[at].tolist()]
    closes = np.datetime_as_string(close[at], unit="D").tolist()
    details = list(zip(name[at], account[at], owner[at], amounts, currencies, closes, strict=True))
    return shown, details


def stage_p80(user: Any, playbook: Playbook, keys: Iterable[str]) -> dict[str, float | None]:
    """The p80 in days of the completed stays in each stage of `keys`, over the deals of the
    playbook `user` may see (None for a stage with no completed stay)."""
    wanted = list(dict.fromkeys(keys))
    scope = Scope(actor=user, playbook=playbook)
    stays = _stays(scope, scope.opportunities(), exited_at__isnull=False)
    by_key = _stays_by_key(scope, rows.columns(stays, *_STAY_COLUMNS), wanted)
    return {key: percentiles(rows.days_between(*by_key[key]))[1] for key in wanted}
