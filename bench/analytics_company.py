"""The benchmark company (bench/analytics_bench.py step 1): deterministic deals created over the
two years before NOW, moving through the project funnel's open stages with skips, steps back,
losses, wins, amount changes and moved close dates, written through the importer's bulk path in
chunks. Import it after `django.setup()` (bench/analytics_bench.py does)."""

import datetime as dt
import random
import time
from decimal import Decimal

from django.db import connection
from django.utils import timezone
from import_bench import setup as company_setup

from loudou.interop.importer import import_parsed
from loudou.interop.records import Deal, DealEvent, Parsed
from loudou.playbooks.models import StageKind
from loudou.playbooks.selectors import playbook_get

CHUNK = 50_000
SECONDS_PER_DAY = 86_400.0
# The moment the analytics are asked at (local time): the company's deals are made before it.
NOW = timezone.make_aware(dt.datetime(2026, 11, 16, 10, 0))
SPAN_DAYS = 730

# Per open stage (discover, intent, project, recognition, negotiation): mean days in the stage,
# and what ends a stay: (advance, skip one stage, back one stage, won, lost).
MEAN_DAYS = (25, 30, 45, 40, 25)
MOVES = (
    (0.65, 0.05, 0.00, 0.00, 0.30),
    (0.58, 0.05, 0.12, 0.00, 0.25),
    (0.52, 0.05, 0.23, 0.00, 0.20),
    (0.52, 0.00, 0.23, 0.05, 0.20),
    (0.00, 0.00, 0.22, 0.50, 0.28),
)
GOES_QUIET = 0.01  # per stay: the deal stops moving and stays open (it stalls)


def _deal(n: int, total: int, rng: random.Random, keys: list[str], won_key: str,
          sellers: list[str], accounts: list[str]) -> Deal:  # fmt: skip
    """Deal number n of `total`: created in order over the SPAN_DAYS before NOW."""
    start = NOW - dt.timedelta(days=SPAN_DAYS)
    created = start + dt.timedelta(seconds=int(SPAN_DAYS * SECONDS_PER_DAY * (n + rng.random())
                                               / total))  # fmt: skip
    amount = Decimal(max(10_000, min(50_000_000, round(rng.lognormvariate(12.9, 1.0), -2))))
    close = timezone.localdate(created) + dt.timedelta(days=rng.randint(60, 240))
    stage = 0 if rng.random() < 0.9 else 1
    at = created
    events = [DealEvent(at=at, stage=keys[stage], status="open", amount=amount, close_date=close)]
    status = "open"
    while True:
        if rng.random() < GOES_QUIET:
            break
        at = at + dt.timedelta(seconds=3600 + int(rng.expovariate(1 / MEAN_DAYS[stage]) * 86_400))
        if at > NOW:
            break
        advance, skip, back, won, _lost = MOVES[stage]
        r = rng.random()
        if rng.random() < 0.25:  # the amount is revised
            amount = Decimal(round(float(amount) * rng.uniform(0.8, 1.25), -2))
        if rng.random() < 0.2:  # the close date slips
            close += dt.timedelta(days=rng.randint(15, 90))
        elif rng.random() < 0.05:  # or is pulled in
            close = max(timezone.localdate(at), close - dt.timedelta(days=rng.randint(10, 30)))
        if r < advance:
            stage += 1
        elif r < advance + skip:
            stage += 2
        elif r < advance + skip + back:
            stage -= 1
        elif r < advance + skip + back + won:
            status, close = "won", timezone.localdate(at)
            events.append(DealEvent(at=at, stage=won_key, status=status, amount=amount,
                                    close_date=close))  # fmt: skip
            break
        else:
            status = "lost"
            events.append(DealEvent(at=at, stage=keys[stage], status=status, amount=amount,
                                    close_date=close))  # fmt: skip
            break
        events.append(DealEvent(at=at, stage=keys[stage], status="open", amount=amount,
                                close_date=close))  # fmt: skip
    return Deal(
        sheet="opportunities",
        row=n + 2,
        external_id=f"B{n}",
        name=f"基准商机 {n}",
        account=accounts[rng.randrange(len(accounts))],
        owner=sellers[rng.randrange(len(sellers))],
        stage=events[-1].stage,
        amount=amount,
        currency="CNY",
        close_date=close,
        created_at=created,
        status=status,
        closed_at=events[-1].at if status != "open" else None,
        events=events,
    )


def build_company(deals: int, seed: int) -> float:
    """Write the company; return the seconds it took."""
    started = time.perf_counter()
    admin, sellers, accounts = company_setup()
    playbook = playbook_get("project-funnel")
    stages = playbook.ordered_stages()
    keys = [s.key for s in stages if s.kind == StageKind.OPEN]
    won_key = next(s.key for s in stages if s.kind == StageKind.WON)
    usernames = [s.username for s in sellers]
    rng = random.Random(seed)
    for first in range(0, deals, CHUNK):
        parsed = Parsed(source="analytics-bench")
        parsed.deals = [
            _deal(n, deals, rng, keys, won_key, usernames, accounts)
            for n in range(first, min(first + CHUNK, deals))
        ]
        import_parsed(parsed, actor=admin, playbook=playbook)
        print(f"  imported {min(first + CHUNK, deals):,} deals "
              f"({time.perf_counter() - started:.0f} s)", flush=True)  # fmt: skip
    return time.perf_counter() - started


def analyze(sqlite_too: bool) -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    elif sqlite_too:
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
