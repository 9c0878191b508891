"""Faults: pulling the plug on an import, and a database that cannot take writes.

- `loudou import native` killed with SIGKILL twenty times at seeded random moments spread over
  its whole run (start-up, reading and checking the files, writing, committing): after each kill
  the database passes its integrity check, holds either every row the file brings or none of
  them (every table compared with the database before the import and after a complete one), and
  `loudou analytics verify` passes (run in one long-lived process; the last check is the
  command line's own exit code). Then the import runs to the end once and holds everything.
- A read-only database and a full disk: the import and a single write from the command line
  exit non-zero with one clear sentence on stderr, no traceback, and nothing changed.

The commands run in subprocesses against a scratch database of the suite's kind (conftest.py).
"""

import csv
import datetime as dt
import os
import random
import re
import resource
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.trust.conftest import SELLERS, ScratchDatabase

DEALS = 1200  # about three seconds of import here, start-up included
ACCOUNTS = 150
HISTORY_STEPS = 3
# Twenty on each database (on PostgreSQL each kill that lands after the commit costs a DROP and
# CREATE DATABASE, so the test takes about two minutes there).
KILLS = {"sqlite": 20, "postgresql": 20}
SEED = 20261127
STAGES = ["discover", "intent", "project", "recognition", "negotiation"]


def write_import_files(directory: Path, deals: int = DEALS) -> Path:
    """A native-format pair (opportunities.csv, history.csv) as `loudou import template`
    describes it: each deal created in the first stage and moved forward twice, a quarter won
    and a quarter lost; its accounts are new (the import creates them)."""
    directory.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED)
    start = dt.datetime(2024, 1, 1, 9, 0)
    with (
        (directory / "opportunities.csv").open("w", newline="", encoding="utf-8") as o,
        (directory / "history.csv").open("w", newline="", encoding="utf-8") as h,
    ):
        opps, hist = csv.writer(o), csv.writer(h)
        opps.writerow(["id", "name", "account", "owner", "stage", "status", "amount",
                       "currency", "close_date", "created_at"])  # fmt: skip
        hist.writerow(["deal_id", "at", "stage", "status"])
        for n in range(deals):
            created = start + dt.timedelta(minutes=rng.randrange(0, 900_000))
            at = created
            for step in range(HISTORY_STEPS):
                hist.writerow([f"K{n}", at.isoformat(sep=" "), STAGES[step], "open"])
                at += dt.timedelta(days=rng.randrange(1, 40))
            outcome = ["open", "open", "won", "lost"][n % 4]
            stage = "closed" if outcome == "won" else STAGES[HISTORY_STEPS - 1]
            opps.writerow([f"K{n}", f"断电测试商机 {n}", f"断电测试客户 {n % ACCOUNTS:03d}",
                           f"s{n % SELLERS:02d}", stage, outcome, rng.randrange(10_000, 5_000_000),
                           "CNY", (at + dt.timedelta(days=30)).date().isoformat(),
                           created.isoformat(sep=" ")])  # fmt: skip
    return directory


@pytest.fixture(scope="module")
def import_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_import_files(tmp_path_factory.mktemp("import") / "native")


def changed(before: dict[str, int], after: dict[str, int]) -> dict[str, tuple[int, int]]:
    return {t: (before.get(t, 0), n) for t, n in after.items() if before.get(t, 0) != n}


def timed_run(scratch: ScratchDatabase, import_files: Path) -> tuple[float, float, float]:
    """A complete import, watched: (seconds to the end, when its write transaction was first
    seen open, when it was last seen open)."""
    started = time.monotonic()
    process = scratch.popen("import", "native", str(import_files))
    seen: list[float] = []
    while process.poll() is None:
        if scratch.writing():
            seen.append(time.monotonic() - started)
        time.sleep(0.02)
    whole = time.monotonic() - started
    assert process.returncode == 0
    # A write too quick to be seen: the last fifth of the run.
    return whole, (seen[0] if seen else whole * 0.8), (seen[-1] if seen else whole * 0.95)


