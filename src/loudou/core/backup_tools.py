"""What backup and restore need from outside loudou: the sentence for a disk or SQLite error,
and PostgreSQL's client tools (found, version-checked, run with the connection settings)."""

import errno
import os
import re
import shutil
import sqlite3
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from django.db import connection, transaction
from django.utils.translation import gettext as _

from loudou.core.errors import LoudouError

BUSY_TIMEOUT = 30.0  # seconds to wait for another writer's lock, as the app's own connections do


class BackupFailed(LoudouError):
    """A backup or restore that cannot be done as asked; the message says what was changed."""

    code = "backup_failed"


# -- what a backup covers ------------------------------------------------------------------------


def disk_error(exc: OSError, path: Path) -> BackupFailed:
    """An operating system error while writing `path`, as a sentence (nothing else was changed)."""
    if exc.errno in {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}:
        message = _(
            "The disk is full: %(path)s could not be written, so nothing was saved. Free some "
            "space or choose another disk, then try again."
        )
    elif exc.errno == errno.EROFS:
        message = _(
            "%(path)s is on a read-only file system, so nothing was written. Choose a place "
            "loudou may write to."
        )
    elif exc.errno in {errno.EACCES, errno.EPERM}:
        message = _(
            "loudou may not write %(path)s (permission denied), so nothing was written. Choose a "
            "place loudou may write to, or change its permissions."
        )
    else:
        message = _("%(path)s could not be written (%(error)s), so nothing was saved.")
    return BackupFailed(message % {"path": path, "error": exc.strerror or exc})


def sqlite_error(exc: sqlite3.Error, path: Path) -> BackupFailed:
    """An SQLite error on the database file `path`, as a sentence."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    if code == 13:  # SQLITE_FULL
        return disk_error(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), path)
    if code in {8, 3}:  # SQLITE_READONLY, SQLITE_PERM
        return BackupFailed(
            _(
                "The database %(path)s is read-only (its file, its directory or the file system "
                "may not be written), so nothing was changed."
            )
            % {"path": path}
        )
    if code in {5, 6}:  # SQLITE_BUSY, SQLITE_LOCKED
        return BackupFailed(
            _(
                "The database %(path)s stayed locked by another writer for %(s)s s, so nothing "
                "was changed. Try again when it is quieter."
            )
            % {"path": path, "s": int(BUSY_TIMEOUT)}
        )
    if code in {11, 26}:  # SQLITE_CORRUPT, SQLITE_NOTADB
        return BackupFailed(_("%(path)s is not a sound SQLite database.") % {"path": path})
    return BackupFailed(
        _("SQLite could not use %(path)s: %(error)s") % {"path": path, "error": exc}
    )


# -- the manifest ----------------------------------------------------------------------------------


def _tool_version(binary: Path) -> int:
    """The major version a PostgreSQL client tool reports (`pg_dump (PostgreSQL) 15.4` → 15)."""
    try:
        out = subprocess.run(
            [str(binary), "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    found = re.search(r"\)\s*(\d+)", out)
    return int(found.group(1)) if found else 0


def _tool_candidates(name: str) -> list[Path]:
    """Where a PostgreSQL client tool may be: LOUDOU_PG_BINDIR alone when set; else PATH,
    `pg_config --bindir` and /usr/lib/postgresql/*/bin (as scripts/with-postgres looks)."""
    if os.environ.get("LOUDOU_PG_BINDIR"):
        folders = [Path(os.environ["LOUDOU_PG_BINDIR"])]
    else:
        folders = []
        on_path = shutil.which(name)
        if on_path:
            folders.append(Path(on_path).parent)
        with suppress(OSError, subprocess.SubprocessError):
            bindir = subprocess.run(
                ["pg_config", "--bindir"], capture_output=True, text=True, timeout=30
            ).stdout.strip()
            if bindir:
                folders.append(Path(bindir))
        folders += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    found: dict[Path, Path] = {}
    for folder in folders:
        binary = folder / name
        if binary.is_file() and os.access(binary, os.X_OK):
            found.setdefault(binary.resolve(), binary)
    return list(found.values())


def postgresql_tool(name: str, server_major: int) -> tuple[Path, int]:
    """The newest `name` (pg_dump, pg_restore) on the machine and its major version; BackupFailed
    when there is none, or when it is older than `server_major`."""
    candidates = [(binary, _tool_version(binary)) for binary in _tool_candidates(name)]
    if not candidates:
        raise BackupFailed(
            _(
                "%(tool)s was not found (looked in PATH, `pg_config --bindir` and "
                "/usr/lib/postgresql/*/bin). Install the PostgreSQL %(major)s client tools "
                "(e.g. the postgresql-client-%(major)s package), or set LOUDOU_PG_BINDIR to "
                "their directory."
            )
            % {"tool": name, "major": server_major}
        )
    binary, major = max(candidates, key=lambda candidate: candidate[1])
    if major < server_major:
        raise BackupFailed(
            _(
                "%(tool)s %(tool_major)s (%(path)s) is older than the PostgreSQL %(major)s "
                "server and cannot work with it. Install the PostgreSQL %(major)s client tools, "
                "or set LOUDOU_PG_BINDIR to their directory."
            )
            % {"tool": name, "tool_major": major, "path": binary, "major": server_major}
        )
    return binary, major


def postgresql_env() -> dict[str, str]:
    """libpq's environment for the Django connection: the password travels in PGPASSWORD, never
    on a command line other users may read."""
    settings = connection.settings_dict
    options = settings.get("OPTIONS") or {}
    env = dict(os.environ)
    for variable, value in {
        "PGHOST": settings.get("HOST"),
        "PGPORT": settings.get("PORT"),
        "PGUSER": settings.get("USER"),
        "PGPASSWORD": settings.get("PASSWORD"),
        "PGDATABASE": settings.get("NAME"),
        "PGSSLMODE": options.get("sslmode"),
        "PGSSLROOTCERT": options.get("sslrootcert"),
        "PGSSLCERT": options.get("sslcert"),
        "PGSSLKEY": options.get("sslkey"),
    }.items():
        if value:
            env[variable] = str(value)
    return env


def server_major() -> int:
    connection.ensure_connection()
    return int(connection.pg_version) // 10000  # type: ignore[attr-defined]


def run_tool(command: list[str], path: Path) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL client tool; its failure as a sentence (a full disk said so)."""
    done = subprocess.run(command, env=postgresql_env(), capture_output=True, text=True)
    if done.returncode != 0:
        said = done.stderr.strip()
        if "No space left on device" in said or "File too large" in said:
            raise disk_error(OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)), path)
        if "read-only" in said:
            raise BackupFailed(
                _("The database refused the change: it is read-only (%(error)s).")
                % {"error": said.splitlines()[-1]}
            )
        raise BackupFailed(
            _("%(tool)s failed, so nothing was changed: %(error)s")
            % {"tool": Path(command[0]).name, "error": "\n".join(said.splitlines()[-5:])}
        )
    return done


def archive_tables(pg_restore: Path, file: Path) -> set[str]:
    """The tables whose data a custom-format archive holds (`pg_restore --list`)."""
    listing = run_tool([str(pg_restore), "--list", str(file)], file).stdout
    return set(re.findall(r"TABLE DATA \S+ (\S+) ", listing))


@contextmanager
def exported_snapshot() -> Iterator[str]:
    """A repeatable-read transaction on the Django connection whose snapshot pg_dump shares, so
    the manifest's counts and migrations describe exactly what the dump holds."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        cursor.execute("SELECT pg_export_snapshot()")
        yield cursor.fetchone()[0]
