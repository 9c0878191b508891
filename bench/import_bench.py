"""Benchmark: the native import path, opportunities plus their history, into an empty SQLite (or
PostgreSQL) database, beside a bare insert of the same number of rows in the same run.

    LOUDOU_DEBUG=1 LOUDOU_VAR_DIR=$(mktemp -d) .venv/bin/python bench/import_bench.py \
        [--deals 100000] [--history 3] [--seed 7]

It migrates the database, makes a branch, 20 sellers and 500 accounts (not timed), writes a
native CSV pair (opportunities.csv and history.csv: each deal created in the first open stage and
moving forward `--history`-1 times, some won or lost), then times:

- read:   decoding and parsing the CSV files into deals (tables.py, formats/native.py);
- check:  the stage mapping, owners, accounts and every deal's history (importer._plan);
- write:  the bulk insert (writer.write) of opportunities, history, stays, state spans, audit rows
          and external ids, the indexes created again and the commit;

and, as yardsticks, a bare `executemany` (SQLite) or `COPY` (PostgreSQL: what the importer
uses there) of as many rows as the issue counts (opportunities and history) into a scratch table
of the same width, without indexes; and on SQLite the very rows the import wrote, read back and
written again by bare `executemany`s into a copy of the database as the import found it (same
tables, same indexes set aside and created again, same pragmas): all six tables, then the
opportunities and their history alone. Rows/s counts opportunities plus history rows (what the
issue asks: "opportunities plus history"). Compare the ratio between runs: the machine is
shared. Each phase also shows the CPU seconds of this process (`time.process_time`), which other
programs' load disturbs less than the wall clock; on SQLite that includes the database's own
work, on PostgreSQL not the server's.
"""

import argparse
import csv
import datetime as dt
import gc
import os
import random
import sqlite3
import tempfile
import time
from pathlib import Path

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loudou.settings")
os.environ.setdefault("LOUDOU_DEBUG", "1")

import django

django.setup()

from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from loudou.analytics.models import OpportunityStay, StateSpan  # noqa: E402
from loudou.core.models import AuditEvent  # noqa: E402
from loudou.customers.models import Account  # noqa: E402
from loudou.interop import importer, writer  # noqa: E402
from loudou.interop.formats import native  # noqa: E402
from loudou.interop.formats.common import DealOptions  # noqa: E402
from loudou.interop.models import ExternalId  # noqa: E402
from loudou.interop.tables import read_file  # noqa: E402
from loudou.org.models import User  # noqa: E402
from loudou.org.services import branch_create, user_create  # noqa: E402
from loudou.pipeline.models import Opportunity, OpportunityHistory  # noqa: E402
from loudou.playbooks.models import StageKind  # noqa: E402
from loudou.playbooks.selectors import playbook_get  # noqa: E402
from loudou.playbooks.services import playbooks_load_builtin  # noqa: E402


def setup() -> tuple[User, list[User], list[str]]:
    call_command("migrate", verbosity=0)
    playbooks_load_builtin()
    if User.objects.filter(username="bench-admin").exists():
        raise SystemExit("run on an empty database (LOUDOU_VAR_DIR=$(mktemp -d))")
    branch = branch_create(actor=None, code="bench", name="基准分公司")
    admin = user_create(
        actor=None,
        username="bench-admin",
        password="x",
        branch=branch,
        access_level="admin",
        check_password=False,
    )
    sellers = [
        user_create(actor=None, username=f"s{i:02d}", password="x", branch=branch,
                    check_password=False)
        for i in range(20)
    ]  # fmt: skip
    now = dt.datetime.now(dt.UTC)
    Account.objects.bulk_create(
        Account(name=f"客户{i:04d}", owner=sellers[i % 20], branch=branch, created_at=now,
                updated_at=now, organisations_count=1)
        for i in range(500)
    )  # fmt: skip
    return admin, sellers, [f"客户{i:04d}" for i in range(500)]


