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

Reads take three queries (the cohort; the largest ids of stages, deals and stays; the cohort's
stays, in two parts when read on two connections), each one aggregate query whose texts numpy parses, as `rows.columns` does, with aggregates
of this module's own: a stay's deal and stage come as one integer, times as epoch seconds (on
SQLite decoded from their texts with lookup tables, an open stay's missing exit as a filler of
the same width, so no column of NULL flags). Outside a transaction, a large read runs partly in a
worker thread on a second connection (two thirds of the stays), so that it takes two cores. Then
numpy.
"""

import datetime as dt
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.models import Case, F, IntegerField, Value, When
from django.utils import timezone

from loudou.analytics import parallel, rows
from loudou.analytics.models import OpportunityStay
from loudou.analytics.scope import Scope
from loudou.analytics.selectors import day_start
from loudou.analytics.sqlite_times import NO_EXIT, sqlite_seconds
from loudou.core import clock
from loudou.pipeline.models import Opportunity, Status
from loudou.playbooks.models import Playbook, Stage, StageKind

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
    rank, n_times = _time_ranks(t)
    # Counted rather than sorted (as `np.unique` would): the same cells in the same order.
    per_cell = np.bincount(rank * 3 + e, minlength=3 * n_times)
    cells = np.flatnonzero(per_cell)
    return cells // 3, cells % 3, per_cell[cells], n_times


def _time_ranks(t: FloatArray) -> tuple[IntArray, int]:
    """The rank of each duration among the distinct ones, and their number: `np.unique`'s inverse
    and size. Whole days (the bootstrap's rounded durations) are counted in one pass instead of
    sorted; ranks depend only on order and ties, so both ways give the same."""
    if t.size and np.isfinite(t).all() and t.min() >= 0 and t.max() < 4 * t.size + 100_000:
        days = t.astype(np.int64)
        if (days == t).all():
            present = np.bincount(days) > 0
            return (np.cumsum(present) - 1)[days], int(present.sum())
    times, rank = np.unique(t, return_inverse=True)
    return rank.ravel(), times.size


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


_OPEN, _WON, _LOST, _OTHER = 0, 1, 2, 3
# The status as a number, computed in SQL so that the cohort is read as numbers only.
_STATUS_CODE = Case(
    When(status=Status.OPEN, then=Value(_OPEN)),
    When(status=Status.WON, then=Value(_WON)),
    When(status=Status.LOST, then=Value(_LOST)),
    default=Value(_OTHER),
    output_field=IntegerField(),
)
# Stays are read with their deal and stage as one integer, deal × multiplier + stage (one
# aggregated column instead of two: each costs SQLite ~0.1 µs a row), when that stays under this.
_KEY_LIMIT = 2**62
# Reads spanning at least this many stay ids run on two connections at once (`parallel.run_reads`).
_PARALLEL_STAYS = 200_000
# Cohorts of at least this many deals have their figures and intervals computed on two threads.
_THREADED_DEALS = 50_000


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


def _aggregated(qs: Any, fields: dict[str, Any], outer: list[str]) -> tuple[Any, ...] | None:
    """One aggregate query over the rows of `qs`: `fields` (alias: field name or expression) are
    selected by the ORM's own SQL, wrapped as `rows_`, and `outer` are the aggregates over them
    (SQL with `{alias}` for each column). The row of COUNT(*) then the aggregates (texts as bytes
    on SQLite); None when the
    queryset can match nothing (`.none()`). As `rows.columns`, but the aggregates are this
    module's: fewer columns, and times read as the figures need them."""
    qs = qs.order_by().annotate(
        **{alias: F(f) if isinstance(f, str) else f for alias, f in fields.items()}
    )
    qs = qs.values_list(*fields)
    connection = connections[qs.db]
    try:
        inner, params = qs.query.get_compiler(using=qs.db).as_sql()
    except EmptyResultSet:
        return None
    names = {alias: f"rows_.{connection.ops.quote_name(alias)}" for alias in fields}
    sql = ", ".join(part.format(**names) for part in outer)
    with connection.cursor() as cursor:
        if connection.vendor != "sqlite":
            cursor.execute(f"SELECT COUNT(*), {sql} FROM ({inner}) rows_", params)
            return cursor.fetchone()
        # SQLite's texts as bytes: numpy reads those without decoding and encoding them again.
        driver = connection.connection
        text_factory, driver.text_factory = driver.text_factory, bytes
        try:
            cursor.execute(f"SELECT COUNT(*), {sql} FROM ({inner}) rows_", params)
            return cursor.fetchone()
        finally:
            driver.text_factory = text_factory


def _integers(text: bytes | str | None, size: int) -> IntArray:
    """Comma-separated integers (C-speed `fromstring`); exactly `size` of them or ValueError."""
    values = np.fromstring(text, dtype=np.int64, sep=",") if text else np.empty(0, np.int64)
    if values.size != size:  # a value numpy could not read: fail, never misalign
        raise ValueError(f"read {values.size} values of {size} from the database")
    return values


def _id_positions(ids: IntArray, wanted: IntArray) -> IntArray:
    """The position in sorted `ids` of each of `wanted`, −1 where it is not there: through a
    table indexed by id when the ids are not much sparser than the values looked up (one gather),
    else by binary search."""
    if not ids.size:
        return np.full(wanted.size, -1, np.int64)
    top = int(ids[-1])
    if int(ids[0]) >= 0 and top < 4 * (ids.size + wanted.size) + 1024:
        table = np.full(top + 2, -1, np.int64)  # the last entry: any id beyond `top`
        table[ids] = np.arange(ids.size)
        return table[np.clip(wanted, 0, top + 1)]
    found = np.minimum(np.searchsorted(ids, wanted), ids.size - 1)
    return np.where(ids[found] == wanted, found, -1)


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
    three queries whatever the size of the cohort (the deals, the largest ids of stages, deals and
    stays, the stays; four when the stays are read in two parts, see `parallel`), each
    aggregated into texts that numpy parses. The stages' keys come from
    the playbook's cache (a fourth query only for stays in older versions)."""
    filters = {"branch_ids": branch_ids, "owner_id": owner_id, "industry_id": industry_id}
    if start is None and rows.unrestricted(user, **filters):
        # The cohort is nearly every deal of the playbook: scans, without the indexes that SQLite
        # would walk row by row here, and the creation bound and the cohort's stays (all stays,
        # kept to the cohort below) checked in numpy. Half the time of the general reads.
        playbooks = Playbook.objects.filter(key=playbook.key).values_list("pk", flat=True)
        opps = rows.scan_in(Opportunity.objects.visible_to(user), "playbook_id", playbooks)
        stays = OpportunityStay.objects.all()
    else:
        scope = Scope(actor=user, playbook=playbook, **filters)
        opps = scope.opportunities().filter(created_at__lt=end)
        if start is not None:
            opps = opps.filter(created_at__gte=start)
        stays = OpportunityStay.objects.filter(opportunity__in=opps.values("pk"))
    using = opps.db
    vendor = connections[using].vendor
    multiplier, stay_ids = _bounds(using)
    reads: list[Callable[[], Any]] = [lambda: _read_deals(opps, vendor)]
    two = stay_ids[1] - stay_ids[0] >= _PARALLEL_STAYS
    if two and not connections[using].in_atomic_block:
        # Two thirds of the stays in a worker thread; the deals (a third of the rows, each read
        # about like a stay) and the other third here. The two parts split by id.
        cut = stay_ids[0] + (stay_ids[1] - stay_ids[0]) * 2 // 3
        parts = [stays.filter(pk__lt=cut), stays.filter(pk__gte=cut)]
        reads = [
            lambda: _read_stays(parts[0], vendor, multiplier),
            *reads,
            lambda: _read_stays(parts[1], vendor, multiplier),
        ]
        low, deals, high = parallel.run_reads(reads, using, parallel=True)
        stay_columns = [np.concatenate(both) for both in zip(low, high, strict=True)]
    else:
        deals, stay_columns = parallel.run_reads(
            [*reads, lambda: _read_stays(stays, vendor, multiplier)], using, parallel=False
        )
    ids, status, created = deals
    keep = np.argsort(ids, kind="stable")
    keep = keep[created[keep] < end.timestamp()]
    ids, status, created = ids[keep], status[keep], created[keep]
    stay_opp, stay_stage, entered, exited = stay_columns
    stay_deal = _id_positions(ids, stay_opp)
    mine = stay_deal >= 0
    stay_stage = stay_stage[mine]
    present = np.flatnonzero(np.bincount(stay_stage)) if stay_stage.size else stay_stage
    stage_keys = {pk: stage.key for pk, stage in rows.stages_by_id(playbook, present).items()}
    return _Cohort(
        ids=ids,
        status=status,
        created=created,
        first_created=_datetime(created.min()) if created.size else None,
        stay_deal=stay_deal[mine],
        stay_stage=stay_stage,
        stage_keys=stage_keys,
        entered=entered[mine],
        exited=exited[mine],
    )


def _read_deals(opps: Any, vendor: str) -> tuple[IntArray, IntArray, FloatArray]:
    """Ids, status codes and creation (epoch seconds) of the deals of `opps`, in no order."""
    fields = {"id_": "pk", "status_": _STATUS_CODE, "created_": "created_at"}
    if vendor == "postgresql":
        outer = [
            "string_agg({id_}::text, ',')",
            "string_agg({status_}::text, ',')",
            f"string_agg(({rows.pg_micros('{created_}')})::text, ',')",
        ]
    else:
        outer = ["group_concat({id_})", "group_concat({status_})", "group_concat({created_})"]
    row = _aggregated(opps, fields, outer)
    if row is None:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0)
    size, ids, status, created = row
    times = _pg_seconds(created, size) if vendor == "postgresql" else sqlite_seconds(created, size)
    return _integers(ids, size), _integers(status, size), times


