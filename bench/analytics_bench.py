"""Benchmark: every analytic loudou offers, timed beside DuckDB computing the same result from the
same rows in the same run, with a check that the two results are equal.

    LOUDOU_DEBUG=1 LOUDOU_VAR_DIR=$(mktemp -d) .venv/bin/python bench/analytics_bench.py
    scripts/with-postgres env LOUDOU_DEBUG=1 LOUDOU_VAR_DIR=$(mktemp -d) \
        .venv/bin/python bench/analytics_bench.py
    ... bench/analytics_bench.py --size L          # 1M deals: see docs/performance.md for times

1. Builds a deterministic company in an EMPTY database (`LOUDOU_VAR_DIR` / `DATABASE_URL`): one
   branch, 20 sellers, 500 accounts (bench/import_bench.py's setup), then S = 100,000 deals
   (L = 1,000,000) on the project-funnel playbook through the importer's bulk path
   (`importer.import_parsed`, which writes opportunities, history, stays and state spans exactly
   as loudou keeps them), in chunks of 50,000. Deals are created over the two years before NOW, move
   through the open stages with skips, steps back, losses at every stage, wins, amount changes
   and moved close dates: about 3.8 history rows and 3 stays a deal. Deals whose next move
   would come after NOW are still open; a few go quiet (stalled, close date past).
2. On PostgreSQL runs VACUUM ANALYZE (what autovacuum does after a bulk load); on SQLite nothing
   (loudou never runs ANALYZE) unless `--sqlite-analyze`.
3. Copies the opportunities, history, stays and stages into an in-memory DuckDB (2 threads),
   through CSV files and DuckDB's built-in read_csv (no extension). Not timed.
4. With the clock frozen at NOW (so every run gives the same figures), times each analytic as the
   CLI and web call it (as the system actor, who sees everything) and the DuckDB SQL that computes
   the same figures: one warm-up each, then `--repeat` runs interleaved; medians. Times include
   fetching the rows into Python and shaping the result. Then compares the two results.
5. Times the simulation of 10,000 deals × 10,000 runs on its own (goal: under 1 s).

`--reuse` skips step 1 on a database this script filled before.
"""

import argparse
import datetime as dt
import os
import statistics
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loudou.settings")
os.environ.setdefault("LOUDOU_DEBUG", "1")

import django

django.setup()

import duckdb  # noqa: E402
from analytics_company import NOW, analyze, build_company  # noqa: E402
from analytics_duckdb import (  # noqa: E402
    duck_conversion,
    duck_flow,
    duck_forecast,
    duck_funnel,
    duck_stalled,
    duck_velocity,
    duck_weighted,
    load_duckdb,
    loudou_conversion,
    loudou_flow,
    loudou_funnel,
    loudou_stalled,
    loudou_velocity,
)
from django.db import connection  # noqa: E402

from loudou.analytics.conversion import conversion_by_stage  # noqa: E402
from loudou.analytics.flow import pipeline_flow  # noqa: E402
from loudou.analytics.forecast import (  # noqa: E402
    PeriodDeals,
    forecast,
    parse_period,
    period_weighted,
    simulate,
)
from loudou.analytics.models import OpportunityStay  # noqa: E402
from loudou.analytics.scope import Scope  # noqa: E402
from loudou.analytics.selectors import end_of_day, funnel_snapshot  # noqa: E402
from loudou.analytics.velocity import stalled, velocity  # noqa: E402
from loudou.core import clock  # noqa: E402
from loudou.core.cli import SystemActor  # noqa: E402
from loudou.pipeline.models import Opportunity, OpportunityHistory  # noqa: E402
from loudou.playbooks.selectors import playbook_get  # noqa: E402

SIZES = {"S": 100_000, "L": 1_000_000}
# The dates the questions name (the moment they are asked at is the company's NOW).
AS_OF = dt.date(2026, 5, 31)
FLOW_FROM, FLOW_TO = dt.date(2026, 7, 1), dt.date(2026, 9, 30)
PERIOD = "2026Q4"


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = fn()
    return (time.perf_counter() - started) * 1000, result


def compare(
    name: str,
    ours: Callable[[], Any],
    theirs: Callable[[], Any] | None,
    shape: Callable[[Any], Any],
    repeat: int,
) -> dict[str, Any]:
    """Warm up, then `repeat` interleaved runs (1 when a run takes over 30 s); medians."""
    first_ms, ours_result = timed(ours)
    theirs_result = theirs() if theirs is not None else None
    runs = 1 if first_ms > 30_000 else repeat
    mine, duck = [], []
    for _ in range(runs):
        mine.append(timed(ours)[0])
        if theirs is not None:
            duck.append(timed(theirs)[0])
    mine_ms = statistics.median(mine)
    duck_ms = statistics.median(duck) if duck else None
    shaped = shape(ours_result)
    equal = None if theirs is None else shaped == theirs_result
    return {
        "name": name,
        "loudou_ms": mine_ms,
        "duck_ms": duck_ms,
        "runs": runs,
        "equal": equal,
        "ours": shaped,
        "theirs": theirs_result,
    }


