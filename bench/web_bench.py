"""Benchmark: server time of the web pages, in process (middleware + view + template).

Run on a database holding the demo company, ideally the large one:

    LOUDOU_DEBUG=1 LOUDOU_VAR_DIR=/tmp/large .venv/bin/loudou demo --size large
    LOUDOU_DEBUG=1 LOUDOU_VAR_DIR=/tmp/large .venv/bin/python bench/web_bench.py \
        [--repeat 15] [--open 2000]

--open N first tops the open deals up to N (the large demo leaves about 1,200 open): it imports
the missing ones through the import service (`opportunity_import`, history and stays included,
no gates — as an import from another CRM would), spread over the open stages, accounts and
sellers, with a fixed seed. Run it on a copy of the demo database.

For each page it prints the median and p90 of the server time over the repeats, the number of
SQL queries and the size of the HTML, and the ratio to the preferences page (a page that reads
almost nothing) measured in the same run: the machine is shared and noisy, so compare ratios
between runs. Debug is forced off for the measurement (templates cached as in production).
"""

import argparse
import datetime as dt
import os
import random
import statistics
import time

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loudou.settings")
os.environ.setdefault("LOUDOU_DEBUG", "1")

import django

django.setup()

from django.conf import settings  # noqa: E402
from django.db import connection  # noqa: E402
from django.db.models import Count  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext  # noqa: E402

from loudou.customers.models import Account  # noqa: E402
from loudou.org.models import User  # noqa: E402
from loudou.pipeline.models import Opportunity, Status  # noqa: E402


def measure(client: Client, url: str, repeat: int) -> dict[str, float]:
    response = client.get(url)  # warm caches (stage cache, template loader)
    assert response.status_code == 200, (url, response.status_code)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        client.get(url)
        times.append((time.perf_counter() - start) * 1000)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    times.sort()
    return {
        "median": statistics.median(times),
        "p90": times[max(int(len(times) * 0.9) - 1, 0)],
        "queries": len(queries.captured_queries),
        "kb": len(response.content) / 1024,
    }


def top_up_open(target: int) -> int:
    """Import open deals until `target` are open; return how many were added."""
    from loudou.core import clock
    from loudou.core.cli import SystemActor
    from loudou.interop.services import opportunity_import
    from loudou.playbooks.selectors import playbook_get

    missing = target - Opportunity.objects.filter(status=Status.OPEN).count()
    if missing <= 0:
        return 0
    rng = random.Random(7)
    playbook = playbook_get()
    stages = [s.key for s in playbook.ordered_stages() if s.kind == "open"]
    accounts = list(Account.objects.filter(is_target=True).order_by("pk"))
    sellers = list(User.objects.filter(access_level="seller", branch__isnull=False).order_by("pk"))
    now = clock.now()
    for i in range(missing):
        stage = rng.choice(stages)
        created = now - dt.timedelta(days=rng.randint(20, 200), hours=rng.randint(0, 23))
        events = [(created, "discover", Status.OPEN)]
        if stage != "discover":
            events.append((created + dt.timedelta(days=rng.randint(1, 19)), stage, Status.OPEN))
        opportunity_import(
            actor=SystemActor(),
            account=rng.choice(accounts),
            name=f"扩容商机 {i + 1:04d}",
            amount=rng.randrange(200_000, 6_000_000, 10_000),
            currency="CNY",
            owner=rng.choice(sellers),
            playbook=playbook,
            events=events,
            close_date=(now + dt.timedelta(days=rng.randint(10, 300))).date(),
            source="bench",
        )
    return missing


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--open", type=int, default=0, help="Top open deals up to this many.")
    args = parser.parse_args()
    if args.open:
        started = time.perf_counter()
        added = top_up_open(args.open)
        print(f"imported {added:,} open deals in {time.perf_counter() - started:.0f} s")
    settings.DEBUG = False  # no query log overhead, cached templates as in production
    settings.ALLOWED_HOSTS = ["testserver"]

    executive = User.objects.get(username="chen.zhiyuan")
    manager = User.objects.get(username="manager")
    seller = User.objects.get(username="seller")
    busiest = (
        Opportunity.objects.filter(status=Status.OPEN)
        .annotate(n=Count("history"))
        .order_by("-n", "pk")
        .first()
    )
    group = Account.objects.annotate(n=Count("subsidiaries")).filter(n__gt=0).order_by("-n").first()
    open_deals = Opportunity.objects.filter(status=Status.OPEN).count()
    print(
        f"{Opportunity.objects.count():,} opportunities, {open_deals:,} open; "
        f"database {connection.vendor}"
    )

    pages = [
        ("preferences (baseline)", seller, "/preferences/"),
        (f"board, executive (all {open_deals:,} open deals)", executive, "/board/"),
        ("board, branch manager", manager, "/board/"),
        ("board, seller", seller, "/board/"),
        ("opportunity list, executive", executive, "/opportunities/"),
        (
            f"opportunity page (deal {busiest.pk}, most history)",
            executive,
            f"/opportunities/{busiest.pk}/",
        ),
        ("dashboard, seller", seller, "/"),
        ("dashboard, manager", manager, "/"),
        ("funnel, executive", executive, "/funnel/"),
        ("account list, executive", executive, "/accounts/"),
        (f"account page (group {group.pk})", executive, f"/accounts/{group.pk}/"),
        ("approvals inbox, manager", manager, "/approvals/"),
    ]
    baseline = None
    print(f"{'page':58} {'median ms':>10} {'p90 ms':>8} {'ratio':>6} {'queries':>8} {'KB':>6}")
    for label, user, url in pages:
        client = Client(HTTP_ACCEPT_LANGUAGE="zh-hans")
        client.force_login(user)
        result = measure(client, url, args.repeat)
        baseline = baseline or result["median"]
        print(
            f"{label:58} {result['median']:10.1f} {result['p90']:8.1f} "
            f"{result['median'] / baseline:6.1f} {result['queries']:8d} {result['kb']:6.0f}"
        )


if __name__ == "__main__":
    main()
