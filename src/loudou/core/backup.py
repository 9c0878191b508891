"""Backups of the live database, and their restore (`loudou backup FILE`, `loudou restore FILE`).

A backup is the database engine's own copy, made online while people keep working: on SQLite the
online backup API (one consistent snapshot, WAL readers and writers go on), on PostgreSQL
`pg_dump --format=custom` of an exported snapshot. Beside FILE lies `FILE.manifest.json`: the
engine, the loudou version, the applied migrations, the rows of every loudou table and the
SHA-256 of FILE. The backup is verified before it is renamed into place; the restore checks the
manifest and the file before it touches the database, and verifies the result the same way.

Unlike `loudou export all` (loudou.interop.dump), a backup is not portable: it restores into the
same engine only, but it is fast, exact down to the last page, and needs no empty database.
"""

import datetime as dt
import hashlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterable
from contextlib import suppress
from pathlib import Path
from typing import Any

from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.loader import MigrationLoader
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone
from django.utils.translation import gettext as _

import loudou
from loudou.core.backup_tools import (
    BUSY_TIMEOUT,
    BackupFailed,
    archive_tables,
    disk_error,
    exported_snapshot,
    postgresql_tool,
    run_tool,
    server_major,
    sqlite_error,
)
from loudou.interop.dump import dumped_models
from loudou.interop.services import NoProgress, Progress

FORMAT = "loudou-backup"
FORMAT_VERSION = 1
MANIFEST_SUFFIX = ".manifest.json"
SQLITE_MAGIC = b"SQLite format 3\x00"
PGDUMP_MAGIC = b"PGDMP"
PAGES_PER_STEP = 1024  # SQLite pages copied between two progress reports (4 MB at 4 KB a page)
ENGINES = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}


def backup_tables() -> dict[str, str]:
    """The loudou tables a backup counts and checks (the same as a dump's), model label to table
    name. The backup itself holds the whole database."""
    return {m._meta.label_lower: m._meta.db_table for m in dumped_models()}


def manifest_path(file: Path) -> Path:
    """Where the manifest of the backup FILE lies: `FILE.manifest.json`."""
    return file.with_name(file.name + MANIFEST_SUFFIX)


