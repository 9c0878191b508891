"""Conversion per stage for a creation cohort: how many deals reached each stage, what became of
them, and three rates side by side, each named for what it assumes about the deals still open.

Definitions (DESIGN.md "Definitions the analytics must follow"; docs/analytics-conversion.md):

- **Cohort**: the opportunities in scope (visible to the user, of the playbook, in the branch and
  of the owner asked for) created in [from, to); by default from the earliest to tomorrow.
- **Stages**: the playbook's open stages in order, then its won stage. Stages are matched by key,
  so deals created under an older version of the playbook count in the stage of the same key.
- **Furthest stage F** of a deal: the latest stage it ever stayed in (from the stays table), or
  the won stage if it is won now. A deal **reached** stage s if F >= s: skipped stages count as
  reached and a stage visited twice counts once.
- For each open stage s, every deal that reached it is exactly one of: **advanced** (F > s),
  **lost here** (F == s and lost now), **open here** (F == s and open now). For the won stage,
  reached = won and the other three are 0 (nothing comes after it, so its rates are null).
- **naive** = advanced / reached: open deals counted as not converted (understates).
- **closed only** = advanced / (advanced + lost here): open deals ignored (favours fast closers).
- **censoring-aware** = the Aalen–Johansen cumulative incidence of advancing, with being lost here
  as the competing outcome and open deals right-censored. Clock: from the moment the deal first
  reached s (or a later stage); it ends when the deal first reached a later stage (advance), when
  it was lost (lost here: the end of its last stay), or now (open here: censored at that age).
  Null while no deal that reached s has advanced or been lost.
- **interval**: 90 % bootstrap interval of the censoring-aware estimate (400 resamples of the
  deals, numpy `default_rng(0)`, percentiles 5 and 95), clipped to [0, 1].
- **overall**: from creation to won: reached = the cohort, advanced = won, lost here = lost at any
  stage, open here = open; the censoring-aware estimate is won vs lost, clocked from creation.

Reads take two queries (the cohort, and its stays), each read as numbers straight from the cursor
(`rows.columns`: ids, status codes, datetimes as datetime64), then numpy.
"""

import datetime as dt
import warnings
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
from django.db.models import Case, IntegerField, Value, When
from django.utils import timezone

from loudou.analytics import rows
from loudou.analytics.models import OpportunityStay
from loudou.analytics.scope import narrow
from loudou.analytics.selectors import day_start
from loudou.core import clock
from loudou.pipeline.models import Opportunity, Status
from loudou.playbooks.models import Playbook, StageKind

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

CENSORED, ADVANCE, LOST = 0, 1, 2
SECONDS_PER_DAY = 86_400.0
RESAMPLES = 400
SEED = 0
PERCENTILES = (5.0, 95.0)
# The bootstrap draws this many cells (resamples × outcome cells) at a time, to bound memory.
_CHUNK_CELLS = 1_000_000


def _outcome_cells(
    durations: npt.ArrayLike, events: npt.ArrayLike
) -> tuple[IntArray, IntArray, IntArray, int]:
    """Deals grouped by (distinct duration, outcome): each cell's time rank, outcome and number of
    deals, and the number of distinct durations. The estimator needs nothing else."""
    t = np.asarray(durations, dtype=np.float64)
    e = np.asarray(events, dtype=np.int64)
    times, rank = np.unique(t, return_inverse=True)
    cells, counts = np.unique(rank.ravel() * 3 + e, return_counts=True)
    return cells // 3, cells % 3, counts.astype(np.int64), times.size


def _incidence(
    rank: IntArray, outcome: IntArray, counts: npt.NDArray[Any], n_times: int
) -> FloatArray:
    """Aalen–Johansen incidence of ADVANCE for each row of `counts` (deals per cell)."""
    rows = counts.shape[0]
    by_time = np.zeros((3, rows, n_times))
    by_time[outcome, :, rank] = counts.T
    censored, advanced, lost = by_time
    ended = advanced + lost
    leaving = censored + ended
    total = leaving.sum(axis=1)
    at_risk = total[:, None] - np.cumsum(leaving, axis=1) + leaving
    still_uncensored = at_risk - ended  # at risk of censoring at t, after the outcomes at t
    uncensored_after = still_uncensored - censored
    # 1 / G as a product of r / (r − c): exact for small counts (1.5, not 1 / 0.666…). Where
    # everyone left is censored nobody remains to advance later, so that factor does not matter.
    inverse_factor = np.divide(
        still_uncensored, uncensored_after, out=np.ones_like(censored), where=uncensored_after > 0
    )
    inverse_g_before = np.ones_like(censored)
    inverse_g_before[:, 1:] = np.cumprod(inverse_factor, axis=1)[:, :-1]
    with np.errstate(invalid="ignore", divide="ignore"):
        cif = (advanced * inverse_g_before).sum(axis=1) / total
    cif[ended.sum(axis=1) == 0] = np.nan
    return np.asarray(cif, dtype=np.float64)