def test_an_import_killed_at_random_moments_leaves_all_or_nothing(
    scratch: ScratchDatabase, import_files: Path
) -> None:
    empty = scratch.counts()
    # One complete run: how long it takes and when it writes, and every table as the whole file
    # leaves it.
    whole_run, write_from, write_to = timed_run(scratch, import_files)
    first_run = whole_run
    full = scratch.counts()
    grown = changed(empty, full)
    assert grown["pipeline_opportunity"] == (1, 1 + DEALS)
    assert grown["customers_account"] == (1, 1 + ACCOUNTS)
    assert full["pipeline_opportunityhistory"] >= 1 + DEALS * HISTORY_STEPS
    scratch.reset()

    rng = random.Random(SEED)
    kills = KILLS[scratch.vendor]
    # Three in five kills at a moment in each of as many equal slices of the whole run (start-up,
    # reading and checking the files take half of it), the rest in equal slices of the write,
    # the commit and what follows it, so every phase is hit.
    spread = kills - kills * 2 // 5
    end = whole_run
    moments = [whole_run * (i + rng.random()) / spread for i in range(spread)]
    moments += [
        write_from + (end - write_from) * (i + rng.random()) / (kills - spread)
        for i in range(kills - spread)
    ]
    rng.shuffle(moments)
    outcomes: Counter = Counter()
    phases: Counter = Counter()
    verify_seconds = 0.0
    attempts = 0
    verifier = scratch.verifier()
    log: list[str] = []  # each attempt: when the kill came, what it left, how long it all took
    while moments:
        attempts += 1
        assert attempts <= kills * 2, f"the import kept finishing before the kill: {log}"
        delay = moments.pop()
        started = time.monotonic()
        process = scratch.popen("import", "native", str(import_files))
        writing = False
        try:
            process.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            writing = scratch.writing()
            os.kill(process.pid, signal.SIGKILL)
        code = process.wait()
        if code != -signal.SIGKILL:  # it finished first: runs got faster than the first one
            assert code == 0
            took = time.monotonic() - started
            log.append(f"{delay:.2f}s:finished first in {took:.1f}s")
            # Shrink the moments still to come to the run just seen, and try this one again.
            moments = [m * took / whole_run for m in moments] + [delay * took / whole_run * 0.97]
            whole_run = took
            scratch.reset()
            continue
        scratch.wait_idle()
        assert scratch.integrity() == "ok"
        now = scratch.counts()
        assert now in (empty, full), f"after a kill at {delay:.2f} s: {changed(empty, now)}"
        t0 = time.monotonic()
        assert verifier.check() == "ok"
        verify_seconds += time.monotonic() - t0
        log.append(
            f"{delay:.2f}s:{'all' if now == full else 'none'}:{time.monotonic() - started:.1f}s"
        )
        if now == full:
            outcomes["all"] += 1
            phases["after the commit"] += 1
            scratch.reset()
        else:
            outcomes["none"] += 1
            phases["while writing" if writing else "before writing"] += 1
    verifier.close()
    assert sum(outcomes.values()) == kills
    # The last kill left nothing, or the database was reset: the import completes.
    done = scratch.run("import", "native", str(import_files))
    assert done.returncode == 0, done.stderr
    assert scratch.counts() == full
    assert scratch.integrity() == "ok"
    verified = scratch.run("analytics", "verify")
    assert verified.returncode == 0, verified.stderr
    assert "analytics caches agree with history" in verified.stdout
    print(
        f"\n{scratch.vendor}: {kills} kills survived ({dict(outcomes)}; {dict(phases)}; "
        f"{attempts - kills} runs finished first), first import {first_run:.2f} s, writing "
        f"{write_from:.2f}–{write_to:.2f} s, verify {verify_seconds / kills:.2f} s each\n{log}"
    )


# --- a database that cannot take writes ---------------------------------------------------

TRACEBACK = re.compile(r"Traceback|File \"|Error:\s*$|^\s+\^", re.MULTILINE)


