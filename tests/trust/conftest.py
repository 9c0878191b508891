"""Fixtures for the fault tests (tests/trust/test_import_kill.py): a scratch database of its own,
outside the test database, that `loudou` commands run against in subprocesses so they can be
killed, starved of disk or refused writes.

The scratch database is the same kind as the suite's: a SQLite file in a temporary directory
when DATABASE_URL is unset, a database of its own on the same PostgreSQL server otherwise
(created with CREATE DATABASE, dropped afterwards). It is migrated once per module, with the
built-in playbooks, a branch, ten sellers and one open opportunity, and kept as a template that
`reset()` copies back.
"""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings

SELLERS = 10

SETUP = """
import django
django.setup()
from django.core.management import call_command
from loudou.customers.services import account_create
from loudou.org.services import branch_create, user_create
from loudou.pipeline import services as ps
from loudou.pipeline.catalogs import lost_reasons_load_defaults
from loudou.playbooks.services import playbooks_load_builtin
import datetime as dt, json, sys

call_command("migrate", verbosity=0)
playbooks_load_builtin()
lost_reasons_load_defaults()
branch = branch_create(actor=None, code="trust", name="测试分公司")
sellers = [
    user_create(actor=None, username=f"s{i:02d}", password="x", branch=branch,
                check_password=False)
    for i in range(int(sys.argv[1]))
]
account = account_create(actor=sellers[0], name="故障测试客户", industry="power",
                         size_band="large", organisations_count=3, it_need="集团财务",
                         product_fit="财务")
opp = ps.opportunity_create(actor=sellers[0], account=account, name="故障测试商机",
                            amount="500000", close_date=dt.date(2030, 1, 1), source="Referral",
                            evidence={"need_found": "CFO described the need"})
print(json.dumps({"opportunity": opp.pk}))
"""


VERIFIER = """
import django, sys
django.setup()
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connections
from io import StringIO

for line in sys.stdin:
    err = StringIO()
    try:
        call_command("analytics", "verify", stdout=StringIO(), stderr=err)
        answer = "ok"
    except CommandError as exc:
        answer = " | ".join([str(exc), *err.getvalue().splitlines()])
    finally:
        connections.close_all()
    print(answer, flush=True)
"""


def _postgres_server() -> dict[str, Any] | None:
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        return None
    return {
        "user": db.get("USER") or "",
        "password": db.get("PASSWORD") or "",
        "host": db.get("HOST") or "localhost",
        "port": str(db.get("PORT") or 5432),
    }


