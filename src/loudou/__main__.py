"""The `loudou` console script: Django's management commands under one name."""

import os
import sys


def database_problem(exc: BaseException) -> str | None:
    """One sentence for a database that cannot take the command (read-only, out of disk, not
    openable, unreachable), or None for an error that is a bug and keeps its traceback."""
    from django.db import OperationalError
    from django.utils.translation import gettext as _

    cause = exc.__cause__ or exc
    sqlite_name = getattr(cause, "sqlite_errorname", "") or ""  # SQLite's own error code
    sqlstate = getattr(cause, "sqlstate", "") or ""  # PostgreSQL's
    if sqlite_name.startswith("SQLITE_READONLY") or sqlstate == "25006":
        return _(
            "The database is read-only, so nothing was saved. Make the database file and its "
            "directory writable for this user (or turn off the server's read-only mode) and try "
            "again."
        )
    if sqlite_name.startswith(("SQLITE_FULL", "SQLITE_IOERR")) or sqlstate == "53100":
        return _(
            "The disk is full (or failing): the database could not write, so nothing was saved. "
            "Free some space and try again."
        )
    if sqlite_name.startswith("SQLITE_CANTOPEN"):
        return _(
            "The database file cannot be opened: check that it and its directory exist and are "
            "readable and writable for this user."
        )
    if isinstance(exc, OperationalError):  # unreachable server, dropped connection, lock timeout
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return _("The database refused the command: %(error)s") % {"error": first_line}
    return None


def main() -> None:
    """Run `loudou <command>` as a Django management command."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "loudou.settings")
    from django.core.exceptions import ImproperlyConfigured
    from django.core.management import execute_from_command_line
    from django.db import DatabaseError

    try:
        execute_from_command_line([os.path.basename(sys.argv[0]) or "loudou", *sys.argv[1:]])
    except ImproperlyConfigured as exc:
        sys.stderr.write(f"loudou: configuration error: {exc}\n")
        sys.exit(2)
    except DatabaseError as exc:
        # A database that cannot take the write is the operator's to fix, not a bug: one
        # sentence saying what to do, not a traceback (every command's transaction rolled back).
        problem = database_problem(exc)
        if problem is None:
            raise
        sys.stderr.write(f"loudou: {problem}\n")
        sys.exit(1)


if __name__ == "__main__":
    main()