def cumulative_incidence(durations: npt.ArrayLike, events: npt.ArrayLike) -> float:
    """Aalen–Johansen cumulative incidence of ADVANCE (competing outcome LOST; CENSORED deals are
    right-censored) at the last observed time. NaN when no deal has an outcome.

    Computed in its inverse-probability-of-censoring form, equal to the product-limit form
    (outcomes at a time come before censoring at the same time):
    CIF = (1 / N) × Σ over advances at t of 1 / G(t−), G the Kaplan–Meier curve of not being
    censored. With nothing censored G = 1 and the estimate is advances / N, the closed-only ratio,
    to the last bit.
    """
    if np.asarray(durations).size == 0:
        return float("nan")
    rank, outcome, counts, n_times = _outcome_cells(durations, events)
    return float(_incidence(rank, outcome, counts[None, :], n_times)[0])


def bootstrap_interval(
    durations: FloatArray, events: IntArray, *, resamples: int = RESAMPLES, seed: int = SEED
) -> tuple[float, float] | None:
    """90 % percentile interval of the censoring-aware estimate over `resamples` resamples of the
    deals with replacement, clipped to [0, 1]; resamples with no outcome at all are left out.

    A resample is drawn as multinomial counts of the deals' outcome cells (same distribution as
    drawing deals), on durations rounded to whole days: the cost then depends on the number of
    distinct days, not of deals. The point estimate keeps the exact times.
    """
    n = np.asarray(durations).size
    if n == 0 or resamples <= 0:
        return None
    rank, outcome, counts, n_times = _outcome_cells(np.round(durations), events)
    rng = np.random.default_rng(seed=seed)
    chunk = max(1, _CHUNK_CELLS // counts.size)
    estimates = []
    for first in range(0, resamples, chunk):
        drawn = rng.multinomial(n, counts / n, size=min(chunk, resamples - first))
        estimates.append(_incidence(rank, outcome, drawn, n_times))
    values = np.concatenate(estimates)
    if np.isnan(values).all():
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        lo, hi = np.nanpercentile(values, PERCENTILES)
    return float(np.clip(lo, 0.0, 1.0)), float(np.clip(hi, 0.0, 1.0))


def _rate(numerator: int, denominator: int) -> float | None:
    return round(numerator / denominator, 4) if denominator else None


def conversion_figures(
    *,
    advanced: int,
    lost_here: int,
    open_here: int,
    durations: FloatArray,
    events: IntArray,
    resamples: int = RESAMPLES,
) -> dict[str, Any]:
    """reached, advanced, lost_here, open_here and the three rates with the interval, for deals
    whose clocks (`durations`, days) end in `events` (ADVANCE, LOST or CENSORED)."""
    reached = advanced + lost_here + open_here
    estimate: float | None = None
    interval: list[float] | None = None
    if advanced + lost_here:
        value = float(np.clip(cumulative_incidence(durations, events), 0.0, 1.0))
        estimate = round(value, 4)
        bounds = bootstrap_interval(durations, events, resamples=resamples)
        interval = [round(bounds[0], 4), round(bounds[1], 4)] if bounds else None
    return {
        "reached": reached,
        "advanced": advanced,
        "lost_here": lost_here,
        "open_here": open_here,
        "naive": _rate(advanced, reached),
        "closed_only": _rate(advanced, advanced + lost_here),
        "censored_estimate": estimate,
        "interval": interval,
    }


_OPEN, _WON, _LOST, _OTHER = 0, 1, 2, 3
# The status as a number, computed in SQL so that the cohort is read as numbers only.
_STATUS_CODE = Case(
    When(status=Status.OPEN, then=Value(_OPEN)),
    When(status=Status.WON, then=Value(_WON)),
    When(status=Status.LOST, then=Value(_LOST)),
    default=Value(_OTHER),
    output_field=IntegerField(),
)


class _Cohort(NamedTuple):
    """The cohort's deals sorted by id, and their stays, as arrays (times in epoch seconds)."""

    ids: IntArray
    status: IntArray  # _OPEN, _WON, _LOST or _OTHER
    created: FloatArray
    first_created: dt.datetime | None  # the earliest creation (None: no deal)
    stay_deal: IntArray  # the position in `ids` of each stay's deal
    stay_stage: IntArray
    stage_keys: dict[int, str]  # the key of each stage in `stay_stage`
    entered: FloatArray
    exited: FloatArray  # NaN: the stay is still open


def _cohort(
    user: Any,
    playbook: Playbook,
    *,
    start: dt.datetime | None,
    end: dt.datetime,
    branch_ids: set[int] | None,
    owner_id: int | None,
    industry_id: int | None = None,
) -> _Cohort:
    """The cohort's deals (id, status, created) and their stays (deal, stage, entered, exited):
    two queries whatever the size of the cohort, read as numbers (`rows.columns`). The stages'
    keys come from the playbook's cache (a third query only for stays in older versions)."""
    filters = {"branch_ids": branch_ids, "owner_id": owner_id, "industry_id": industry_id}
    if start is None and rows.unrestricted(user, **filters):
        # The cohort is nearly every deal of the playbook: scans, without the indexes that SQLite
        # would walk row by row here, and the creation bound and the cohort's stays (all stays,
        # kept to the cohort below) checked in numpy. Half the time of the general reads.
        playbooks = Playbook.objects.filter(key=playbook.key).values_list("pk", flat=True)
        opps = rows.scan_in(Opportunity.objects.visible_to(user), "playbook_id", playbooks)
        stays = OpportunityStay.objects.all()
    else:
        opps = Opportunity.objects.visible_to(user).filter(
            playbook__key=playbook.key, created_at__lt=end
        )
        if start is not None:
            opps = opps.filter(created_at__gte=start)
        opps = narrow(opps, **filters)
        stays = OpportunityStay.objects.filter(opportunity__in=opps.values("pk"))
    ids, status, created = rows.columns(opps, "pk", _STATUS_CODE, "created_at")
    keep = np.argsort(ids, kind="stable")
    keep = keep[created[keep] < rows.moment(end)]
    ids, status, created = ids[keep], status[keep], created[keep]
    stay_opp, stay_stage, entered, exited = rows.columns(
        stays, "opportunity_id", "stage_id", "entered_at", "exited_at"
    )
    stay_deal = np.searchsorted(ids, stay_opp)
    mine = stay_deal < ids.size
    mine[mine] = ids[stay_deal[mine]] == stay_opp[mine]
    stay_stage = stay_stage[mine]
    stage_keys = {pk: stage.key for pk, stage in rows.stages_by_id(playbook, stay_stage).items()}
    return _Cohort(
        ids=ids,
        status=status,
        created=rows.seconds(created),
        first_created=rows.to_datetime(created.min()) if created.size else None,
        stay_deal=stay_deal[mine],
        stay_stage=stay_stage,
        stage_keys=stage_keys,
        entered=rows.seconds(entered[mine]),
        exited=rows.seconds(exited[mine]),
    )


def conversion_by_stage(
    user: Any,
    playbook: Playbook,
    *,
    date_from: dt.date | None = None,
    date_to: dt.date | None = None,
    branch_ids: set[int] | None = None,
    owner_id: int | None = None,
    industry_id: int | None = None,
    resamples: int = RESAMPLES,
) -> dict[str, Any]:
    """Per stage of the playbook, for the deals created in [date_from, date_to): reached, advanced,
    lost here, open here, and the naive, closed-only and censoring-aware (Aalen–Johansen) rates
    with a 90 % interval; and the same from creation to won ("overall"). See the module docstring.
    `resamples=0` skips the bootstrap (intervals null), e.g. to time the estimates alone.
    """
    date_to = date_to or clock.today() + dt.timedelta(days=1)
    if date_from is not None and date_from >= date_to:
        raise ValueError("the cohort's first day must come before its end")
    start = day_start(date_from) if date_from else None
    cohort = _cohort(
        user,
        playbook,
        start=start,
        end=day_start(date_to),
        branch_ids=branch_ids,
        owner_id=owner_id,
        industry_id=industry_id,
    )
    if date_from is None:
        first = cohort.first_created
        date_from = timezone.localdate(first) if first is not None else date_to
    stages = [s for s in playbook.ordered_stages() if s.kind == StageKind.OPEN]
    won_key = next((s.key for s in playbook.ordered_stages() if s.kind == StageKind.WON), "won")
    per_stage, overall = _figures(
        cohort,
        [s.key for s in stages],
        won_key=won_key,
        now=clock.now(),
        resamples=resamples,
    )
    return {
        "playbook": playbook.key,
        "cohort": {"from": date_from.isoformat(), "to": date_to.isoformat()},
        "stages": per_stage,
        "overall": overall,
    }


class _Deals(NamedTuple):
    """The cohort as arrays, one entry per deal (times in epoch seconds)."""

    created: FloatArray
    won: npt.NDArray[np.bool_]
    lost: npt.NDArray[np.bool_]
    is_open: npt.NDArray[np.bool_]
    furthest: IntArray  # furthest stage position reached (-1: none; len(keys): won)
    closed_at: FloatArray  # when a closed deal closed: the end of its last stay
    first: FloatArray  # first[:, k]: when the deal first stood at stage k or later


def _deal_arrays(cohort: _Cohort, keys: list[str]) -> _Deals:
    """Each deal's status, furthest stage and the moments it first reached each stage, from its
    stays (vectorised over stays with numpy's unbuffered `ufunc.at`)."""
    n_open = len(keys)
    position = {key: i for i, key in enumerate(keys)}
    ids, created, stay_deal = cohort.ids, cohort.created, cohort.stay_deal
    won = cohort.status == _WON
    stage_ids = np.array(sorted(cohort.stage_keys), np.int64)
    stage_pos = np.array([position.get(cohort.stage_keys[i], -1) for i in stage_ids], np.int64)
    stay_pos = stage_pos[np.searchsorted(stage_ids, cohort.stay_stage)]
    entered, exited = cohort.entered, cohort.exited
    known = stay_pos >= 0  # a stage the current version no longer has is left out

    furthest = np.full(ids.size, -1, np.int64)
    np.maximum.at(furthest, stay_deal[known], stay_pos[known])
    furthest[won] = n_open
    closed_at = np.full(ids.size, -np.inf)
    np.fmax.at(closed_at, stay_deal, exited)  # fmax skips the open stay's NaN
    closed_at = np.where(np.isfinite(closed_at), closed_at, created)
    first = np.full((ids.size, n_open + 1), np.inf)
    np.minimum.at(first, (stay_deal[known], stay_pos[known]), entered[known])
    first[won, n_open] = closed_at[won]
    first = np.minimum.accumulate(first[:, ::-1], axis=1)[:, ::-1]  # "at k or later"
    return _Deals(
        created=created,
        won=won,
        lost=cohort.status == _LOST,
        is_open=cohort.status == _OPEN,
        furthest=furthest,
        closed_at=closed_at,
        first=first,
    )


def _figures(
    cohort: _Cohort,
    keys: list[str],
    *,
    won_key: str,
    now: dt.datetime,
    resamples: int,
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The figures of each open stage of `keys` and of the won stage, then overall (vectorised
    over deals; the loop is over the stages)."""
    d = _deal_arrays(cohort, keys)
    now_s = now.timestamp()
    rows = []
    for k, key in enumerate(keys):
        reached = d.furthest >= k
        advanced, here = d.furthest > k, d.furthest == k
        # The clock runs from first reaching k to first reaching beyond it, losing, or now.
        ends = np.where(advanced, d.first[:, k + 1], np.where(d.is_open, now_s, d.closed_at))
        events = np.where(advanced, ADVANCE, np.where(here & d.lost, LOST, CENSORED))
        durations = np.maximum(ends - d.first[:, k], 0.0) / SECONDS_PER_DAY
        figures = conversion_figures(
            advanced=int(advanced.sum()),
            lost_here=int((here & d.lost).sum()),
            open_here=int((here & d.is_open).sum()),
            durations=durations[reached],
            events=events[reached].astype(np.int64),
            resamples=resamples,
        )
        rows.append({"key": key, **figures})
    won_count = int(d.won.sum())
    rows.append(
        {
            "key": won_key,
            "reached": won_count,
            "advanced": 0,
            "lost_here": 0,
            "open_here": 0,
            "naive": None,
            "closed_only": None,
            "censored_estimate": None,
            "interval": None,
        }
    )
    ends = np.where(d.is_open, now_s, d.closed_at)
    overall = conversion_figures(
        advanced=won_count,
        lost_here=int(d.lost.sum()),
        open_here=int(d.is_open.sum()),
        durations=np.maximum(ends - d.created, 0.0) / SECONDS_PER_DAY,
        events=np.where(d.won, ADVANCE, np.where(d.lost, LOST, CENSORED)).astype(np.int64),
        resamples=resamples,
    )
    return rows, overall
