"""What a database error means for the person who met it.

A read-only database, a full disk or a database file that cannot be opened is the operator's to
fix, not a bug: the command line and the web say so in one sentence (nothing was saved, what to
do) instead of a traceback. Anything else stays an error with its traceback, in the log.
"""

from django.db import OperationalError
from django.utils.translation import gettext as _


def database_unavailable(exc: BaseException) -> str | None:
    """One sentence for a database that cannot take writes (read-only, disk full or failing,
    file not openable), or None."""
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
    return None


def database_problem(exc: BaseException) -> str | None:
    """For the command line (its user is the operator): the sentences above, and for any other
    operational error (unreachable server, dropped connection, lock timeout) its first line;
    None for an error that is a bug and keeps its traceback."""
    unavailable = database_unavailable(exc)
    if unavailable is not None:
        return unavailable
    if isinstance(exc, OperationalError):
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return _("The database refused the command: %(error)s") % {"error": first_line}
    return None