def _bounds(using: str) -> tuple[int | None, tuple[int, int]]:
    """The multiplier of the stays' deal in the key deal × multiplier + stage (None when such
    keys could overflow: deal and stage are then read apart), and the smallest and largest stay
    ids. One query: each is the end of a primary key."""
    connection = connections[using]
    table = {
        model: connection.ops.quote_name(model._meta.db_table)
        for model in (Stage, Opportunity, OpportunityStay)
    }
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT MAX(id) FROM {table[Stage]}), (SELECT MAX(id) FROM "
            f"{table[Opportunity]}), (SELECT MIN(id) FROM {table[OpportunityStay]}), "
            f"(SELECT MAX(id) FROM {table[OpportunityStay]})"
        )
        top_stage, top_deal, first_stay, last_stay = (value or 0 for value in cursor.fetchone())
    multiplier = top_stage + 1
    joined = (top_deal + 1) * multiplier < _KEY_LIMIT  # ids are positive
    return (multiplier if joined else None), (first_stay, last_stay)


def _read_stays(
    stays: Any, vendor: str, multiplier: int | None
) -> tuple[IntArray, IntArray, FloatArray, FloatArray]:
    """Deal, stage, entry and exit (epoch seconds, NaN while open) of the stays of `stays`, the
    deal and stage read as one key deal × `multiplier` + stage unless `multiplier` is None."""
    fields = {
        "deal_": "opportunity_id",
        "stage_": "stage_id",
        "entered_": "entered_at",
        "exited_": "exited_at",
    }
    if vendor == "postgresql":
        key = [f"string_agg(({{deal_}} * {multiplier} + {{stage_}})::text, ',')"]
        ids = ["string_agg({deal_}::text, ',')", "string_agg({stage_}::text, ',')"]
        times = [
            f"string_agg(({rows.pg_micros('{entered_}')})::text, ',')",
            f"string_agg(COALESCE({rows.pg_micros('{exited_}')}, {_PG_NO_EXIT})::text, ',')",
        ]
    else:
        key = [f"group_concat({{deal_}} * {multiplier} + {{stage_}})"]
        ids = ["group_concat({deal_})", "group_concat({stage_})"]
        times = [
            "group_concat({entered_})",
            # ifnull computes the filler only for the open stays.
            f"group_concat(ifnull({{exited_}}, substr('{NO_EXIT}', 1, length({{entered_}}))))",
        ]
    row = _aggregated(stays, fields, (ids if multiplier is None else key) + times)
    if row is None:
        return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0), np.empty(0)
    size, *texts = row
    if multiplier is not None:
        keys = _integers(texts.pop(0), size)
        deal = keys // multiplier
        stage = keys - deal * multiplier
    else:
        deal, stage = _integers(texts.pop(0), size), _integers(texts.pop(0), size)
    parse = _pg_seconds if vendor == "postgresql" else sqlite_seconds
    return deal, stage, parse(texts[0], size), parse(texts[1], size)


