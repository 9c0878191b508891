"""A creation cohort's deals and their stays as numpy arrays: what conversion reads.

Three queries whatever the size of the cohort (the deals; the largest ids of stages and deals;
the stays), and outside a transaction a fourth for the stays' ids, which splits a large read over
two connections; the deals and stays are each one aggregate query whose texts numpy parses, as
`rows.columns` does, with aggregates of this module's own: a stay's deal and stage come as one
integer, times as epoch seconds (on SQLite decoded from their texts with
lookup tables, an open stay's missing exit as a filler of the same width, so no column of NULL
flags; on PostgreSQL as integer microseconds). Outside a transaction, a large read runs partly in
a worker thread on a second connection (two thirds of the stays), so that it takes two cores
(`parallel`)."""

import datetime as dt
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt
from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.models import Case, F, IntegerField, Value, When

from loudou.analytics import parallel, rows
from loudou.analytics.models import OpportunityStay
from loudou.analytics.scope import Scope
from loudou.analytics.sqlite_times import NO_EXIT, sqlite_seconds
from loudou.pipeline.models import Opportunity, Status
from loudou.playbooks.models import Playbook, Stage

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

OPEN, WON, LOST, OTHER = 0, 1, 2, 3
# The status as a number, computed in SQL so that the cohort is read as numbers only.
_STATUS_CODE = Case(
    When(status=Status.OPEN, then=Value(OPEN)),
    When(status=Status.WON, then=Value(WON)),
    When(status=Status.LOST, then=Value(LOST)),
    default=Value(OTHER),
    output_field=IntegerField(),
)
# Stays are read with their deal and stage as one integer, deal × multiplier + stage (one
# aggregated column instead of two: each costs SQLite ~0.1 µs a row), when that stays under this.
_KEY_LIMIT = 2**62
# Reads spanning at least this many stay ids run on two connections at once (`parallel.run_reads`).
_PARALLEL_STAYS = 200_000


class Cohort(NamedTuple):
    """The cohort's deals sorted by id, and their stays, as arrays (times in epoch seconds)."""

    ids: IntArray
    status: IntArray  # OPEN, WON, LOST or OTHER
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


def read_cohort(
    user: Any,
    playbook: Playbook,
    *,
    start: dt.datetime | None,
    end: dt.datetime,
    branch_ids: set[int] | None,
    owner_id: int | None,
    industry_id: int | None = None,
) -> Cohort:
    """The cohort's deals (id, status, created) and their stays (deal, stage, entered, exited):
    three queries whatever the size of the cohort (the deals, the largest ids of stages and
    deals, the stays), outside a transaction one more for the stays' ids (`parallel.split_by_id`:
    read in two parts when they are many), the deals and stays each aggregated into texts that
    numpy parses. The stages' keys come from the playbook's cache (one more query only for
    stays in older versions)."""
    filters: rows.ScopeFilters = {
        "branch_ids": branch_ids,
        "owner_id": owner_id,
        "industry_id": industry_id,
    }
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
    multiplier = _multiplier(using)
    parts = parallel.split_by_id(stays, _PARALLEL_STAYS, 2 / 3)
    stay_columns: Sequence[npt.NDArray[Any]]  # deal, stage, entered, exited
    if parts is not None:
        # Two thirds of the stays in a worker thread; the deals (a third of the rows, each read
        # about like a stay) and the other third here.
        low, deals, high = parallel.run_reads(
            [
                lambda: _read_stays(parts[0], vendor, multiplier),
                lambda: _read_deals(opps, vendor),
                lambda: _read_stays(parts[1], vendor, multiplier),
            ],
            using,
            parallel=True,
        )
        stay_columns = [np.concatenate(both) for both in zip(low, high, strict=True)]
    else:
        deals = _read_deals(opps, vendor)
        stay_columns = _read_stays(stays, vendor, multiplier)
    ids, status, created = deals
    keep = np.argsort(ids, kind="stable")
    keep = keep[created[keep] < end.timestamp()]
    ids, status, created = ids[keep], status[keep], created[keep]
    stay_opp, stay_stage, entered, exited = stay_columns
    stay_deal = rows.id_positions(ids, stay_opp)
    mine = stay_deal >= 0
    stay_stage = stay_stage[mine]
    present = np.flatnonzero(np.bincount(stay_stage)) if stay_stage.size else stay_stage
    stage_keys = {pk: stage.key for pk, stage in rows.stages_by_id(playbook, present).items()}
    return Cohort(
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


def _multiplier(using: str) -> int | None:
    """The multiplier of the stays' deal in the key deal × multiplier + stage (None when such
    keys could overflow: deal and stage are then read apart). One query: each is the end of a
    primary key."""
    connection = connections[using]
    stage, deal = (connection.ops.quote_name(m._meta.db_table) for m in (Stage, Opportunity))
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT (SELECT MAX(id) FROM {stage}), (SELECT MAX(id) FROM {deal})")
        top_stage, top_deal = (value or 0 for value in cursor.fetchone())
    multiplier = top_stage + 1
    joined = (top_deal + 1) * multiplier < _KEY_LIMIT  # ids are positive
    return multiplier if joined else None


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
