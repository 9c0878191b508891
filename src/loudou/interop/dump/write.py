"""Writing a dump (`loudou export all DIR`): one JSON-lines file per table from one snapshot of
the database, readable by its owner only, then the README and, last, the manifest."""

import base64
import datetime as dt
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.db import connection, models, transaction
from django.utils import timezone
from django.utils.duration import duration_iso_string
from django.utils.translation import gettext as _

import loudou
from loudou.interop.dump.tables import (
    CHUNK,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    README,
    DumpRefused,
    NaturalKeys,
    Table,
    applied_migrations,
    dump_tables,
)
from loudou.interop.services import NoProgress, Progress


def _sorted_keys(value: Any) -> Any:
    """A JSON value with its objects' keys sorted: PostgreSQL's jsonb keeps its own key order,
    so a dump of the same data is the same, byte for byte, from SQLite and from PostgreSQL."""
    if isinstance(value, dict):
        return {key: _sorted_keys(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [_sorted_keys(item) for item in value]
    return value


# Values: amounts as decimal strings, moments in UTC with their offset, dates ISO 8601, JSON as
# JSON. Types JSON already has (integers, strings, booleans) are written as they are.
def _encoder(field: models.Field) -> Callable[[Any], Any] | None:
    if isinstance(field, models.JSONField):
        return _sorted_keys
    if isinstance(field, models.DateTimeField):
        return lambda v: v.astimezone(dt.UTC).isoformat()
    if isinstance(field, models.DateField | models.TimeField):
        return lambda v: v.isoformat()
    if isinstance(field, models.DecimalField):
        return lambda v: format(v, "f")
    if isinstance(field, models.DurationField):
        return duration_iso_string
    if isinstance(field, models.UUIDField):
        return str
    if isinstance(field, models.BinaryField):
        return lambda v: base64.b64encode(bytes(v)).decode("ascii")
    return None


@contextmanager
def _snapshot() -> Iterator[None]:
    """One consistent view of the database for the whole dump."""
    if connection.in_atomic_block:  # the caller's transaction already is one
        yield
        return
    if connection.vendor == "postgresql":
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            yield
        return
    # SQLite (WAL): a deferred read transaction sees one snapshot and lets writers go on, where
    # atomic() would take the write lock (the settings ask for IMMEDIATE transactions).
    connection.ensure_connection()
    with connection.cursor() as cursor:
        cursor.execute("BEGIN DEFERRED")
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute("ROLLBACK")


def _private_file(path: Path) -> Any:
    """A file only its owner may read (also one --force writes over): the dump holds password
    hashes."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(descriptor, 0o600)
    return os.fdopen(descriptor, "wb")


def _write_table(
    table: Table, directory: Path, keys: NaturalKeys, progress: Progress
) -> dict[str, Any]:
    rows = (
        table.model._base_manager.order_by("pk")
        .values_list(*(c.field.attname for c in table.columns))
        .iterator(chunk_size=CHUNK)
    )
    encoders: list[Callable[[Any], Any] | None] = [
        keys.by_id[c.natural].__getitem__ if c.natural else _encoder(c.value_field)
        for c in table.columns
    ]
    progress.start(table.label, table.model._base_manager.count())
    digest, count = hashlib.sha256(), 0
    with _private_file(directory / table.file) as out:
        for values in rows:
            row = {
                c.key: value if value is None or encode is None else encode(value)
                for c, encode, value in zip(table.columns, encoders, values, strict=True)
            }
            line = (json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
            digest.update(line)
            out.write(line)
            count += 1
            if count % CHUNK == 0:
                progress.advance(CHUNK)
    progress.advance(count % CHUNK)
    return {
        "model": table.label,
        "file": table.file,
        "rows": count,
        "sha256": digest.hexdigest(),
        "columns": [c.key for c in table.columns],
        "natural_keys": {c.key: c.natural for c in table.columns if c.natural},
    }


def dump_all(directory: str | Path, *, progress: Progress | None = None) -> dict[str, Any]:
    """Write every row of every loudou table into `directory`: one JSON-lines file per table,
    `manifest.json` (written last: a dump without one is incomplete) and `README.md`."""
    target = Path(directory)
    try:
        return _dump_into(target, progress or NoProgress())
    except OSError as exc:  # a full disk, a directory we may not write into
        raise DumpRefused(
            _("Cannot write the dump into %(dir)s: %(error)s")
            % {"dir": target, "error": exc.strerror or exc}
        ) from None


def _dump_into(target: Path, progress: Progress) -> dict[str, Any]:
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    (target / MANIFEST).unlink(missing_ok=True)  # an interrupted dump must not look whole
    tables = dump_tables()
    with _snapshot():
        exported_at = timezone.now()
        keys = NaturalKeys()
        entries = [_write_table(table, target, keys, progress) for table in tables]
        migrations = applied_migrations()
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "loudou_version": loudou.__version__,
        "exported_at": exported_at.astimezone(dt.UTC).isoformat(),
        "database_vendor": connection.vendor,
        "migrations": migrations,
        "models": entries,
    }
    with _private_file(target / README) as out:
        out.write(readme_text(tables).encode())
    with _private_file(target / MANIFEST) as out:
        out.write((json.dumps(manifest, ensure_ascii=False, indent=2) + "\n").encode())
    return {
        "directory": str(target),
        "exported_at": manifest["exported_at"],
        "database_vendor": connection.vendor,
        "models": {e["model"]: e["rows"] for e in entries},
        "rows": sum(e["rows"] for e in entries),
    }


def readme_text(tables: list[Table]) -> str:
    """The dump's README.md, in the active language (the same for every dump of one schema)."""
    files = "\n".join(f"| `{t.file}` | {t.model._meta.verbose_name_plural} |" for t in tables)
    values = [
        _(
            "SQL NULL is `null`; whole numbers, texts and yes/no values are JSON numbers, strings "
            "and booleans."
        ),
        _('Amounts (decimal columns) are strings with their exact digits, e.g. `"1234500.00"`.'),
        _(
            "Moments (date-time columns) are ISO 8601 in UTC with the offset written, e.g. "
            '`"2026-03-01T06:30:00+00:00"`; dates are `"2026-03-01"`. Convert moments to the '
            "reader's time zone to show them."
        ),
        _(
            "JSON columns (criteria results, changed fields, the audit log's before and after) are "
            "JSON values, with their objects' keys sorted."
        ),
        _(
            "Content types and permissions have other ids in each database, so a column that points "
            "to one is written under the field's name as its natural key: `content_type` as "
            "`[app_label, model]`, `permission` as `[codename, app_label, model]`."
        ),
    ]
    parts = [
        "# " + _("loudou dump"),
        _(
            "This directory is a complete dump of a loudou database, written by `loudou export "
            "all`. `loudou import all DIR` restores it, exactly, into an empty database."
        ),
        "## " + _("Handle it like the database itself"),
        _(
            "The dump holds everything: the users' password hashes, the hashes of their API "
            "tokens, the audit log, every customer and deal. Its files are readable by their owner "
            "only; keep them where the database's backups are kept, and delete copies no longer "
            "needed."
        ),
        "## " + _("Files"),
        _(
            "`manifest.json` lists the files in the order they load, each with its number of rows, "
            "its SHA-256 and its columns; it also names the loudou version, the database and the "
            "migrations that wrote the dump, and when (`exported_at`, UTC). It is written last: a "
            "directory without it holds an interrupted dump."
        ),
        "\n".join(["| " + _("File") + " | " + _("Contents") + " |", "|---|---|", files]),
        "## " + _("Rows"),
        _(
            "Each file is UTF-8 text with one JSON object per line (ended by a line feed), one "
            "line per row, in primary key order. The keys are the table's columns: a foreign key "
            "is its column, e.g. `owner_id`, holding the id of the row it points to. Ids are kept, "
            "so every reference holds as written."
        ),
        "\n".join(f"- {line}" for line in values),
        "## " + _("Loading"),
        _(
            "1. Make a new, empty database and run `loudou migrate` with the loudou version that "
            "wrote the dump (`loudou_version` and `migrations` in the manifest).\n"
            "2. Run `loudou import all DIR`.\n"
            "3. Upgrade loudou afterwards if needed: its migrations carry the data forward."
        ),
        _(
            "The load first checks every file against its SHA-256 and refuses a changed or cut "
            "file by name; it refuses a database that already holds data; it writes everything in "
            "one transaction, all or nothing; then it checks every foreign key, moves the id "
            "sequences past the loaded ids and checks the stage stays against the history."
        ),
        "## " + _("Not in the dump"),
        _(
            "Sessions (everyone signs in again), the content types and permissions themselves "
            "(`loudou migrate` makes them) and Django's record of applied migrations."
        ),
    ]
    return "\n\n".join(parts) + "\n"