#: PostgreSQL: the microseconds standing for "no exit yet" (an open stay), below any timestamp's
#: (PostgreSQL's earliest, 4714 BC, is about −2.1 × 10¹⁷).
_PG_NO_EXIT = -(2**62)


def _pg_seconds(text: str | None, size: int) -> FloatArray:
    """Epoch seconds (NaN for `_PG_NO_EXIT`) from PostgreSQL's comma-separated microseconds.
    The microseconds / 10⁶, correctly rounded, is the float `date_part('epoch', …)` gives, read
    as integers: numpy parses those ten times faster than floats."""
    micros = _integers(text, size)
    seconds = micros / 1e6
    seconds[micros == _PG_NO_EXIT] = np.nan
    return seconds


def _datetime(seconds: float) -> dt.datetime:
    """Epoch seconds as read here back to the exact aware datetime (UTC): of the microseconds
    around seconds × 10⁶, the one whose division by 10⁶ gives these seconds (below the year 2242
    no two microseconds share a float, as `rows` explains)."""
    guess = round(float(seconds) * 1e6)
    micros = next(
        (m for m in (guess, guess - 1, guess + 1, guess - 2, guess + 2) if m / 1e6 == seconds),
        guess,
    )
    return rows.to_datetime(np.datetime64(micros, "us"))


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
    first: FloatArray  # first[k]: when each deal first stood at stage k or later


def _deal_arrays(cohort: _Cohort, keys: list[str]) -> _Deals:
    """Each deal's status, furthest stage and the moments it first reached each stage, from its
    stays (vectorised over stays with numpy's unbuffered `ufunc.at`, on one-dimensional indexes:
    numpy runs those several times faster than a pair of index arrays or `fmax`)."""
    n_open = len(keys)
    position = {key: i for i, key in enumerate(keys)}
    ids, created, stay_deal = cohort.ids, cohort.created, cohort.stay_deal
    won = cohort.status == _WON
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