def write_files(directory: Path, deals: int, steps: int, seed: int, sellers: list[User],
                accounts: list[str]) -> None:  # fmt: skip
    rng = random.Random(seed)
    stages = [s.key for s in playbook_get().ordered_stages() if s.kind == StageKind.OPEN]
    start = dt.datetime(2024, 1, 1, 9, 0)
    with (
        (directory / "opportunities.csv").open("w", newline="", encoding="utf-8") as o,
        (directory / "history.csv").open("w", newline="", encoding="utf-8") as h,
    ):
        opps, hist = csv.writer(o), csv.writer(h)
        opps.writerow(["id", "name", "account", "owner", "stage", "status", "amount", "currency",
                       "close_date", "created_at"])  # fmt: skip
        hist.writerow(["deal_id", "at", "stage", "status"])
        for n in range(deals):
            created = start + dt.timedelta(minutes=rng.randrange(0, 900_000))
            at, stage_index = created, 0
            for _step in range(steps):
                hist.writerow([f"D{n}", at.isoformat(sep=" "), stages[stage_index], "open"])
                at += dt.timedelta(days=rng.randrange(1, 40))
                stage_index = min(stage_index + 1, len(stages) - 1)
            outcome = rng.choice(["open", "open", "won", "lost"])
            stage = stages[max(stage_index - 1, 0)] if outcome != "won" else "closed"
            opps.writerow([f"D{n}", f"商机 {n}", rng.choice(accounts), rng.choice(sellers).username,
                           stage, outcome, rng.randrange(10_000, 5_000_000), "CNY",
                           (at + dt.timedelta(days=30)).date().isoformat(),
                           created.isoformat(sep=" ")])  # fmt: skip


def baseline(rows: int) -> float:
    """Seconds for a bare executemany (SQLite) or COPY (PostgreSQL) of `rows` rows of 14 columns
    into a scratch table."""
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS bench_scratch")
        cursor.execute(
            "CREATE TABLE bench_scratch (a integer, b varchar(40), c integer, d varchar(8), "
            "e numeric(18,2), f varchar(3), g date, h integer, i integer, j varchar(20), "
            "k integer, l varchar(32), m text, n text)"
        )
    data = [
        (i, "2026-01-01 10:00:00", i % 7, "open", "123456.00", "CNY", "2026-03-01", 50, i % 20,
         "pipeline", 1, "import", '["stage"]', "imported from native")
        for i in range(rows)
    ]  # fmt: skip
    started = time.perf_counter()
    with transaction.atomic(), connection.cursor() as cursor:
        if connection.vendor == "postgresql":  # the importer's own way there: COPY
            with cursor.cursor.copy("COPY bench_scratch FROM STDIN") as copy:
                for row in data:
                    copy.write_row(row)
        else:
            cursor.executemany(
                "INSERT INTO bench_scratch VALUES (" + ", ".join(["%s"] * 14) + ")", data
            )
    elapsed = time.perf_counter() - started
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE bench_scratch")
    return elapsed


# The tables an import of new deals writes into (a native import without accounts or contacts),
# the deals and their history first; and those whose indexes an initial load sets aside.
WRITTEN = tuple(m._meta.db_table for m in (Opportunity, OpportunityHistory, AuditEvent, ExternalId,
                                           OpportunityStay, StateSpan))  # fmt: skip
ASIDE = tuple(m._meta.db_table for m in writer.INDEXED_ASIDE)


