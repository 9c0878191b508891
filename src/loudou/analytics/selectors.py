"""Reads for the funnel. Everything here is computed from opportunity history (DESIGN.md rule 3),
through the state spans derived from it, and restricted by the visibility rule."""

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from typing import Any, NamedTuple

import numpy as np
from django.db import connection
from django.db.models import (
    BigIntegerField,
    Count,
    DateTimeField,
    F,
    Func,
    OuterRef,
    Q,
    Subquery,
    Sum,
)
from django.db.models.functions import Cast, Round
from django.db.models.lookups import LessThanOrEqual

from loudou.analytics import parallel
from loudou.analytics.models import OPEN_ENDED, StateSpan
from loudou.analytics.rows import ScopeFilters, Text, columns, unrestricted
from loudou.analytics.scope import narrow
from loudou.core import clock
from loudou.core.i18n import localized
from loudou.customers.models import Account, AccountQualification
from loudou.pipeline.models import Opportunity, Status
from loudou.playbooks.models import Playbook, Stage, StageKind

ZERO = Decimal("0.00")


def day_start(day: dt.date) -> dt.datetime:
    """The first instant of `day` in the installation's time zone."""
    from django.utils import timezone

    return timezone.make_aware(dt.datetime.combine(day, dt.time.min))


def end_of_day(day: dt.date) -> dt.datetime:
    """The last instant of `day` in the installation's time zone (as-of dates mean end of day)."""
    from django.utils import timezone

    start_next = dt.datetime.combine(day + dt.timedelta(days=1), dt.time.min)
    return timezone.make_aware(start_next) - dt.timedelta(microseconds=1)


class State(NamedTuple):
    """An opportunity's tracked fields in force at some moment (from its history)."""

    opportunity_id: int
    stage_key: str
    status: str
    amount: Decimal
    probability: int
    close_date: dt.date
    owner_id: int


def scoped_spans(
    user: Any,
    playbook_key: str,
    *,
    branch_ids: set[int] | None = None,
    owner_id: int | None = None,
    industry_id: int | None = None,
) -> Any:
    """The state spans of the visible opportunities of the playbook (any version) in scope. The
    opportunities are joined only when the visibility rule or a filter needs them; otherwise the
    playbook column of the spans suffices and a read stays inside the `span_in_force` index."""
    playbook_ids = list(Playbook.objects.filter(key=playbook_key).values_list("pk", flat=True))
    spans = StateSpan.objects.filter(playbook_id__in=playbook_ids).order_by()
    filters: ScopeFilters = {
        "branch_ids": branch_ids,
        "owner_id": owner_id,
        "industry_id": industry_id,
    }
    if unrestricted(user, **filters):
        return spans
    opps = narrow(Opportunity.objects.visible_to(user), **filters)
    return spans.filter(opportunity_id__in=opps.values("pk"))


def began_by(at: dt.datetime) -> Any:
    """The condition `valid_from <= at`, to be checked on each span of a range of `valid_to`
    rather than searched by. On SQLite it is written `+valid_from <= at`: the unary plus (SQLite's
    documented way) keeps the term out of the choice of index. Without statistics SQLite weighs
    the range "every span begun by `at`" of the `span_started` index (nearly all spans) as no
    worse than the range of `valid_to` these reads are built on, and took it for the spans in
    force now: every span of the playbook, each fetched from the table."""
    if connection.vendor == "sqlite":
        unindexed = Func(F("valid_from"), template="+%(expressions)s", output_field=DateTimeField())
        return LessThanOrEqual(unindexed, at)
    return Q(valid_from__lte=at)


def spans_in_force(user: Any, playbook_key: str, at: dt.datetime, **filters: Any) -> Any:
    """The spans in force at `at` (`valid_from <= at < valid_to`) of the opportunities in scope
    (`scoped_spans`): one per opportunity that existed then, an index range."""
    return scoped_spans(user, playbook_key, **filters).filter(began_by(at), valid_to__gt=at)


def current_spans() -> Q:
    """The condition "still in force" for a read of the `span_in_force` index. On PostgreSQL it
    is written as a range (`>=`; nothing lies beyond OPEN_ENDED) so that the planner reads the
    covering index instead of the partial unique index on current spans, whose rows it would
    then fetch one by one (38 ms against 5 ms for the weighted forecast at 100k deals)."""
    if connection.vendor == "postgresql":
        return Q(valid_to__gte=OPEN_ENDED)
    return Q(valid_to=OPEN_ENDED)


def open_now() -> Q:
    """The condition "open, and still in force", written as the `span_open_now` index's own
    condition: a database uses a partial index only for a query that repeats its condition
    (SQLite term by term), so reads of the open pipeline as it is now name it this way."""
    return Q(valid_to=OPEN_ENDED, status=Status.OPEN)