def _migration_state(rows: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    applied: dict[str, list[str]] = {}
    for app, name in rows:
        applied.setdefault(app, []).append(name)
    return {app: sorted(names) for app, names in sorted(applied.items())}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    """Make a file (or a directory's entries) durable before the next step relies on it."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


# -- errors in plain words -------------------------------------------------------------------------


def _write_manifest(file: Path, manifest: dict[str, Any]) -> None:
    target = manifest_path(file)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with _private_file(temporary) as out:
            out.write((json.dumps(manifest, ensure_ascii=False, indent=2) + "\n").encode())
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise disk_error(exc, target) from None


def _private_file(path: Path, mode: str = "wb") -> Any:
    """A new file only its owner may read: a backup holds the users' password hashes."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    return os.fdopen(descriptor, mode)


def read_manifest(file: Path) -> dict[str, Any]:
    """The manifest of the backup FILE, after checking that FILE and its manifest are there;
    BackupFailed otherwise."""
    if not file.exists():
        raise BackupFailed(_("%(file)s does not exist.") % {"file": file})
    if not file.is_file():
        raise BackupFailed(_("%(file)s is not a file.") % {"file": file})
    path = manifest_path(file)
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BackupFailed(
            _(
                "%(file)s is not a loudou backup: its manifest %(manifest)s is missing. Keep the "
                "two files together (a JSON-lines dump is restored with `loudou import all`)."
            )
            % {"file": file, "manifest": path.name}
        ) from None
    except (OSError, UnicodeDecodeError, ValueError):
        manifest = None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise BackupFailed(
            _("%(manifest)s is not the manifest of a loudou backup.") % {"manifest": path}
        )
    if manifest.get("format_version") != FORMAT_VERSION:
        raise BackupFailed(
            _("The backup is in format version %(found)s; this loudou reads version %(known)s.")
            % {"found": manifest.get("format_version"), "known": FORMAT_VERSION}
        )
    return manifest


def check_file(file: Path, manifest: dict[str, Any]) -> None:
    """FILE is the kind of file its manifest names, and whole: its SHA-256 is the recorded one."""
    with file.open("rb") as handle:
        head = handle.read(len(SQLITE_MAGIC))
    magic = SQLITE_MAGIC if manifest.get("engine") == "sqlite" else PGDUMP_MAGIC
    if not head.startswith(magic):
        raise BackupFailed(
            _("%(file)s is not a loudou backup (it is not a %(engine)s backup file).")
            % {"file": file, "engine": ENGINES.get(manifest.get("engine", ""), "?")}
        )
    if _sha256(file) != manifest.get("sha256"):
        raise BackupFailed(
            _(
                "%(file)s is corrupted: its checksum differs from the one its manifest recorded "
                "when the backup was made (the file was changed or cut short). Nothing was "
                "changed; use another backup."
            )
            % {"file": file}
        )


# -- loudou backup ---------------------------------------------------------------------------------


def backup_database(
    file: str | Path, *, replace: bool = False, progress: Progress | None = None
) -> dict[str, Any]:
    """Copy the live database into FILE, online and consistent, verify the copy, then rename it
    into place and write its manifest beside it. Returns the manifest."""
    target = Path(file).absolute()
    progress = progress or NoProgress()
    if connection.in_atomic_block:
        raise BackupFailed(_("A backup cannot run inside a transaction."))
    if target.is_dir():
        raise BackupFailed(_("%(file)s is a directory; name a file.") % {"file": target})
    if target.exists() and not replace:
        raise BackupFailed(
            _(
                "%(file)s already exists: nothing was written. Name a new file, or pass --force "
                "to replace it."
            )
            % {"file": target}
        )
    if not target.parent.is_dir():
        raise BackupFailed(_("The directory %(dir)s does not exist.") % {"dir": target.parent})
    if connection.vendor == "sqlite" and target.resolve() in _live_files():
        raise BackupFailed(
            _("%(file)s is the live database (or one of its files): name another file.")
            % {"file": target}
        )
    temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    started = timezone.now()
    try:
        if connection.vendor == "sqlite":
            details = _sqlite_backup(temporary, target, progress)
        elif connection.vendor == "postgresql":
            details = _postgresql_backup(temporary, target, progress)
        else:  # settings refuse any other engine
            raise BackupFailed(_("loudou backs up SQLite and PostgreSQL databases only."))
        progress.start(_("Checksum"), 1)
        _fsync(temporary)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "engine": connection.vendor,
            "loudou_version": loudou.__version__,
            "created_at": started.astimezone(dt.UTC).isoformat(),
            "file": target.name,
            "bytes": temporary.stat().st_size,
            "sha256": _sha256(temporary),
            **details,
        }
        progress.advance()
        manifest_path(target).unlink(missing_ok=True)  # an old manifest must not vouch for us
        os.replace(temporary, target)
        _write_manifest(target, manifest)
        _fsync(target.parent)
    except OSError as exc:
        raise disk_error(exc, target) from None
    finally:
        for leftover in (temporary, temporary.with_name(temporary.name + "-journal")):
            with suppress(OSError):  # a read-only place: nothing was made there
                leftover.unlink(missing_ok=True)
    return manifest


def _live_files() -> set[Path]:
    """The live SQLite database's file and the WAL files beside it."""
    live = Path(connection.settings_dict["NAME"]).resolve()
    return {live, *(live.with_name(live.name + suffix) for suffix in ("-wal", "-shm", "-journal"))}


def _sqlite_counts(db: sqlite3.Connection, tables: dict[str, str]) -> dict[str, int]:
    present = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    return {
        label: db.execute(f'SELECT count(*) FROM "{name}"').fetchone()[0]
        for label, name in tables.items()
        if name in present
    }


def _page_progress(progress: Progress) -> Callable[[int, int, int], None]:
    """The backup API's callback (status, pages remaining, pages in all) as a progress bar."""
    done = {"pages": 0, "started": False}

    def report(status: int, remaining: int, total: int) -> None:
        del status
        if not done["started"]:
            progress.start(_("Copying pages"), total)
            done["started"] = True
        progress.advance(total - remaining - done["pages"])
        done["pages"] = total - remaining

    return report


