"""`generate`: a deterministic demo company, two years of selling, made through the services.

Same seed, same day → same data: every choice comes from one `random.Random(seed)` and every
date is counted back from today.
"""

import datetime as dt
import random
from dataclasses import dataclass, field
from decimal import Decimal

from django.db import transaction
from django.db.models import Count, Sum

from loudou.core import clock
from loudou.customers.models import Account
from loudou.demo.customers import Customer, CustomerFactory
from loudou.demo.deals import DealWalker
from loudou.demo.organisation import SalesOrg, organisation_create, targets_set
from loudou.demo.progress import Progress, Silent
from loudou.demo.timeline import last_moment, office_moment
from loudou.org.models import Branch, User
from loudou.pipeline.catalogs import lost_reasons_load_defaults
from loudou.pipeline.models import Opportunity, Status
from loudou.playbooks.services import playbooks_load_builtin

HISTORY_DAYS = 730  # two years of selling
DEALS_PER_TRANSACTION = 50


class DatabaseNotEmpty(RuntimeError):
    """The database already holds branches, people, accounts or opportunities."""


@dataclass(frozen=True)
class Size:
    """How big a demo company is."""

    accounts: int
    opportunities: int
    target_months: tuple[int, int] = (24, 12)  # months of targets before and after this one


SIZES = {
    "tiny": Size(accounts=24, opportunities=40, target_months=(2, 1)),  # for tests
    "small": Size(accounts=300, opportunities=2000),  # `make demo`
    "large": Size(accounts=600, opportunities=10000),  # benchmarks
}


@dataclass
class DemoSummary:
    """What the generator made."""

    users: int
    branches: int
    accounts: int
    target_accounts: int
    opportunities: int
    by_status: dict[str, int]
    open_by_stage: dict[str, int] = field(default_factory=dict)
    won_amount: Decimal = Decimal(0)
    targets: int = 0


def existing_data() -> dict[str, int]:
    """What the database already holds that a demo would collide with (empty: none)."""
    counts = {
        "opportunities": Opportunity.objects.count(),
        "accounts": Account.objects.count(),
        "branches": Branch.objects.count(),
        "users": User.objects.count(),
    }
    return {name: n for name, n in counts.items() if n}


def generate(
    *,
    seed: int = 42,
    size: str = "small",
    today: dt.date | None = None,
    progress: Progress | None = None,
) -> DemoSummary:
    """Build the demo company: branches and people, customers, two years of opportunities up
    to `today` (default: today), and the targets. Expects an empty database."""
    if size not in SIZES:
        raise ValueError(f"size must be one of {', '.join(SIZES)}, not {size!r}")
    if existing_data():
        raise DatabaseNotEmpty("The demo fills an empty database only.")
    dimensions = SIZES[size]
    progress = progress or Silent()
    rng = random.Random(seed)
    today = today or clock.today()
    start = today - dt.timedelta(days=HISTORY_DAYS)
    horizon = last_moment(today)

    progress.start("组织与人员 organisation", 1)
    setup = office_moment(start - dt.timedelta(days=90), rng)
    with transaction.atomic(), clock.frozen_at(setup):
        playbooks_load_builtin()
        lost_reasons_load_defaults()
        org = organisation_create(setup)
    progress.advance()

    progress.start("客户 accounts", dimensions.accounts)
    with transaction.atomic():
        customers = CustomerFactory(org, rng, start, today).create(dimensions.accounts, progress)

    progress.start("商机 opportunities", dimensions.opportunities)
    _opportunities(org, customers, rng, dimensions.opportunities, start, today, horizon, progress)

    won = Opportunity.objects.filter(status=Status.WON, closed_on__gte=start)
    won_total = won.aggregate(s=Sum("amount"))["s"] or Decimal(0)
    progress.start("业绩目标 targets", 1)
    with transaction.atomic():
        targets = targets_set(
            org,
            today=today,
            months_around=dimensions.target_months,
            monthly_bookings=won_total / 24,
            rng=rng,
        )
    progress.advance()
    return summarise(targets=targets)


def _opportunities(
    org: SalesOrg,
    customers: list[Customer],
    rng: random.Random,
    count: int,
    start: dt.date,
    today: dt.date,
    horizon: dt.datetime,
    progress: Progress,
) -> None:
    """Create `count` deals over the two years (a growing business: more lately), each on a
    target account that existed then, and walk each one."""
    span = (today - start).days - 3
    growth = 0.6
    moments = []
    for _ in range(count):
        u = rng.random()  # inverse of the CDF of a density rising linearly by `growth`
        x = ((1 + 2 * growth * u * (1 + growth / 2)) ** 0.5 - 1) / growth
        moments.append(office_moment(start + dt.timedelta(days=int(x * span)), rng))
    moments.sort()
    targets = [c for c in customers if c.account.is_target]
    walker = DealWalker(org, rng, today=today, horizon=horizon)
    for first in range(0, count, DEALS_PER_TRANSACTION):
        with transaction.atomic():
            for created in moments[first : first + DEALS_PER_TRANSACTION]:
                eligible = [c for c in targets if c.created < created] or targets[:1]
                customer = rng.choices(eligible, weights=[c.weight for c in eligible])[0]
                walker.run(customer, max(created, customer.created + dt.timedelta(hours=1)))
                progress.advance()


def summarise(*, targets: int = 0) -> DemoSummary:
    """Counts of what the database holds, for the command's closing summary."""
    by_status = dict(
        Opportunity.objects.values_list("status").annotate(n=Count("id")).order_by("status")
    )
    open_by_stage = dict(
        Opportunity.objects.filter(status=Status.OPEN)
        .values_list("stage__key")
        .annotate(n=Count("id"))
        .order_by("stage__order")
    )
    won = Opportunity.objects.filter(status=Status.WON).aggregate(s=Sum("amount"))["s"]
    return DemoSummary(
        users=User.objects.count(),
        branches=Branch.objects.count(),
        accounts=Account.objects.count(),
        target_accounts=Account.objects.filter(is_target=True).count(),
        opportunities=Opportunity.objects.count(),
        by_status={s: by_status.get(s, 0) for s in Status.values},
        open_by_stage=open_by_stage,
        won_amount=won or Decimal(0),
        targets=targets,
    )