def stage_keys(playbook_key: str) -> dict[int, str]:
    """Stage id → stage key for every version of the playbook (stages match by key)."""
    return dict(Stage.objects.filter(playbook__key=playbook_key).values_list("pk", "key"))


def states_at(
    user: Any,
    playbook_key: str,
    at: dt.datetime,
    *,
    branch_ids: set[int] | None = None,
    owner_id: int | None = None,
    industry_id: int | None = None,
    open_in: str | None = None,
) -> list[State]:
    """For each visible opportunity of the playbook that existed at `at`, its tracked fields in
    force then (its latest history row with `valid_from <= at`, read from the state spans).
    `open_in`: only the deals open in the stage of that key."""
    spans = spans_in_force(
        user, playbook_key, at, branch_ids=branch_ids, owner_id=owner_id, industry_id=industry_id
    )
    keys = stage_keys(playbook_key)
    if open_in is not None:
        spans = spans.filter(
            status=Status.OPEN, stage_id__in=[pk for pk, key in keys.items() if key == open_in]
        )
    # Plain tuples: building model instances cost ten times the query itself.
    rows = spans.values_list(
        "opportunity_id", "stage_id", "status", "amount", "probability", "close_date", "owner_id"
    )
    return [State(row[0], keys[row[1]], *row[2:]) for row in rows]


def in_cents(column: str) -> Any:
    """An amount column as whole cents in SQL: exact integer sums on every database (SQLite keeps
    decimals as binary floats, whose sums drift).

    On SQLite written by hand: the ORM's `Cast(Round(...))` wraps the product in two casts to
    NUMERIC that change no value (SQLite casts a number to NUMERIC as it is) but cost a sixth of
    a funnel's time over a million spans."""
    if connection.vendor == "sqlite":
        return Func(
            F(column),
            template="CAST(ROUND(%(expressions)s * 100) AS INTEGER)",
            output_field=BigIntegerField(),
        )
    return Cast(Round(F(column) * 100), BigIntegerField())


def cents_sum(column: str) -> Any:
    """The sum of an amount column in whole cents, exact on every database (an integer; NULL
    over no rows). SQLite sums each amount's cents (it keeps decimals as binary floats, whose
    sums drift); PostgreSQL sums the exact numerics and multiplies once: rounding every row to
    cents first took most of a weighted forecast's time there."""
    if connection.vendor == "sqlite":
        return Sum(in_cents(column))
    return Cast(Sum(column) * 100, BigIntegerField())


# Span tables whose ids span at least this many are summed on two connections (`funnel_totals`).
_PARALLEL_SPANS = 200_000


def funnel_totals(
    user: Any, playbook_key: str, at: dt.datetime, **filters: Any
) -> dict[tuple[str, str], tuple[int, Decimal, Decimal]]:
    """(stage key, status) → (deals, amount, weighted amount) of the deals in scope at `at`,
    summed exactly over the spans in force (grouped by probability too, so the weighted amount
    is an exact sum of amount × probability / 100).

    Two sums: the spans still in force today, which the `span_in_force` index hands over already
    grouped, so SQL sums them without a sort however many deals there are; and the spans that
    were in force at `at` but ended since, a range of `valid_to` that is short for recent dates
    (empty for now). Those come out of the index in order of valid_to, so SQLite would sort them
    to group them: they are read as numpy columns and grouped there instead.

    On a large table, outside a transaction, the reads share two connections (`parallel`): on
    SQLite the lost deals' spans still in force (most of them, in a company some years old) are
    summed on the second while the first sums the rest (statuses are ranges of the index, so
    each part reads only its own); on PostgreSQL the spans still in force on the second while
    the first reads those that ended after a past date."""
    keys = stage_keys(playbook_key)
    spans = scoped_spans(user, playbook_key, **filters).filter(began_by(at))

    def current(*statuses: str) -> Any:
        still = spans.filter(current_spans())
        return list(
            (still.filter(status__in=statuses) if statuses else still)
            .values_list("status", "stage_id", "probability")
            .annotate(deals=Count("*"), cents=cents_sum("amount"))
        )

    def ended() -> Any:
        return _grouped(spans.filter(valid_to__gt=at, valid_to__lt=OPEN_ENDED))

    postgresql_now = connection.vendor == "postgresql" and at >= clock.now()
    if postgresql_now or not parallel.worth_two_connections(StateSpan, spans.db, _PARALLEL_SPANS):
        parts = [current(), ended()]
    elif connection.vendor == "sqlite":
        reads = [lambda: current(Status.LOST), lambda: current(Status.OPEN, Status.WON), ended]
        parts = parallel.run_reads(reads, spans.db, parallel=True)
    else:
        # PostgreSQL sums the spans in force on parallel workers of its own, and given a list
        # of statuses filters the whole range rather than seeking each: the spans that ended
        # after a past date are read beside it (for now there are none: one connection).
        parts = parallel.run_reads([current, ended], spans.db, parallel=True)
    groups: list[tuple[str, int, int, int, int]] = [group for part in parts for group in part]
    totals: dict[tuple[str, str], tuple[int, Decimal, Decimal]] = {}
    for status, stage_id, probability, deals, cents in groups:
        key = (keys[stage_id], status)
        count, amount, weighted = totals.get(key, (0, ZERO, ZERO))
        totals[key] = (
            count + deals,
            amount + Decimal(cents).scaleb(-2),
            weighted + Decimal(cents * probability).scaleb(-4),
        )
    return totals