def _sqlite_backup(temporary: Path, target: Path, progress: Progress) -> dict[str, Any]:
    """Copy the live SQLite file page by page inside one read transaction of the source, so the
    copy, the row counts and the migrations all come from the same snapshot while writers go
    on (WAL); then check the copy's integrity and counts."""
    source_path = Path(connection.settings_dict["NAME"])
    tables = backup_tables()
    with _private_file(temporary):  # the copy is created only its owner may read
        pass
    source = sqlite3.connect(source_path, timeout=BUSY_TIMEOUT, isolation_level=None)
    copy = sqlite3.connect(temporary, isolation_level=None)
    try:
        source.execute("BEGIN")
        counts = _sqlite_counts(source, tables)  # the first read fixes the snapshot
        migrations = _migration_state(source.execute("SELECT app, name FROM django_migrations"))
        try:
            source.backup(copy, pages=PAGES_PER_STEP, progress=_page_progress(progress))
        except sqlite3.Error as exc:
            raise sqlite_error(exc, target) from None
        source.execute("ROLLBACK")
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
        _sqlite_verify(copy, counts, target, progress)
        page_size = copy.execute("PRAGMA page_size").fetchone()[0]
    except sqlite3.Error as exc:
        raise sqlite_error(exc, source_path) from None
    finally:
        copy.close()
        source.close()
    return {
        "sqlite_version": sqlite3.sqlite_version,
        "page_size": page_size,
        "migrations": migrations,
        "latest_migrations": {app: names[-1] for app, names in migrations.items()},
        "rows": counts,
    }


def _sqlite_verify(
    db: sqlite3.Connection, expected: dict[str, int], path: Path, progress: Progress
) -> None:
    """The SQLite file passes its integrity check and holds every loudou table with the rows
    expected."""
    progress.start(_("Integrity check"), 1)
    result = [row[0] for row in db.execute("PRAGMA integrity_check")]
    if result != ["ok"]:
        raise BackupFailed(
            _("%(path)s fails SQLite's integrity check: %(problems)s")
            % {"path": path, "problems": "; ".join(result[:5])}
        )
    progress.advance()
    found = _sqlite_counts(db, backup_tables())
    _compare_counts(expected, found, path)


def _compare_counts(expected: dict[str, int], found: dict[str, int], where: Path | str) -> None:
    differ = sorted(
        label for label in set(expected) | set(found) if expected.get(label) != found.get(label)
    )
    if differ:
        listed = ", ".join(
            f"{label} ({expected.get(label, '-')} ≠ {found.get(label, '-')})" for label in differ
        )
        raise BackupFailed(
            _("The rows in %(where)s differ from those recorded in the manifest: %(tables)s")
            % {"where": where, "tables": listed}
        )


# -- PostgreSQL tools ------------------------------------------------------------------------------


def _postgresql_backup(temporary: Path, target: Path, progress: Progress) -> dict[str, Any]:
    """pg_dump in the custom format of a snapshot shared with the counts; then check the archive
    lists every loudou table (`pg_restore --list`)."""
    server = server_major()
    pg_dump, dump_major = postgresql_tool("pg_dump", server)
    pg_restore, _major = postgresql_tool("pg_restore", server)
    tables = backup_tables()
    with _private_file(temporary):
        pass
    progress.start(_("pg_dump"), 1)
    with exported_snapshot() as snapshot:
        counts = live_counts()
        migrations = _migration_state(
            list(MigrationRecorder(connection).migration_qs.values_list("app", "name"))
        )
        run_tool(
            [str(pg_dump), "--format=custom", "--no-password", f"--snapshot={snapshot}",
             f"--file={temporary}"],
            target,
        )  # fmt: skip
    progress.advance()
    progress.start(_("Verify"), 1)
    missing = sorted({tables[label] for label in counts} - archive_tables(pg_restore, temporary))
    if missing:
        raise BackupFailed(
            _("The archive pg_dump wrote lacks the tables %(tables)s.")
            % {"tables": ", ".join(missing)}
        )
    progress.advance()
    return {
        "server_version": connection.pg_version,  # type: ignore[attr-defined]
        "pg_dump_major": dump_major,
        "migrations": migrations,
        "latest_migrations": {app: names[-1] for app, names in migrations.items()},
        "rows": counts,
    }


