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

The cohort's deals and stays are read as numpy arrays by `cohorts.read_cohort` (three queries
whatever its size); the figures are then computed in numpy, vectorised over deals.
"""

import datetime as dt
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
from django.utils import timezone

from loudou.analytics import cohorts
from loudou.analytics.selectors import day_start
from loudou.core import clock
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
    t = np.asarray(durations, dtype=np.float64).ravel()
    e = np.asarray(events, dtype=np.int64).ravel()
    if e.size and not (e.min() >= 0 and e.max() <= 2):
        raise ValueError("events are CENSORED, ADVANCE or LOST")
    if _whole_days(t):
        rank, n_times = _day_ranks(t)
    else:
        sorted_cells = _sorted_cells(t, e)
        if sorted_cells is not None:
            return sorted_cells
        rank, n_times = _unique_ranks(t)
    # Counted rather than sorted (as `np.unique` would): the same cells in the same order.
    per_cell = np.bincount(rank * 3 + e, minlength=3 * n_times)
    cells = np.flatnonzero(per_cell)
    return cells // 3, cells % 3, per_cell[cells], n_times


def _whole_days(t: FloatArray) -> bool:
    """Whether every duration is a whole number of days, few enough to count (the bootstrap's
    rounded durations)."""
    return bool(
        t.size
        and np.isfinite(t).all()
        and t.min() >= 0
        and t.max() < 4 * t.size + 100_000
        and (t.astype(np.int64) == t).all()
    )


def _day_ranks(t: FloatArray) -> tuple[IntArray, int]:
    """The rank of each duration among the distinct ones, and their number (`np.unique`'s
    inverse and size), for whole days (`_whole_days`): counted in one pass instead of sorted;
    ranks depend only on order and ties, so both ways give the same."""
    days = t.astype(np.int64)
    present = np.bincount(days) > 0
    return (np.cumsum(present) - 1)[days], int(present.sum())


def _unique_ranks(t: FloatArray) -> tuple[IntArray, int]:
    """`_day_ranks` of any durations, by sorting them."""
    times, rank = np.unique(t, return_inverse=True)
    return rank.ravel(), times.size


# Durations (days) that `_sorted_cells` packs with their outcome into one integer: 0, or from
# 2⁻⁴⁰ (under a microsecond, less than two moments of a stay can differ by) to 2¹⁷ (359 years).
# Over that range a positive double's bits, read as an integer, keep the order of the values and
# span 57 × 2⁵² < 2⁵⁸ integers, which leaves two bits for the outcome.
_PACKED_LOW = 2.0**-40
_PACKED_HIGH = 2.0**17
_PACKED_BASE = np.float64(_PACKED_LOW).view(np.int64) - 1  # 2⁻⁴⁰ packs as 1, zero as 0


def _sorted_cells(t: FloatArray, e: IntArray) -> tuple[IntArray, IntArray, IntArray, int] | None:
    """`_outcome_cells` by one sort of integers (duration's bits, then outcome) instead of
    `np.unique`'s sort of indexes, a fifth of its time at a million deals; None when a duration
    lies outside the packed range (the general way then)."""
    if not t.size:
        return None
    positive = t > 0
    inside = t[positive]
    if inside.size and (inside.min() < _PACKED_LOW or not inside.max() < _PACKED_HIGH):
        return None  # (NaN fails the second test)
    if (~positive).any() and not (t[~positive] == 0).all():
        return None  # negative or NaN
    bits = np.where(positive, t.view(np.int64) - _PACKED_BASE, 0)
    packed = np.sort((bits << 2) | e)
    starts = np.flatnonzero(np.r_[True, packed[1:] != packed[:-1]])
    cells = packed[starts]
    times = cells >> 2
    rank = np.cumsum(np.r_[True, times[1:] != times[:-1]]) - 1
    counts = np.diff(np.r_[starts, packed.size])
    return rank, cells & 3, counts, int(rank[-1]) + 1


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
    values = values[~np.isnan(values)]  # what nanpercentile reads, without its warnings
    if not values.size:
        return None
    lo, hi = np.percentile(values, PERCENTILES)
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


# Cohorts of at least this many deals have their figures and intervals computed on two threads.
_THREADED_DEALS = 50_000


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
    cohort = cohorts.read_cohort(
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
    first: FloatArray  # first[k]: when each deal first stood at stage k or later


def _deal_arrays(cohort: cohorts.Cohort, keys: list[str]) -> _Deals:
    """Each deal's status, furthest stage and the moments it first reached each stage, from its
    stays (vectorised over stays with numpy's unbuffered `ufunc.at`, on one-dimensional indexes:
    numpy runs those several times faster than a pair of index arrays or `fmax`)."""
    n_open = len(keys)
    position = {key: i for i, key in enumerate(keys)}
    ids, created, stay_deal = cohort.ids, cohort.created, cohort.stay_deal
    won = cohort.status == cohorts.WON
    stage_pos = np.full(max(cohort.stage_keys, default=0) + 1, -1, np.int64)
    for pk, key in cohort.stage_keys.items():
        stage_pos[pk] = position.get(key, -1)
    stay_pos = stage_pos[cohort.stay_stage]
    entered, exited = cohort.entered, cohort.exited
    known = stay_pos >= 0  # a stage the current version no longer has is left out

    furthest = np.full(ids.size, -1, np.int64)
    np.maximum.at(furthest, stay_deal[known], stay_pos[known])
    furthest[won] = n_open
    closed_at = np.full(ids.size, -np.inf)
    # The open stay's NaN exit counts as −inf: skipped, as `fmax` would.
    np.maximum.at(closed_at, stay_deal, np.where(np.isnan(exited), -np.inf, exited))
    closed_at = np.where(np.isfinite(closed_at), closed_at, created)
    # One row per stage, so that each stage's moments are contiguous.
    first = np.full((n_open + 1, ids.size), np.inf)
    cell = stay_pos[known] * ids.size + stay_deal[known]
    np.minimum.at(first.reshape(-1), cell, entered[known])
    first[n_open, won] = closed_at[won]
    for k in range(n_open - 1, -1, -1):  # "at k or later"
        np.minimum(first[k], first[k + 1], out=first[k])
    return _Deals(
        created=created,
        won=won,
        lost=cohort.status == cohorts.LOST,
        is_open=cohort.status == cohorts.OPEN,
        furthest=furthest,
        closed_at=closed_at,
        first=first,
    )


def _figures(
    cohort: cohorts.Cohort,
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

    def stage(k: int, key: str) -> dict[str, Any]:
        reached = np.flatnonzero(d.furthest >= k)
        furthest, is_open, lost = d.furthest[reached], d.is_open[reached], d.lost[reached]
        advanced, here = furthest > k, furthest == k
        # The clock runs from first reaching k to first reaching beyond it, losing, or now.
        ends = np.where(
            advanced, d.first[k + 1][reached], np.where(is_open, now_s, d.closed_at[reached])
        )
        events = np.where(advanced, ADVANCE, np.where(here & lost, LOST, CENSORED))
        durations = np.maximum(ends - d.first[k][reached], 0.0) / SECONDS_PER_DAY
        figures = conversion_figures(
            advanced=int(advanced.sum()),
            lost_here=int((here & lost).sum()),
            open_here=int((here & is_open).sum()),
            durations=durations,
            events=events.astype(np.int64),
            resamples=resamples,
        )
        return {"key": key, **figures}

    won_count = int(d.won.sum())

    def whole() -> dict[str, Any]:
        ends = np.where(d.is_open, now_s, d.closed_at)
        return conversion_figures(
            advanced=won_count,
            lost_here=int(d.lost.sum()),
            open_here=int(d.is_open.sum()),
            durations=np.maximum(ends - d.created, 0.0) / SECONDS_PER_DAY,
            events=np.where(d.won, ADVANCE, np.where(d.lost, LOST, CENSORED)).astype(np.int64),
            resamples=resamples,
        )

    if resamples and d.won.size >= _THREADED_DEALS:
        # The stages and the whole on two threads, each with its bootstrap: the draws and the
        # sorts release Python's lock, and no figure depends on another (each bootstrap seeds
        # its own generator). Without the bootstrap, two threads gained nothing at L.
        with ThreadPoolExecutor(max_workers=2) as pool:
            overall_later = pool.submit(whole)
            rows = list(pool.map(stage, range(len(keys)), keys))
            overall = overall_later.result()
    else:
        rows = [stage(k, key) for k, key in enumerate(keys)]
        overall = whole()
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
    return rows, overall