def _grouped(spans: Any) -> list[tuple[str, int, int, int, int]]:
    """(status, stage id, probability, deals, cents) for each group of `spans`, as the SQL
    `GROUP BY` of `funnel_totals` gives them, computed from numpy columns (exact integer
    cents)."""
    status, stage, probability, cents = columns(
        spans, Text("status"), "stage_id", "probability", "amount"
    )
    if not status.size:
        return []
    names, status_code = np.unique(status, return_inverse=True)
    stages, stage_code = np.unique(stage, return_inverse=True)
    chances, chance_code = np.unique(probability, return_inverse=True)
    code = (status_code * stages.size + stage_code) * chances.size + chance_code
    present, group = np.unique(code, return_inverse=True)
    deals = np.bincount(group)
    # Whole cents summed as integers: a float sum (bincount's weights) could drift.
    order = np.argsort(group, kind="stable")
    sums = np.add.reduceat(cents[order], np.r_[0, np.cumsum(deals)[:-1]])
    result = []
    for value, n, total in zip(present.tolist(), deals.tolist(), sums.tolist(), strict=True):
        rest, chance = divmod(value, chances.size)
        name, place = divmod(rest, stages.size)
        result.append(
            (names[name].decode(), int(stages[place]), int(chances[chance]), int(n), int(total))
        )
    return result


def target_accounts_at(user: Any, at: dt.datetime, *, branch_ids: set[int] | None = None) -> int:
    """How many visible accounts were target accounts at `at` (their latest qualification then)."""
    latest = AccountQualification.objects.filter(account=OuterRef("pk"), at__lte=at).order_by(
        "-at", "-id"
    )
    accounts = Account.objects.visible_to(user).filter(created_at__lte=at)
    if branch_ids is not None:
        accounts = accounts.filter(branch_id__in=branch_ids)
    verdicts = accounts.annotate(target=Subquery(latest.values("is_target")[:1]))
    return verdicts.filter(target=True).count()


def funnel_snapshot(
    user: Any,
    playbook: Playbook,
    *,
    as_of: dt.date | None = None,
    branch_ids: set[int] | None = None,
    owner_id: int | None = None,
    industry_id: int | None = None,
) -> dict[str, Any]:
    """The funnel at the end of `as_of` (default now): target accounts, then open deals per stage
    (count, amount, weighted amount), and deals won and lost up to then.

    Stages are matched by key across versions of the playbook, so deals created under an older
    version count in the stage of the same key.
    """
    at = end_of_day(as_of) if as_of else clock.now()
    totals = funnel_totals(
        user,
        playbook.key,
        at,
        branch_ids=branch_ids,
        owner_id=owner_id,
        industry_id=industry_id,
    )
    counts: dict[str, int] = defaultdict(int)
    amounts: dict[str, Decimal] = defaultdict(lambda: ZERO)
    weighted: dict[str, Decimal] = defaultdict(lambda: ZERO)
    closed_count = {Status.WON: 0, Status.LOST: 0}
    closed_amount = {Status.WON: ZERO, Status.LOST: ZERO}
    for (key, status), (count, amount, weighted_amount) in totals.items():
        if status == Status.OPEN:
            counts[key] += count
            amounts[key] += amount
            weighted[key] += weighted_amount
        else:
            closed_count[Status(status)] += count
            closed_amount[Status(status)] += amount
    stages = [
        {
            "key": stage.key,
            "order": stage.order,
            "name": localized(stage, "name"),
            "count": counts[stage.key],
            "amount": str(amounts[stage.key].quantize(ZERO)),
            "weighted_amount": str(weighted[stage.key].quantize(ZERO)),
        }
        for stage in playbook.ordered_stages()
        if stage.kind == StageKind.OPEN
    ]
    return {
        "as_of": (as_of or clock.today()).isoformat(),
        "playbook": playbook.key,
        "target_accounts": target_accounts_at(user, at, branch_ids=branch_ids),
        "stages": stages,
        "won": {"count": closed_count[Status.WON], "amount": str(closed_amount[Status.WON])},
        "lost": {"count": closed_count[Status.LOST], "amount": str(closed_amount[Status.LOST])},
    }
