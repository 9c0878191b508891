"""DuckDB beside loudou (bench/analytics_bench.py steps 3 and 4): the benchmark company's
opportunities, history, stays and stages copied into an in-memory DuckDB, the SQL that computes
each analytic's figures there, and loudou's results shaped the same way for the comparison.
Import it after `django.setup()` (bench/analytics_bench.py does)."""

import csv
import datetime as dt
import tempfile
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
from django.utils import timezone

from loudou.analytics.flow import start_of_day
from loudou.analytics.forecast import (
    PeriodDeals,
    simulate,
)
from loudou.analytics.models import OpportunityStay
from loudou.analytics.selectors import day_start, end_of_day
from loudou.pipeline.models import Opportunity, OpportunityHistory
from loudou.playbooks.models import Playbook, Stage, StageKind


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