# -- loudou restore --------------------------------------------------------------------------------


def live_counts() -> dict[str, int]:
    """Rows per loudou table in the live database (tables not made yet are left out)."""
    tables = backup_tables()
    present = set(connection.introspection.table_names())
    counts = {}
    with connection.cursor() as cursor:
        for label, name in tables.items():
            if name in present:
                cursor.execute(f"SELECT count(*) FROM {connection.ops.quote_name(name)}")
                counts[label] = cursor.fetchone()[0]
    return counts


def _check_migrations(manifest: dict[str, Any]) -> None:
    """The code knows every migration the backup's database had applied."""
    known = set(MigrationLoader(None, ignore_no_migrations=True).disk_migrations)
    recorded = manifest.get("migrations")
    if not isinstance(recorded, dict):
        raise BackupFailed(_("The backup's manifest does not list its migrations."))
    unknown = sorted(
        f"{app}.{name}" for app, names in recorded.items() for name in names
        if (app, name) not in known
    )  # fmt: skip
    if unknown:
        raise BackupFailed(
            _(
                "The backup was made by a newer loudou (%(version)s): its database has "
                "migrations this code does not know (%(migrations)s). Upgrade loudou to that "
                "version or later first, then restore. Nothing was changed."
            )
            % {"version": manifest.get("loudou_version", "?"), "migrations": ", ".join(unknown)}
        )


def check_backup(file: str | Path) -> dict[str, Any]:
    """Everything `restore` checks before it touches the database: the file and its manifest,
    the engine, the migrations, and the backup's own contents. Returns the manifest."""
    source = Path(file).absolute()
    manifest = read_manifest(source)
    engine = manifest.get("engine")
    if engine != connection.vendor:
        raise BackupFailed(
            _(
                "%(file)s is a backup of a %(theirs)s database and this installation runs on "
                "%(ours)s: a backup restores into the same engine only. To move data between "
                "engines, use `loudou export all DIR` on the old one and `loudou import all DIR` "
                "on the new one. Nothing was changed."
            )
            % {
                "file": source,
                "theirs": ENGINES.get(str(engine), str(engine)),
                "ours": ENGINES[connection.vendor],
            }
        )
    check_file(source, manifest)
    _check_migrations(manifest)
    if not isinstance(manifest.get("rows"), dict):
        raise BackupFailed(_("The backup's manifest does not list its rows."))
    if engine == "sqlite":
        copy = sqlite3.connect(source.as_uri() + "?mode=ro&immutable=1", uri=True)
        try:
            _sqlite_verify(copy, manifest["rows"], source, NoProgress())
            recorded = _migration_state(copy.execute("SELECT app, name FROM django_migrations"))
        except sqlite3.Error as exc:
            raise sqlite_error(exc, source) from None
        finally:
            copy.close()
        if recorded != manifest["migrations"]:
            raise BackupFailed(
                _("The migrations in %(file)s differ from those its manifest lists.")
                % {"file": source}
            )
    else:
        pg_restore, _major = postgresql_tool("pg_restore", int(manifest.get("pg_dump_major", 0)))
        tables = backup_tables()
        listed = {tables[label] for label in manifest["rows"] if label in tables}
        missing = sorted(listed - archive_tables(pg_restore, source))
        if missing:
            raise BackupFailed(
                _("%(file)s lacks the tables %(tables)s its manifest lists.")
                % {"file": source, "tables": ", ".join(missing)}
            )
    return manifest