def _diff(ours: Any, theirs: Any) -> list[str]:
    if isinstance(ours, dict) and isinstance(theirs, dict):
        return [
            f"  {key}: loudou {ours.get(key)} / DuckDB {theirs.get(key)}"
            for key in sorted(ours.keys() | theirs.keys(), key=str)
            if ours.get(key) != theirs.get(key)
        ]
    if isinstance(ours, list) and isinstance(theirs, list):
        lines = [f"  loudou {len(ours)} rows / DuckDB {len(theirs)} rows"]
        lines += [f"  row {i}: loudou {a} / DuckDB {b}"
                  for i, (a, b) in enumerate(zip(ours, theirs, strict=False)) if a != b][:10]  # fmt: skip
        return lines
    return [f"  loudou {ours} / DuckDB {theirs}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="S")
    parser.add_argument("--deals", type=int, help="override the size's number of deals")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--reuse", action="store_true", help="the company is already loaded")
    parser.add_argument("--sqlite-analyze", action="store_true", help="run ANALYZE on SQLite")
    args = parser.parse_args()
    deals = args.deals or SIZES[args.size]
    started = time.perf_counter()
    if not args.reuse:
        print(f"building {deals:,} deals on {connection.vendor} …", flush=True)
        seconds = build_company(deals, args.seed)
        print(f"company built in {seconds:.0f} s", flush=True)
    t0 = time.perf_counter()
    analyze(args.sqlite_analyze)
    print(f"analyze: {time.perf_counter() - t0:.1f} s", flush=True)
    t0 = time.perf_counter()
    con = load_duckdb()
    print(f"loaded into DuckDB in {time.perf_counter() - t0:.0f} s", flush=True)

    pb = playbook_get("project-funnel")
    everyone = SystemActor()
    scope = Scope(actor=everyone, playbook=pb)
    period = parse_period(PERIOD)
    counts = {
        "opportunities": Opportunity.objects.count(),
        "history rows": OpportunityHistory.objects.count(),
        "stays": OpportunityStay.objects.count(),
        "open": Opportunity.objects.filter(status="open").count(),
        "won": Opportunity.objects.filter(status="won").count(),
        "lost": Opportunity.objects.filter(status="lost").count(),
    }
    print(f"database: {connection.vendor}; " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    print(f"now (frozen): {NOW.isoformat()}; repeats: {args.repeat}; duckdb {duckdb.__version__}")
    results = []
    with clock.frozen_at(NOW):
        plan = [
            ("funnel now", lambda: funnel_snapshot(everyone, pb),
             lambda: duck_funnel(con, pb, NOW), loudou_funnel),
            (f"funnel as of {AS_OF}", lambda: funnel_snapshot(everyone, pb, as_of=AS_OF),
             lambda: duck_funnel(con, pb, end_of_day(AS_OF)), loudou_funnel),
            ("conversion (estimates, no interval)",
             lambda: conversion_by_stage(everyone, pb, resamples=0),
             lambda: duck_conversion(con, pb, NOW), loudou_conversion),
            ("conversion with 90 % interval (400 resamples)",
             lambda: conversion_by_stage(everyone, pb), None, loudou_conversion),
            ("velocity (time in stage, cycle to won)", lambda: velocity(everyone, pb),
             lambda: duck_velocity(con, pb, NOW), loudou_velocity),
            ("stalled", lambda: stalled(everyone, pb), lambda: duck_stalled(con, pb, NOW),
             loudou_stalled),
            (f"flow {FLOW_FROM} → {FLOW_TO}",
             lambda: pipeline_flow(everyone, pb, date_from=FLOW_FROM, date_to=FLOW_TO),
             lambda: duck_flow(con, pb, FLOW_FROM, FLOW_TO), loudou_flow),
            (f"forecast {PERIOD}, weighted",
             lambda: period_weighted(scope, period),
             lambda: duck_weighted(con, pb, period),
             lambda d: d),
            (f"forecast {PERIOD}, 10,000 simulated runs", lambda: forecast(scope, period),
             lambda: duck_forecast(con, pb, period),
             lambda f: (Decimal(f["booked"]), Decimal(f["weighted"]),
                        Decimal(f["simulated"]["p10"]), Decimal(f["simulated"]["p50"]),
                        Decimal(f["simulated"]["p90"]), f["open_deals"])),
        ]  # fmt: skip
        for name, ours, theirs, shape in plan:
            result = compare(name, ours, theirs, shape, args.repeat)
            results.append(result)
            duck = f"{result['duck_ms']:.1f}" if result["duck_ms"] is not None else "–"
            print(f"  measured {name}: loudou {result['loudou_ms']:.1f} ms, DuckDB {duck} ms",
                  flush=True)  # fmt: skip

    # The simulation alone: 10,000 open deals (cycled if there are fewer) × 10,000 runs.
    rows = list(
        Opportunity.objects.filter(status="open", playbook__key=pb.key)
        .order_by("pk")
        .values_list("amount", "stage__probability")[:10_000]
    )
    picked = [rows[i % len(rows)] for i in range(10_000)]
    big = PeriodDeals(Decimal("0.00"), [r[0] for r in picked], [r[1] for r in picked])
    simulate(big)
    sim_ms = [timed(lambda: simulate(big, runs=10_000))[0] for _ in range(max(3, args.repeat))]

    print()
    print(f"{'query':48} {'loudou ms':>10} {'DuckDB ms':>10} {'ratio':>7} {'runs':>5}  equal")
    for r in results:
        duck = f"{r['duck_ms']:10.1f}" if r["duck_ms"] is not None else f"{'–':>10}"
        ratio = f"{r['loudou_ms'] / r['duck_ms']:7.1f}" if r["duck_ms"] else f"{'–':>7}"
        equal = {True: "yes", False: "NO", None: "–"}[r["equal"]]
        print(f"{r['name']:48} {r['loudou_ms']:10.1f} {duck} {ratio} {r['runs']:>5}  {equal}")
    print(f"{'simulate 10,000 deals × 10,000 runs (numpy)':48} {statistics.median(sim_ms):10.1f}"
          f" {'':>10} {'':>7} {len(sim_ms):>5}  goal < 1,000 ms")  # fmt: skip
    for r in results:
        if r["equal"] is False:
            print(f"\nMISMATCH in {r['name']}:")
            print("\n".join(_diff(r["ours"], r["theirs"])))
    print(f"\ntotal run time {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