class ScratchDatabase:
    """A migrated database the `loudou` command line runs against in subprocesses."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.var = root / "var"
        (self.var / "static").mkdir(parents=True)
        self.server = _postgres_server()
        self.vendor = "postgresql" if self.server else "sqlite"
        self.path = self.var / "loudou.sqlite3"
        self.template = root / "template.sqlite3"
        suffix = f"{os.getpid()}_{int(time.time() * 1000) % 10**8}"
        self.name = f"loudou_trust_{suffix}"
        self.template_name = f"loudou_trust_tpl_{suffix}"
        self.amcheck = False
        self.opportunity = 0

    # --- running commands ---------------------------------------------------------------

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("DATABASE_URL", None)
        env.update(
            LOUDOU_DEBUG="1",
            LOUDOU_VAR_DIR=str(self.var),
            LOUDOU_ENV_FILE=str(self.root / "no.env"),
            LOUDOU_LANGUAGE="en",
            DJANGO_SETTINGS_MODULE="loudou.settings",
            PYTHONDONTWRITEBYTECODE="1",
        )
        if self.server:
            env["DATABASE_URL"] = self.url(self.name)
        return env

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "loudou", *args]

    def run(self, *args: str, timeout: float = 120, **kw: Any) -> subprocess.CompletedProcess:
        """`loudou ARGS` to completion: its exit code, stdout and stderr."""
        return subprocess.run(
            self.command(*args),
            env=self.env(),
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            **kw,
        )

    def popen(self, *args: str) -> subprocess.Popen:
        return subprocess.Popen(
            self.command(*args),
            env=self.env(),
            cwd=self.root,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def verifier(self) -> "Verifier":
        """`loudou analytics verify` in one long-lived process: the same command, without
        twenty Django start-ups. It holds no connection between checks."""
        return Verifier(
            subprocess.Popen(
                [sys.executable, "-c", VERIFIER],
                env=self.env(),
                cwd=self.root,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        )

    # --- PostgreSQL plumbing ----------------------------------------------------------------

    def url(self, name: str) -> str:
        assert self.server
        s = self.server
        user = urllib.parse.quote(s["user"], safe="")
        password = (":" + urllib.parse.quote(s["password"], safe="")) if s["password"] else ""
        return f"postgres://{user}{password}@{s['host']}:{s['port']}/{name}"

    def pg(self, name: str = "postgres") -> Any:
        import psycopg

        assert self.server
        s = self.server
        return psycopg.connect(
            dbname=name,
            user=s["user"] or None,
            password=s["password"] or None,
            host=s["host"],
            port=s["port"],
            autocommit=True,
        )

    def wait_idle(self, timeout: float = 30) -> None:
        """On PostgreSQL, until no backend serves the scratch database: a killed client's server
        process may still be finishing (rolling back, or committing what it had been sent)."""
        if not self.server:
            return
        deadline = time.monotonic() + timeout
        with self.pg() as conn:
            while True:
                busy = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [self.name]
                ).fetchone()[0]
                if not busy:
                    return
                assert time.monotonic() < deadline, "a killed import's server process lingers"
                time.sleep(0.05)

    # --- life cycle -----------------------------------------------------------------------

    def create(self) -> None:
        """Migrate, load the playbooks, make the sellers and one opportunity; keep it as the
        template."""
        if self.server:
            with self.pg() as conn:
                conn.execute(f'CREATE DATABASE "{self.template_name}"')
            with self.pg(self.template_name) as conn:
                try:
                    conn.execute("CREATE EXTENSION IF NOT EXISTS amcheck")
                    self.amcheck = True
                except Exception:
                    self.amcheck = False
        env = self.env()
        if self.server:
            env["DATABASE_URL"] = self.url(self.template_name)
        done = subprocess.run(
            [sys.executable, "-c", SETUP, str(SELLERS)],
            env=env,
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        self.opportunity = json.loads(done.stdout.strip().splitlines()[-1])["opportunity"]
        if not self.server:
            shutil.copyfile(self.path, self.template)
        self.reset()

    def reset(self) -> None:
        """Back to the template: the migrated database with no import in it."""
        if self.server:
            self.wait_idle()
            with self.pg() as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
                conn.execute(f'CREATE DATABASE "{self.name}" TEMPLATE "{self.template_name}"')
            return
        for path in self.sqlite_files():
            path.unlink(missing_ok=True)
        shutil.copyfile(self.template, self.path)

    def drop(self) -> None:
        if self.server:
            with self.pg() as conn:
                for name in (self.name, self.template_name):
                    conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def sqlite_files(self) -> list[Path]:
        return [self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")]

    # --- reading it back ------------------------------------------------------------------

    def writing(self) -> bool:
        """Whether another process is inside a write transaction on the database now: on
        SQLite it holds the write lock (a BEGIN IMMEDIATE with no wait fails), on PostgreSQL its
        backend has a transaction id (given at the first write)."""
        if self.server:
            with self.pg() as conn:
                return bool(
                    conn.execute(
                        "SELECT count(*) FROM pg_stat_activity WHERE datname = %s "
                        "AND backend_xid IS NOT NULL AND pid <> pg_backend_pid()",
                        [self.name],
                    ).fetchone()[0]
                )
        conn = sqlite3.connect(self.path, timeout=0, isolation_level=None)
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
            return False
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                return True
            raise
        finally:
            conn.close()

    def counts(self) -> dict[str, int]:
        """The number of rows of every table."""
        if self.server:
            with self.pg(self.name) as conn:
                tables = [
                    r[0]
                    for r in conn.execute(
                        "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                    )
                ]
                return {
                    t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables
                }
        conn = sqlite3.connect(self.path)
        try:
            tables = [
                r[0]
                for r in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type = 'table' "
                    "AND name NOT LIKE 'sqlite_%'"
                )
            ]
            return {t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables}
        finally:
            conn.close()

    def integrity(self) -> str:
        """SQLite's `PRAGMA integrity_check`; on PostgreSQL, amcheck's heap and B-tree checks
        (every table's pages, every index against its table): "ok" or what is wrong."""
        if not self.server:
            conn = sqlite3.connect(self.path)
            try:
                rows = [r[0] for r in conn.execute("PRAGMA integrity_check")]
            finally:
                conn.close()
            return "\n".join(rows)
        if not self.amcheck:
            self.counts()  # reads every table through; all PostgreSQL offers without amcheck
            return "ok"
        problems = []
        with self.pg(self.name) as conn:
            tables = [
                r[0]
                for r in conn.execute(
                    "SELECT c.oid FROM pg_class c WHERE c.relkind = 'r' "
                    "AND c.relnamespace = 'public'::regnamespace"
                )
            ]
            for oid in tables:
                problems += [str(r) for r in conn.execute("SELECT * FROM verify_heapam(%s)", [oid])]
            indexes = conn.execute(
                "SELECT c.oid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
                "JOIN pg_am am ON am.oid = c.relam WHERE am.amname = 'btree' "
                "AND c.relnamespace = 'public'::regnamespace"
            ).fetchall()
            for (oid,) in indexes:
                conn.execute("SELECT bt_index_check(%s, true)", [oid])
        return "\n".join(problems) or "ok"


class Verifier:
    def __init__(self, process: subprocess.Popen) -> None:
        self.process = process

    def check(self) -> str:
        """ "ok", or what `loudou analytics verify` found wrong."""
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write("verify\n")
        self.process.stdin.flush()
        return self.process.stdout.readline().strip()

    def close(self) -> None:
        assert self.process.stdin
        self.process.stdin.close()
        self.process.wait(timeout=60)


@pytest.fixture(scope="module")
def scratch_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScratchDatabase]:
    """A scratch database of the suite's kind, migrated once for the module."""
    scratch = ScratchDatabase(tmp_path_factory.mktemp("scratch"))
    try:
        scratch.create()
        yield scratch
    finally:
        scratch.drop()


@pytest.fixture
def scratch(scratch_template: ScratchDatabase) -> ScratchDatabase:
    """The scratch database as the template left it."""
    scratch_template.reset()
    return scratch_template
