"""Reads for the funnel. Everything here is computed from opportunity history (DESIGN.md rule 3)
and restricted by the visibility rule."""

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from typing import Any, NamedTuple

from django.db import connection
from django.db.models import OuterRef, Subquery

from loudou.analytics.scope import narrow
from loudou.core import clock
from loudou.core.i18n import localized
from loudou.customers.models import Account, AccountQualification
from loudou.pipeline.models import Opportunity, OpportunityHistory, Status
from loudou.playbooks.models import Playbook, StageKind

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


def states_at(
    user: Any,
    playbook_key: str,
    at: dt.datetime,
    *,
    branch_ids: set[int] | None = None,
    owner_id: int | None = None,
    industry_id: int | None = None,
) -> list[State]:
    """For each visible opportunity of the playbook that existed at `at`, its history row in force
    then (the latest with `valid_from <= at`)."""
    latest = OpportunityHistory.objects.filter(
        opportunity=OuterRef("pk"), valid_from__lte=at
    ).order_by("-valid_from", "-id")
    opps = Opportunity.objects.visible_to(user).filter(
        playbook__key=playbook_key, created_at__lte=at
    )
    opps = narrow(opps, branch_ids=branch_ids, owner_id=owner_id, industry_id=industry_id)
    fields = (
        "opportunity_id",
        "stage__key",
        "status",
        "amount",
        "probability",
        "close_date",
        "owner_id",
    )
    if connection.vendor == "postgresql":
        # DISTINCT ON keeps the newest row per opportunity in one sort. The correlated "latest
        # row" subquery below, planned without statistics (right after a bulk import), became a
        # nested loop over every history row: minutes instead of milliseconds.
        rows = (
            OpportunityHistory.objects.filter(valid_from__lte=at, opportunity__in=opps.values("pk"))
            .order_by("opportunity_id", "-valid_from", "-id")
            .distinct("opportunity_id")
            .values_list(*fields)
        )
    else:
        ids = opps.annotate(row=Subquery(latest.values("id")[:1])).values("row")
        # Plain tuples: building 2,000 model instances cost ten times the query itself.
        rows = OpportunityHistory.objects.filter(id__in=ids).values_list(*fields)
    return [State(*row) for row in rows]


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
    rows = states_at(
        user, playbook.key, at, branch_ids=branch_ids, owner_id=owner_id, industry_id=industry_id
    )
    counts: dict[str, int] = defaultdict(int)
    amounts: dict[str, Decimal] = defaultdict(lambda: ZERO)
    weighted: dict[str, Decimal] = defaultdict(lambda: ZERO)
    closed_count = {Status.WON: 0, Status.LOST: 0}
    closed_amount = {Status.WON: ZERO, Status.LOST: ZERO}
    for row in rows:
        if row.status == Status.OPEN:
            key = row.stage_key
            counts[key] += 1
            amounts[key] += row.amount
            weighted[key] += row.amount * row.probability / 100
        else:
            closed_count[Status(row.status)] += 1
            closed_amount[Status(row.status)] += row.amount
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