def drop_file_capabilities() -> None:
    """In the child, before exec: give up root's power to write files whatever their mode
    (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER), so chmod 0444 binds it as it binds
    any user. Dropped from the bounding set, they are gone from the program exec'd next."""
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    pr_capbset_drop = 24
    for capability in (1, 2, 3):
        if libc.prctl(pr_capbset_drop, capability, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def refused(result: subprocess.CompletedProcess, sentence: str) -> None:
    """The command failed with `sentence` on stderr, and no traceback."""
    assert result.returncode != 0, result.stdout
    assert sentence in result.stderr, result.stderr
    assert not TRACEBACK.search(result.stderr), result.stderr
    assert len(result.stderr.strip().splitlines()) <= 3, result.stderr


def cli_write(scratch: ScratchDatabase) -> tuple[str, ...]:
    """One write from the command line: evidence for a criterion of the scratch opportunity."""
    return ("opportunity", "--as", "s00", "evidence", str(scratch.opportunity), "interested",
            "They called")  # fmt: skip


def read_only_runs(scratch: ScratchDatabase, import_files: Path, directory_too: bool) -> list:
    """The import and the single write, against a read-only database."""
    commands = [("import", "native", str(import_files)), cli_write(scratch)]
    if scratch.vendor == "sqlite":
        # As root, chmod binds only once the file capabilities are dropped.
        extra: dict[str, Any] = {"preexec_fn": drop_file_capabilities} if os.geteuid() == 0 else {}
        scratch.path.chmod(0o444)
        if directory_too:
            scratch.var.chmod(0o555)
        try:
            return [scratch.run(*command, **extra) for command in commands]
        finally:
            scratch.var.chmod(0o755)
            for path in scratch.sqlite_files():
                if path.exists():
                    path.chmod(0o644)
    with scratch.pg() as conn:
        conn.execute(f'ALTER DATABASE "{scratch.name}" SET default_transaction_read_only = on')
    try:
        return [scratch.run(*command) for command in commands]
    finally:
        with scratch.pg() as conn:
            conn.execute(f'ALTER DATABASE "{scratch.name}" RESET default_transaction_read_only')


def test_a_read_only_database_is_a_clear_error(
    scratch: ScratchDatabase, import_files: Path
) -> None:
    """SQLite: the file read-only, then the file and its directory (no room for the write-ahead
    log either), as an operator's mistake or a read-only mount leaves them. PostgreSQL: the
    database set read-only on the server."""
    before = scratch.counts()
    ways = [False, True] if scratch.vendor == "sqlite" else [False]
    for directory_too in ways:
        for result in read_only_runs(scratch, import_files, directory_too):
            refused(result, "The database is read-only")
        assert scratch.counts() == before
        assert scratch.integrity() == "ok"
    # Writable again, the same write goes through: the refusal was the database's.
    done = scratch.run(*cli_write(scratch))
    assert done.returncode == 0, done.stderr
    assert (
        scratch.counts()["pipeline_criterionevidence"] == before["pipeline_criterionevidence"] + 1
    )


def test_a_full_disk_is_a_clear_error_and_changes_nothing(
    scratch: ScratchDatabase, tmp_path: Path, import_files: Path
) -> None:
    """SQLite on a disk with no room for the import: the file-size limit of the process is
    what a full disk looks like to SQLite (mounting a small file system needs privileges a test
    does not have). A full disk on PostgreSQL is the server's own: in the PostgreSQL run this
    test uses a SQLite scratch database of its own."""
    if scratch.vendor != "sqlite":
        scratch = ScratchDatabase(tmp_path)
        scratch.server, scratch.vendor = None, "sqlite"
        scratch.create()
    before = scratch.counts()
    room = max(p.stat().st_size for p in scratch.sqlite_files() if p.exists()) + 256 * 1024

    def no_room() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (room, room))

    result = scratch.run("import", "native", str(import_files), preexec_fn=no_room)
    refused(result, "The disk is full")
    assert scratch.integrity() == "ok"
    assert scratch.counts() == before
    assert scratch.run("analytics", "verify").returncode == 0
