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
import csv
import datetime as dt
import os
import random
import statistics
import sys
import tempfile
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
import numpy as np  # noqa: E402
from django.db import connection  # noqa: E402
from django.utils import timezone  # noqa: E402
from import_bench import setup as company_setup  # noqa: E402

from loudou.analytics.conversion import conversion_by_stage  # noqa: E402
from loudou.analytics.flow import pipeline_flow, start_of_day  # noqa: E402
from loudou.analytics.forecast import (  # noqa: E402
    PeriodDeals,
    forecast,
    parse_period,
    period_weighted,
    simulate,
)
from loudou.analytics.models import OpportunityStay  # noqa: E402
from loudou.analytics.scope import Scope  # noqa: E402
from loudou.analytics.selectors import day_start, end_of_day, funnel_snapshot  # noqa: E402
from loudou.analytics.velocity import stalled, velocity  # noqa: E402
from loudou.core import clock  # noqa: E402
from loudou.core.cli import SystemActor  # noqa: E402
from loudou.interop.importer import import_parsed  # noqa: E402
from loudou.interop.records import Deal, DealEvent, Parsed  # noqa: E402
from loudou.pipeline.models import Opportunity, OpportunityHistory  # noqa: E402
from loudou.playbooks.models import Playbook, Stage, StageKind  # noqa: E402
from loudou.playbooks.selectors import playbook_get  # noqa: E402

SIZES = {"S": 100_000, "L": 1_000_000}
CHUNK = 50_000
SECONDS_PER_DAY = 86_400.0
# The moment the analytics are asked at (local time), and the dates the questions name.
NOW = timezone.make_aware(dt.datetime(2026, 11, 16, 10, 0))
AS_OF = dt.date(2026, 5, 31)
FLOW_FROM, FLOW_TO = dt.date(2026, 7, 1), dt.date(2026, 9, 30)
PERIOD = "2026Q4"
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


# --- the company ------------------------------------------------------------------------------


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


# --- the same rows in DuckDB --------------------------------------------------------------------


def _utc(moment: dt.datetime | None) -> str:
    if moment is None:
        return ""
    return moment.astimezone(dt.UTC).replace(tzinfo=None).isoformat(sep=" ")