def restore_database(
    file: str | Path, *, replace: bool = False, progress: Progress | None = None
) -> dict[str, Any]:
    """Replace the live database with the backup FILE, after `check_backup`; refuses a database
    holding data unless `replace`. Verifies the result against the manifest and the analytics
    caches against the history."""
    from loudou.analytics.caches import caches_verify

    source = Path(file).absolute()
    progress = progress or NoProgress()
    if connection.in_atomic_block:
        raise BackupFailed(_("A restore cannot run inside a transaction."))
    manifest = check_backup(source)
    before = live_counts()
    if any(before.values()) and not replace:
        raise BackupFailed(
            _(
                "The database holds data: %(opportunities)s opportunities (%(rows)s rows in "
                "all) would be replaced by the backup's %(theirs)s opportunities of "
                "%(created)s. Nothing was changed; run again with --yes to replace them."
            )
            % {
                "opportunities": before.get("pipeline.opportunity", 0),
                "rows": sum(before.values()),
                "theirs": manifest["rows"].get("pipeline.opportunity", 0),
                "created": manifest.get("created_at", "?"),
            }
        )
    if connection.vendor == "sqlite":
        _sqlite_restore(source, progress)
    else:
        _postgresql_restore(source, progress)
    progress.start(_("Verify"), 2)
    after = live_counts()
    _compare_counts(manifest["rows"], after, _("the restored database"))
    if connection.vendor == "sqlite":
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA integrity_check")
            result = [row[0] for row in cursor.fetchall()]
        if result != ["ok"]:
            raise BackupFailed(
                _("The restored database fails SQLite's integrity check: %(problems)s")
                % {"problems": "; ".join(result[:5])}
            )
    progress.advance()
    executor = MigrationExecutor(connection)
    pending = [
        m.name for m, _backwards in executor.migration_plan(executor.loader.graph.leaf_nodes())
    ]
    problems: list[str] = [] if pending else caches_verify()
    progress.advance()
    if problems:
        raise BackupFailed(
            _(
                "The backup was restored, but its analytics caches disagree with the history "
                "(%(problems)s). Run `loudou analytics rebuild`."
            )
            % {"problems": "; ".join(problems[:5])}
        )
    return {
        "file": str(source),
        "engine": manifest["engine"],
        "created_at": manifest.get("created_at"),
        "loudou_version": manifest.get("loudou_version"),
        "replaced": before,
        "rows": after,
        "pending_migrations": len(pending),
        "caches_verified": not pending,
    }


def _sqlite_restore(source: Path, progress: Progress) -> None:
    """Copy the backup into the live file with the backup API: it takes the live database's
    write lock and holds it to the end, writes through SQLite (WAL) so every open connection sees
    the restored data on its next read, and rolls back if it fails halfway."""
    live = Path(connection.settings_dict["NAME"])
    if live.exists() and not os.access(live, os.W_OK):
        raise sqlite_error(_readonly(), live)
    connection.close()  # Django reconnects on its next query
    backup = sqlite3.connect(source.as_uri() + "?mode=ro&immutable=1", uri=True)
    target = sqlite3.connect(live, timeout=BUSY_TIMEOUT, isolation_level=None)
    try:
        target.execute("PRAGMA journal_mode=WAL")
        backup.backup(target, pages=PAGES_PER_STEP, progress=_page_progress(progress))
    except sqlite3.Error as exc:
        raise sqlite_error(exc, live) from None
    finally:
        target.close()
        backup.close()


def _readonly() -> sqlite3.Error:
    error = sqlite3.OperationalError("attempt to write a readonly database")
    error.sqlite_errorcode = 8  # type: ignore[attr-defined]
    return error


def _postgresql_restore(source: Path, progress: Progress) -> None:
    """pg_restore in one transaction: every object of the backup dropped and made again, or,
    if anything fails, nothing changed."""
    server = server_major()
    pg_restore, _major = postgresql_tool("pg_restore", server)
    here = set(MigrationRecorder(connection).applied_migrations())
    theirs = {(app, name) for app, names in _manifest_migrations(source).items() for name in names}
    if here - theirs:
        raise BackupFailed(
            _(
                "This database is at newer migrations than the backup; on PostgreSQL such a "
                "backup restores into a new, empty database only (createdb, point DATABASE_URL "
                "at it, `loudou restore FILE`, then `loudou migrate`). Nothing was changed."
            )
        )
    progress.start(_("pg_restore"), 1)
    connection.close()
    run_tool(
        [str(pg_restore), "--clean", "--if-exists", "--no-owner", "--single-transaction",
         "--no-password", f"--dbname={connection.settings_dict['NAME']}", str(source)],
        source,
    )  # fmt: skip
    progress.advance()


def _manifest_migrations(source: Path) -> dict[str, list[str]]:
    return json.loads(manifest_path(source).read_text(encoding="utf-8"))["migrations"]
