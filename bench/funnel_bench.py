"""Benchmark: the funnel snapshot from history, against the same counts from the current fields.

Run on a database holding the demo company (`loudou demo --size small|large`):

    LOUDOU_DEBUG=1 LOUDOU_VAR_DIR=/tmp/bench .venv/bin/python bench/funnel_bench.py [--repeat 15]

It prints, per measurement, the median and p90 wall time over the repeats, and the ratio of the
history-based snapshot to a plain GROUP BY over the current fields measured in the same run (the
machine is shared and noisy, so ratios are what to compare between runs).
"""

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from collections.abc import Callable

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loudou.settings")

import django

django.setup()

from django.db import connection  # noqa: E402
from django.db.models import Count, Sum  # noqa: E402

from loudou.analytics.conversion import conversion_by_stage  # noqa: E402
from loudou.analytics.flow import pipeline_flow  # noqa: E402
from loudou.analytics.forecast import forecast, parse_period  # noqa: E402
from loudou.analytics.scope import Scope  # noqa: E402
from loudou.analytics.selectors import funnel_snapshot  # noqa: E402
from loudou.analytics.velocity import stalled, velocity  # noqa: E402
from loudou.core import clock  # noqa: E402
from loudou.core.cli import SystemActor  # noqa: E402
from loudou.org.models import User  # noqa: E402
from loudou.pipeline.models import Opportunity, OpportunityHistory  # noqa: E402
from loudou.pipeline.selectors import gate_progress  # noqa: E402
from loudou.playbooks.selectors import playbook_get  # noqa: E402


def measure(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    fn()  # warm caches
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.9) - 1]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    playbook = playbook_get()
    everyone = SystemActor()
    seller = User.objects.filter(username="seller").first() or everyone
    manager = User.objects.filter(username="manager").first() or everyone
    year_ago = clock.today().replace(year=clock.today().year - 1)
    today = clock.today()
    quarter_start = today - dt.timedelta(days=91)
    next_quarter = parse_period(f"{today.year}Q{(today.month - 1) // 3 + 1}")
    sample = list(Opportunity.objects.filter(status="open").order_by("id")[:50])

    def current_fields() -> object:
        return list(
            Opportunity.objects.filter(status="open", playbook__key=playbook.key)
            .values("stage__key")
            .annotate(n=Count("id"), amount=Sum("amount"))
        )

    rows = [
        ("current fields GROUP BY (baseline)", lambda: current_fields()),
        ("funnel now, executive", lambda: funnel_snapshot(everyone, playbook)),
        (
            "funnel a year ago, executive",
            lambda: funnel_snapshot(everyone, playbook, as_of=year_ago),
        ),
        ("funnel now, branch manager", lambda: funnel_snapshot(manager, playbook)),
        ("funnel now, seller", lambda: funnel_snapshot(seller, playbook)),
        ("gate progress of 50 open deals", lambda: [gate_progress(o) for o in sample]),
        ("conversion (all deals, 400 resamples)", lambda: conversion_by_stage(everyone, playbook)),
        ("velocity", lambda: velocity(everyone, playbook)),
        ("stalled", lambda: stalled(everyone, playbook)),
        (
            "flow over the last quarter",
            lambda: pipeline_flow(everyone, playbook, date_from=quarter_start, date_to=today),
        ),
        (
            "forecast, 10,000 runs",
            lambda: forecast(Scope(actor=everyone, playbook=playbook), next_quarter),
        ),
    ]
    print(
        f"database: {connection.vendor}; opportunities: {Opportunity.objects.count()}; "
        f"history rows: {OpportunityHistory.objects.count()}; repeats: {args.repeat}"
    )
    baseline = None
    print(f"{'measurement':40} {'median ms':>10} {'p90 ms':>8} {'ratio':>7}")
    for name, fn in rows:
        median, p90 = measure(fn, args.repeat)
        baseline = baseline or median
        print(f"{name:40} {median:10.1f} {p90:8.1f} {median / baseline:7.1f}")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