def _naive(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


def load_duckdb() -> Any:
    """An in-memory DuckDB holding the stages, opportunities, history and stays."""
    con = duckdb.connect()
    con.execute("SET threads = 2")
    directory = Path(tempfile.mkdtemp(prefix="loudou-analytics-bench-"))
    tables: list[tuple[str, Any, dict[str, str], Callable[[tuple], tuple]]] = [
        (
            "stage",
            Stage.objects.values_list(
                "id", "key", "kind", "order", "probability", "max_days", "playbook__key"
            ),
            {"id": "BIGINT", "key": "VARCHAR", "kind": "VARCHAR", "ord": "INTEGER",
             "probability": "INTEGER", "max_days": "INTEGER", "playbook_key": "VARCHAR"},
            lambda r: r,
        ),
        (
            "opp",
            Opportunity.objects.order_by().values_list(
                "id", "playbook__key", "status", "stage_id", "amount", "close_date", "closed_on",
                "created_at", "probability_override", "name", "account__name",
                "owner__username", "currency",
            ),
            {"id": "BIGINT", "playbook_key": "VARCHAR", "status": "VARCHAR",
             "stage_id": "BIGINT", "amount": "DECIMAL(18,2)", "close_date": "DATE",
             "closed_on": "DATE", "created_at": "TIMESTAMP", "probability_override": "INTEGER",
             "name": "VARCHAR", "account_name": "VARCHAR", "owner_name": "VARCHAR",
             "currency": "VARCHAR"},
            lambda r: (*r[:7], _utc(r[7]), *r[8:]),
        ),
        (
            "hist",
            OpportunityHistory.objects.order_by().values_list(
                "id", "opportunity_id", "valid_from", "stage_id", "status", "amount",
                "probability", "close_date",
            ),
            {"id": "BIGINT", "opportunity_id": "BIGINT", "valid_from": "TIMESTAMP",
             "stage_id": "BIGINT", "status": "VARCHAR", "amount": "DECIMAL(18,2)",
             "probability": "INTEGER", "close_date": "DATE"},
            lambda r: (r[0], r[1], _utc(r[2]), *r[3:]),
        ),
        (
            "stay",
            OpportunityStay.objects.order_by().values_list(
                "opportunity_id", "stage_id", "entered_at", "exited_at", "outcome"
            ),
            {"opportunity_id": "BIGINT", "stage_id": "BIGINT", "entered_at": "TIMESTAMP",
             "exited_at": "TIMESTAMP", "outcome": "VARCHAR"},
            lambda r: (r[0], r[1], _utc(r[2]), _utc(r[3]), r[4]),
        ),
    ]  # fmt: skip
    for name, rows, columns, shape in tables:
        path = directory / f"{name}.csv"
        with path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            for row in rows.iterator(chunk_size=20_000):
                writer.writerow(["" if v is None else v for v in shape(row)])
        spec = "{" + ", ".join(f"'{c}': '{t}'" for c, t in columns.items()) + "}"
        con.execute(
            f"CREATE TABLE {name} AS SELECT * FROM read_csv('{path}', header = false, "
            f"columns = {spec}, nullstr = '', quote = '\"')"
        )
        path.unlink()
    directory.rmdir()
    return con


# --- DuckDB: the same figures -------------------------------------------------------------------


def duck_funnel(con: Any, pb: Playbook, at: dt.datetime) -> dict[str, Any]:
    rows = con.execute(
        """
        SELECT sg.key, l.r.status, count(*), sum(l.r.amount), sum(l.r.amount * l.r.probability)
        FROM (
            SELECT opportunity_id,
                   arg_max(struct_pack(stage_id := stage_id, status := status, amount := amount,
                                       probability := probability), (valid_from, id)) AS r
            FROM hist WHERE valid_from <= $at GROUP BY opportunity_id
        ) l
        JOIN opp o ON o.id = l.opportunity_id AND o.created_at <= $at AND o.playbook_key = $pb
        JOIN stage sg ON sg.id = l.r.stage_id
        GROUP BY ALL
        """,
        {"at": _naive(at), "pb": pb.key},
    ).fetchall()
    zero = Decimal("0.00")
    stages = {s.key: (0, zero, zero) for s in pb.ordered_stages() if s.kind == StageKind.OPEN}
    closed = {"won": (0, zero), "lost": (0, zero)}
    for key, status, count, amount, weighted in rows:
        if status == "open":
            stages[key] = (count, amount, (weighted / 100).quantize(zero))
        else:
            old = closed[status]
            closed[status] = (old[0] + count, old[1] + amount)
    return {"stages": stages, **closed}


def loudou_funnel(result: dict[str, Any]) -> dict[str, Any]:
    return {
        "stages": {
            s["key"]: (s["count"], Decimal(s["amount"]), Decimal(s["weighted_amount"]))
            for s in result["stages"]
        },
        "won": (result["won"]["count"], Decimal(result["won"]["amount"])),
        "lost": (result["lost"]["count"], Decimal(result["lost"]["amount"])),
    }


def _open_keys(pb: Playbook) -> list[str]:
    return [s.key for s in pb.ordered_stages() if s.kind == StageKind.OPEN]


def duck_conversion(con: Any, pb: Playbook, now: dt.datetime) -> dict[str, Any]:
    """Counts, naive and closed-only rates and the Aalen–Johansen estimate per stage and overall
    (the definitions of loudou.analytics.conversion), in SQL."""
    keys = _open_keys(pb)
    n = len(keys)
    values = ", ".join(f"('{k}', {i})" for i, k in enumerate(keys))
    mins = ", ".join(f"min(ent) FILTER (WHERE k >= {i}) AS m{i}" for i in range(n))
    firsts = ", ".join(
        [f"least(a.m{i}, CASE WHEN co.status = 'won' THEN coalesce(a.cl, co.c) END) AS f{i}"
         for i in range(n)]
        + [f"CASE WHEN co.status = 'won' THEN coalesce(a.cl, co.c) END AS f{n}"]
    )  # fmt: skip
    per_stage = " UNION ALL ".join(
        f"""SELECT {k} AS k, furthest = {k} AND status = 'open' AS open_here,
                   greatest(CASE WHEN furthest > {k} THEN f{k + 1}
                                 WHEN status = 'open' THEN $now ELSE closed_at END - f{k}, 0)
                   / 86400.0 AS dur,
                   CASE WHEN furthest > {k} THEN 1
                        WHEN furthest = {k} AND status = 'lost' THEN 2 ELSE 0 END AS ev
            FROM d WHERE furthest >= {k}"""
        for k in range(n)
    )
    tomorrow = day_start(timezone.localdate(now) + dt.timedelta(days=1))
    rows = con.execute(
        f"""
        WITH keys(key, k) AS (VALUES {values}),
        co AS (SELECT id, status, epoch(created_at) AS c FROM opp
               WHERE playbook_key = $pb AND created_at < $end),
        st AS (SELECT s.opportunity_id AS oid, keys.k, epoch(s.entered_at) AS ent,
                      epoch(s.exited_at) AS ex
               FROM stay s JOIN co ON co.id = s.opportunity_id
               JOIN stage sg ON sg.id = s.stage_id LEFT JOIN keys ON keys.key = sg.key),
        a AS (SELECT oid, max(k) AS fk, max(ex) AS cl, {mins} FROM st GROUP BY oid),
        d AS (SELECT co.id, co.status, co.c,
                     CASE WHEN co.status = 'won' THEN {n} ELSE coalesce(a.fk, -1) END AS furthest,
                     coalesce(a.cl, co.c) AS closed_at, {firsts}
              FROM co LEFT JOIN a ON a.oid = co.id),
        r AS ({per_stage}
              UNION ALL
              SELECT {n + 1}, status = 'open',
                     greatest(CASE WHEN status = 'open' THEN $now ELSE closed_at END - c, 0)
                     / 86400.0,
                     CASE status WHEN 'won' THEN 1 WHEN 'lost' THEN 2 ELSE 0 END
              FROM d),
        counts AS (SELECT k, count(*) AS reached, count(*) FILTER (WHERE ev = 1) AS advanced,
                          count(*) FILTER (WHERE ev = 2) AS lost_here,
                          count(*) FILTER (WHERE open_here) AS open_here
                   FROM r GROUP BY k),
        cells AS (SELECT k, dur, count(*) FILTER (WHERE ev = 0) AS c,
                         count(*) FILTER (WHERE ev = 1) AS a, count(*) FILTER (WHERE ev = 2) AS l
                  FROM r GROUP BY k, dur),
        risk AS (SELECT *, sum(c + a + l) OVER (PARTITION BY k) AS total,
                        sum(c + a + l) OVER (PARTITION BY k ORDER BY dur
                            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS before
                 FROM cells),
        factor AS (SELECT *, total - coalesce(before, 0) - a - l AS still,
                          total - coalesce(before, 0) - a - l - c AS after FROM risk),
        -- 1 / G just before each time: the product of the factors of the earlier times.
        g AS (SELECT *, coalesce(product(CASE WHEN after > 0 THEN still::DOUBLE / after
                                              ELSE 1.0 END)
                                 OVER (PARTITION BY k ORDER BY dur ROWS BETWEEN UNBOUNDED
                                       PRECEDING AND 1 PRECEDING), 1.0) AS inv_g
              FROM factor),
        aj AS (SELECT k, CASE WHEN sum(a + l) > 0 THEN sum(a * inv_g) / max(total) END AS cif
               FROM g GROUP BY k)
        SELECT counts.*, aj.cif FROM counts JOIN aj USING (k) ORDER BY k
        """,
        {"pb": pb.key, "end": _naive(tomorrow), "now": now.timestamp()},
    ).fetchall()
    found = {row[0]: row for row in rows}
    out: dict[str, Any] = {}
    won_key = next(s.key for s in pb.ordered_stages() if s.kind == StageKind.WON)
    for i, key in enumerate([*keys, "overall"]):
        k = i if key != "overall" else n + 1
        _k, reached, advanced, lost, open_, cif = found.get(k, (k, 0, 0, 0, 0, None))
        out[key] = _rates(reached, advanced, lost, open_, cif)
    # The won stage: reached by the deals won (overall's "advanced"); nothing comes after it.
    out[won_key] = (out["overall"][1], 0, 0, 0, None, None, None)
    return out


def _rates(reached: int, advanced: int, lost: int, open_: int, cif: float | None) -> tuple:
    def rate(a: int, b: int) -> float | None:
        return round(a / b, 4) if b else None

    estimate = None if cif is None else round(float(np.clip(cif, 0.0, 1.0)), 4)
    return (reached, advanced, lost, open_, rate(advanced, reached),
            rate(advanced, advanced + lost), estimate)  # fmt: skip


def loudou_conversion(result: dict[str, Any]) -> dict[str, Any]:
    out = {
        s["key"]: (s["reached"], s["advanced"], s["lost_here"], s["open_here"], s["naive"],
                   s["closed_only"], s["censored_estimate"])
        for s in result["stages"]
    }  # fmt: skip
    o = result["overall"]
    out["overall"] = (o["reached"], o["advanced"], o["lost_here"], o["open_here"], o["naive"],
                      o["closed_only"], o["censored_estimate"])  # fmt: skip
    return out


KM_SQL = """
    km_t AS (SELECT grp, dur AS t, count(*) AS n_t, count(*) FILTER (WHERE obs) AS d
             FROM km_in GROUP BY grp, dur),
    km_r AS (SELECT *, sum(n_t) OVER (PARTITION BY grp ORDER BY t DESC
                                      ROWS UNBOUNDED PRECEDING) AS at_risk FROM km_t),
    km_s AS (SELECT grp, t, product(1.0 - d::DOUBLE / at_risk)
                 OVER (PARTITION BY grp ORDER BY t ROWS UNBOUNDED PRECEDING) AS surv
             FROM km_r WHERE d > 0),
    km AS (SELECT grp, min(t) FILTER (WHERE surv <= 0.5 + 1e-9) AS km_median
           FROM km_s GROUP BY grp)
"""


def duck_velocity(con: Any, pb: Playbook, now: dt.datetime) -> dict[str, Any]:
    rows = con.execute(
        f"""
        WITH sc AS (SELECT id, status, created_at FROM opp WHERE playbook_key = $pb),
        s AS (SELECT sg.key AS grp,
                     greatest(coalesce(epoch(st.exited_at), $now) - epoch(st.entered_at), 0)
                     / 86400.0 AS dur,
                     st.exited_at IS NOT NULL AS obs
              FROM stay st JOIN sc ON sc.id = st.opportunity_id
              JOIN stage sg ON sg.id = st.stage_id WHERE sg.kind = 'open'),
        ws AS (SELECT opportunity_id, max(exited_at) AS at FROM stay WHERE outcome = 'won'
               GROUP BY opportunity_id),
        wh AS (SELECT opportunity_id, min(valid_from) AS at FROM hist WHERE status = 'won'
               GROUP BY opportunity_id),
        cyc AS (SELECT '' AS grp,
                       greatest(CASE WHEN sc.status = 'open' THEN $now
                                     ELSE epoch(coalesce(ws.at, wh.at)) END
                                - epoch(sc.created_at), 0) / 86400.0 AS dur,
                       sc.status = 'won' AS obs
                FROM sc LEFT JOIN ws ON ws.opportunity_id = sc.id
                LEFT JOIN wh ON wh.opportunity_id = sc.id
                WHERE sc.status = 'open' OR (sc.status = 'won'
                                             AND coalesce(ws.at, wh.at) IS NOT NULL)),
        km_in AS (SELECT * FROM s UNION ALL SELECT * FROM cyc),
        {KM_SQL},
        summary AS (SELECT grp, count(*) FILTER (WHERE obs) AS completed,
                           quantile_cont(dur, [0.5, 0.8]) FILTER (WHERE obs) AS q,
                           count(*) FILTER (WHERE NOT obs) AS still_open
                    FROM km_in GROUP BY grp)
        SELECT summary.grp, completed, q, still_open, km.km_median
        FROM summary LEFT JOIN km USING (grp)
        """,
        {"pb": pb.key, "now": now.timestamp()},
    ).fetchall()
    found = {row[0]: row for row in rows}

    def days(value: float | None) -> float | None:
        return None if value is None else round(value, 1)

    out: dict[str, Any] = {}
    for key in [*_open_keys(pb), ""]:
        _grp, completed, q, still_open, km = found.get(key, (key, 0, None, 0, None))
        median, p80 = (q or [None, None]) if completed else (None, None)
        out[key or "cycle_to_won"] = (completed, days(median), days(p80), days(km),
                                      still_open if key else None)  # fmt: skip
    return out


def loudou_velocity(result: dict[str, Any]) -> dict[str, Any]:
    out = {
        s["key"]: (s["completed_stays"], s["median_days"], s["p80_days"], s["km_median_days"],
                   s["open_stays"])
        for s in result["stages"]
    }  # fmt: skip
    c = result["cycle_to_won"]
    out["cycle_to_won"] = (c["completed"], c["median_days"], c["p80_days"], c["km_median_days"],
                           None)  # fmt: skip
    return out


def duck_stalled(con: Any, pb: Playbook, now: dt.datetime) -> list[tuple]:
    rows = con.execute(
        """
        WITH sc AS (SELECT id, status FROM opp WHERE playbook_key = $pb),
        p80 AS (SELECT sg.key, quantile_cont(greatest(epoch(st.exited_at)
                                                      - epoch(st.entered_at), 0) / 86400.0, 0.8) AS p
                FROM stay st JOIN sc ON sc.id = st.opportunity_id
                JOIN stage sg ON sg.id = st.stage_id
                WHERE sg.kind = 'open' AND sg.max_days IS NULL AND st.exited_at IS NOT NULL
                GROUP BY sg.key),
        cur AS (SELECT st.opportunity_id AS id, sg.key, sg.max_days::DOUBLE AS max_days,
                       greatest($now - epoch(st.entered_at), 0) / 86400.0 AS days
                FROM stay st JOIN sc ON sc.id = st.opportunity_id AND sc.status = 'open'
                JOIN stage sg ON sg.id = st.stage_id
                WHERE sg.kind = 'open' AND st.exited_at IS NULL),
        t AS (SELECT cur.*, coalesce(cur.max_days, p80.p) AS thr
              FROM cur LEFT JOIN p80 USING (key))
        SELECT t.id, key, days, thr, o.name, o.account_name, o.owner_name, o.amount, o.currency,
               o.close_date
        FROM t JOIN opp o ON o.id = t.id WHERE thr IS NOT NULL AND days > thr
        ORDER BY days - thr DESC, t.id
        """,
        {"pb": pb.key, "now": now.timestamp()},
    ).fetchall()
    # The list as loudou shows it: each deal with its name, account, owner, amount and date.
    return [(i, k, round(d, 1), round(t, 1), round(d - t, 1), name, account, owner, str(amount),
             currency, close.isoformat())
            for i, k, d, t, name, account, owner, amount, currency, close in rows]  # fmt: skip


def loudou_stalled(result: dict[str, Any]) -> list[tuple]:
    return [
        (d["id"], d["stage"], d["days_in_stage"], d["threshold_days"], d["days_over"], d["name"],
         d["account"], d["owner"], d["amount"], d["currency"], d["close_date"])
        for d in result["deals"]
    ]  # fmt: skip


BUCKETS = ("start", "created", "pulled_in", "pushed_out", "amount_change", "won", "lost", "end")


def duck_flow(con: Any, pb: Playbook, date_from: dt.date, date_to: dt.date) -> dict[str, Any]:
    """The waterfall of loudou.analytics.flow, in SQL: each deal's state at the start, then its
    history rows in the period walked with window functions."""
    rows = con.execute(
        """
        WITH starts AS (
            SELECT h.opportunity_id AS oid,
                   arg_max(struct_pack(status := h.status, amount := h.amount,
                                       close := h.close_date), (h.valid_from, h.id)) AS s
            FROM hist h JOIN opp o ON o.id = h.opportunity_id
            WHERE h.valid_from <= $s AND o.playbook_key = $pb AND o.created_at <= $s
            GROUP BY h.opportunity_id),
        ch AS (
            SELECT h.opportunity_id AS oid, h.valid_from, h.id, h.status, h.amount,
                   h.close_date, h.status = 'open' AND h.close_date BETWEEN $wf AND $wt AS now_in
            FROM hist h JOIN opp o ON o.id = h.opportunity_id
            WHERE h.valid_from > $s AND h.valid_from <= $e AND o.playbook_key = $pb
              AND o.created_at <= $e),
        walk AS (
            SELECT ch.*, row_number() OVER w AS rn,
                   coalesce(lag(now_in) OVER w,
                            st.s.status = 'open' AND st.s.close BETWEEN $wf AND $wt,
                            false) AS inside_before,
                   coalesce(lag(ch.status) OVER w, st.s.status) AS prev_status
            FROM ch LEFT JOIN starts st ON st.oid = ch.oid
            WINDOW w AS (PARTITION BY ch.oid ORDER BY ch.valid_from, ch.id)),
        per AS (
            SELECT oid,
                   arg_min(amount, rn) FILTER (WHERE NOT inside_before AND (now_in OR (
                       status = 'won' AND prev_status = 'open'
                       AND close_date BETWEEN $wf AND $wt))) AS entry,
                   arg_max(amount, rn) FILTER (WHERE inside_before AND NOT now_in) AS exit_amount,
                   arg_max(status, rn) AS end_status, arg_max(amount, rn) AS end_amount,
                   arg_max(now_in, rn) AS end_in
            FROM walk GROUP BY oid),
        deals AS (
            SELECT st.oid IS NOT NULL AS has_start,
                   coalesce(st.s.status = 'open' AND st.s.close BETWEEN $wf AND $wt, false)
                       AS in_start,
                   st.s.amount AS start_amount, p.entry, p.exit_amount,
                   coalesce(p.end_status, st.s.status) AS end_status,
                   coalesce(p.end_amount, st.s.amount) AS end_amount, p.end_in
            FROM starts st FULL OUTER JOIN per p ON p.oid = st.oid),
        c AS (
            SELECT CASE WHEN in_start THEN 'start' WHEN has_start THEN 'pulled_in'
                        ELSE 'created' END AS first_bucket,
                   CASE WHEN in_start THEN start_amount ELSE entry END AS base,
                   coalesce(end_in, in_start) AS inside_end, end_status, end_amount, exit_amount
            FROM deals WHERE in_start OR entry IS NOT NULL),
        c2 AS (
            SELECT *, CASE WHEN inside_end THEN 'end' WHEN end_status = 'won' THEN 'won'
                           WHEN end_status = 'lost' THEN 'lost' ELSE 'pushed_out' END AS last_bucket,
                      CASE WHEN inside_end OR end_status IN ('won', 'lost') THEN end_amount
                           ELSE exit_amount END AS final
            FROM c)
        SELECT bucket, count(*), sum(amount) FROM (
            SELECT first_bucket AS bucket, base AS amount FROM c2
            UNION ALL SELECT last_bucket, final FROM c2
            UNION ALL SELECT 'amount_change', final - base FROM c2)
        GROUP BY bucket
        """,
        {
            "s": _naive(start_of_day(date_from)),
            "e": _naive(end_of_day(date_to)),
            "wf": date_from,
            "wt": date_to,
            "pb": pb.key,
        },
    ).fetchall()
    found = {b: (n, a) for b, n, a in rows}
    zero = Decimal("0.00")
    out = {b: found.get(b, (0, zero)) for b in BUCKETS}
    out["amount_change"] = (0, out["amount_change"][1])
    return out


def loudou_flow(result: dict[str, Any]) -> dict[str, Any]:
    return {b: (result[b]["count"], Decimal(result[b]["amount"])) for b in BUCKETS}


def duck_period(con: Any, pb: Playbook, period: Any) -> tuple[Decimal, list, list]:
    booked = con.execute(
        "SELECT coalesce(sum(amount), 0) FROM opp WHERE playbook_key = $pb AND status = 'won' "
        "AND closed_on BETWEEN $a AND $b",
        {"pb": pb.key, "a": period.start, "b": period.end},
    ).fetchone()[0]
    rows = con.execute(
        """SELECT o.amount, coalesce(o.probability_override, sg.probability) FROM opp o
           JOIN stage sg ON sg.id = o.stage_id
           WHERE o.playbook_key = $pb AND o.status = 'open' AND o.close_date BETWEEN $a AND $b
           ORDER BY o.id""",
        {"pb": pb.key, "a": period.start, "b": period.end},
    ).fetchall()
    return Decimal(booked), [r[0] for r in rows], [int(r[1]) for r in rows]


def duck_weighted(con: Any, pb: Playbook, period: Any) -> tuple:
    row = con.execute(
        """
        SELECT (SELECT coalesce(sum(amount), 0) FROM opp WHERE playbook_key = $pb
                AND status = 'won' AND closed_on BETWEEN $a AND $b),
               coalesce(sum(o.amount * coalesce(o.probability_override, sg.probability)), 0),
               count(*)
        FROM opp o JOIN stage sg ON sg.id = o.stage_id
        WHERE o.playbook_key = $pb AND o.status = 'open' AND o.close_date BETWEEN $a AND $b
        """,
        {"pb": pb.key, "a": period.start, "b": period.end},
    ).fetchone()
    return Decimal(row[0]), Decimal(row[0]) + Decimal(row[1]) / 100, row[2]


def duck_forecast(con: Any, pb: Playbook, period: Any) -> tuple:
    booked, amounts, probabilities = duck_period(con, pb, period)
    deals = PeriodDeals(booked, amounts, probabilities)
    sim = simulate(deals)
    return deals.booked, deals.weighted, sim.p10, sim.p50, sim.p90, len(amounts)


# --- the run ------------------------------------------------------------------------------------


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