def same_rows(empty: Path, loaded: Path, tables: tuple[str, ...]) -> dict[str, float]:
    """Seconds, per step, of writing the rows the import wrote into `tables` with nothing but
    bare `executemany`s: the rows read back from the loaded database as SQLite stores them, then
    inserted into a copy of the database taken before the import, with the indexes set aside
    and created again as the importer does, in one transaction, with the pragmas loudou's
    connections use. None of the importer's own work (reading, checking, building rows, deriving
    stays and spans) is in it: what this takes is what the rows themselves cost."""
    source = sqlite3.connect(loaded)
    rows = {}
    target = sqlite3.connect(empty, isolation_level=None)
    for table in tables:
        top = target.execute(f"SELECT COALESCE(MAX(id), 0) FROM {table}").fetchone()[0]
        rows[table] = source.execute(f"SELECT * FROM {table} WHERE id > ?", (top,)).fetchall()
    source.close()
    target.executescript(connection.settings_dict["OPTIONS"]["init_command"])
    target.execute(f"PRAGMA cache_size = {-1024 * writer.PAGE_CACHE_MB}")  # as the import
    aside = [t for t in tables if t in ASIDE]
    indexes = target.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        f" AND tbl_name IN ({', '.join('?' * len(aside))})",
        aside,
    ).fetchall()
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    target.execute("BEGIN IMMEDIATE")
    for name, _sql in indexes:
        target.execute(f'DROP INDEX "{name}"')
    for table in tables:
        step = time.perf_counter()
        if rows[table]:
            marks = ", ".join("?" * len(rows[table][0]))
            target.executemany(f"INSERT INTO {table} VALUES ({marks})", rows[table])
        seconds[f"{table} ({len(rows[table]):,} rows)"] = time.perf_counter() - step
    step = time.perf_counter()
    for _name, sql in indexes:
        target.execute(sql)
    seconds[f"{len(indexes)} indexes created again"] = time.perf_counter() - step
    step = time.perf_counter()
    target.execute("COMMIT")
    seconds["commit"] = time.perf_counter() - step
    seconds["total"] = time.perf_counter() - started
    target.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deals", type=int, default=100_000)
    parser.add_argument("--history", type=int, default=3, help="history rows per deal in the file")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--gc", action="store_true", help="Leave Python's cyclic GC on (the web import does)."
    )
    args = parser.parse_args()
    admin, sellers, accounts = setup()
    directory = Path(tempfile.mkdtemp(prefix="loudou-import-bench-"))
    write_files(directory, args.deals, args.history, args.seed, sellers, accounts)
    playbook = playbook_get()

    if connection.vendor == "sqlite":  # a copy of the database as the import finds it
        with connection.cursor() as cursor:
            for name in ("copy-all", "copy-deals"):
                cursor.execute("VACUUM INTO %s", [str(directory / f"{name}.sqlite3")])
    if not args.gc:  # as `loudou import` runs (see cyclic_gc_paused in loudou.core.cli)
        gc.disable()
    t0, c0 = time.perf_counter(), time.process_time()
    sheets = read_file(directory)
    parsed = native.parse(sheets, DealOptions(), None)
    t1, c1 = time.perf_counter(), time.process_time()
    problems: list = []
    plan = importer._plan(parsed, admin, playbook, {}, None, "CNY", problems, importer.NoProgress())
    assert not problems, problems[:5]
    t2, c2 = time.perf_counter(), time.process_time()
    profile = None
    if os.environ.get("BENCH_PROFILE"):  # where the write phase spends its time
        import cProfile

        profile = cProfile.Profile()
        profile.enable()
    with transaction.atomic():
        writer.write(parsed, plan, admin, playbook, importer.NoProgress())
        written = time.perf_counter()
    if profile is not None:
        profile.disable()
        profile.print_stats(os.environ["BENCH_PROFILE"])
    t3, c3 = time.perf_counter(), time.process_time()
    opportunities = Opportunity.objects.count()
    history = OpportunityHistory.objects.count()
    rows = opportunities + history
    bare = baseline(rows)
    way = "COPY" if connection.vendor == "postgresql" else "executemany"
    print(f"database: {connection.vendor}; deals {opportunities:,}, history rows {history:,}")
    phases = (("read", t1 - t0, c1 - c0), ("check", t2 - t1, c2 - c1),
              ("write", t3 - t2, c3 - c2), ("total", t3 - t0, c3 - c0))  # fmt: skip
    for label, seconds, cpu in phases:
        print(f"  {label:<6} {seconds:7.2f} s  {rows / seconds:>10,.0f} rows/s   cpu {cpu:6.2f} s")
    for table, (count, seconds) in writer.DATABASE_SECONDS.items():
        print(f"    {table:<32} {count:>9,} rows  {seconds:6.2f} s in the database")
    print(f"    {'commit':<42} {t3 - written:6.2f} s")
    print(f"  bare {way} of {rows:,} rows: {bare:.2f} s, {rows / bare:,.0f} rows/s")
    print(f"  write / bare {way}: {(t3 - t2) / bare:.2f}×")
    if connection.vendor == "sqlite":
        loaded = Path(connection.settings_dict["NAME"])
        print("  the same rows by bare executemany into the same tables and indexes:")
        for name, tables in (("all", WRITTEN), ("deals", WRITTEN[:2])):
            seconds = same_rows(directory / f"copy-{name}.sqlite3", loaded, tables)
            total = seconds.pop("total")
            print(f"    {len(tables)} tables: {total:6.2f} s, {rows / total:,.0f} rows/s")
            for step, step_seconds in seconds.items():
                print(f"      {step:<48} {step_seconds:6.2f} s")


if __name__ == "__main__":
    main()
