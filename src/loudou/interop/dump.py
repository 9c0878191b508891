"""The complete dump: every row of every loudou table as JSON lines, with a manifest and a README,
and its exact restore into an empty database (`loudou export all DIR`, `loudou import all DIR`).

Ids are written as they are, so foreign keys keep pointing right; content types and permissions,
whose ids differ between databases, are written by natural key and looked up again on load. A dump
is a backup: it holds the users' password hashes. The format is in docs/backup-and-dump.md.
"""

import base64
import datetime as dt
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from django.apps import apps
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.core.management.color import no_style
from django.db import DatabaseError, connection, models, transaction
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.recorder import MigrationRecorder
from django.utils import timezone
from django.utils.duration import duration_iso_string
from django.utils.translation import gettext as _

import loudou
from loudou.core.errors import LoudouError
from loudou.interop.services import NoProgress, Progress

FORMAT = "loudou-dump"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
README = "README.md"
CHUNK = 2000  # rows fetched per database round trip while dumping
BATCH = 1000  # rows per INSERT while loading
NATURAL_KEYS = {ContentType: "contenttypes.contenttype", Permission: "auth.permission"}


class DumpRefused(LoudouError):
    """A dump that cannot be written or loaded as asked; nothing was changed."""

    code = "dump_refused"


@dataclass(frozen=True)
class Column:
    """One concrete field of a table: its JSON key (the attname, or the field's name when the
    value is a natural key) and how its values are written and read."""

    key: str
    field: models.Field
    natural: str  # "" or the label of the model the natural key names

    @property
    def value_field(self) -> models.Field:
        """The field whose type the stored value has (a foreign key's target field)."""
        return self.field.target_field if self.field.is_relation else self.field  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Table:
    """One model as a file of the dump."""

    model: type[models.Model]
    columns: tuple[Column, ...]

    @property
    def label(self) -> str:
        return self.model._meta.label_lower

    @property
    def file(self) -> str:
        return f"{self.label}.jsonl"


def _table(model: type[models.Model]) -> Table:
    columns = []
    for field in model._meta.concrete_fields:
        related = field.related_model if field.is_relation else None
        if related in NATURAL_KEYS:
            columns.append(Column(field.name, field, NATURAL_KEYS[related]))  # type: ignore[index]
        else:
            columns.append(Column(field.attname, field, ""))
    return Table(model, tuple(columns))


def dumped_models() -> list[type[models.Model]]:
    """Every table of the loudou apps (many-to-many link tables included), the user groups the
    admin can make with their permissions, and the admin's change log, in enumeration order."""
    chosen: list[type[models.Model]] = []
    for config in apps.get_app_configs():
        if config.name.startswith("loudou."):
            chosen += config.get_models(include_auto_created=True)
    chosen += [Group, Group.permissions.through]
    if apps.is_installed("django.contrib.admin"):
        chosen.append(apps.get_model("admin", "LogEntry"))
    return [m for m in chosen if m._meta.managed and not m._meta.proxy]


def load_order(models_: list[type[models.Model]]) -> list[type[models.Model]]:
    """The models with each after the models its foreign keys point to (stable otherwise).
    Self-references and cycles need no order: foreign keys are checked at the end of the load's
    transaction (Django creates them DEFERRABLE INITIALLY DEFERRED on SQLite and PostgreSQL)."""
    needs = {
        m: {
            f.related_model
            for f in m._meta.concrete_fields
            if f.is_relation and f.related_model in models_ and f.related_model is not m
        }
        for m in models_
    }
    ordered: list[type[models.Model]] = []
    while len(ordered) < len(models_):
        waiting = [m for m in models_ if m not in ordered]
        ready = [m for m in waiting if needs[m] <= set(ordered)]
        ordered.append(ready[0] if ready else waiting[0])  # a cycle: any order will do
    return ordered


def dump_tables() -> list[Table]:
    """The tables of a dump, in load order."""
    return [_table(m) for m in load_order(dumped_models())]


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


def _decoder(field: models.Field) -> Callable[[Any], Any] | None:
    if isinstance(
        field,
        models.DateField
        | models.TimeField
        | models.DecimalField
        | models.DurationField
        | models.UUIDField
        | models.BinaryField,
    ):
        return field.to_python
    return None


class NaturalKeys:
    """Content types and permissions by id (to write a dump) and by natural key (to load one)."""

    def __init__(self) -> None:
        self.by_id: dict[str, dict[int, list[str]]] = {
            "contenttypes.contenttype": {
                pk: [app, model]
                for pk, app, model in ContentType.objects.values_list("id", "app_label", "model")
            },
            "auth.permission": {
                pk: [codename, app, model]
                for pk, codename, app, model in Permission.objects.values_list(
                    "id", "codename", "content_type__app_label", "content_type__model"
                )
            },
        }
        self.by_key = {
            label: {tuple(key): pk for pk, key in ids.items()} for label, ids in self.by_id.items()
        }

    def id_for(self, label: str, key: Any) -> int:
        """The id of the content type or permission named by `key` here; a content type a dump
        names that this database lacks (a model since removed) is made, as migrate would."""
        found = self.by_key[label].get(tuple(key))
        if found is not None:
            return found
        if label == "contenttypes.contenttype" and len(key) == 2:
            made = ContentType.objects.get_or_create(app_label=key[0], model=key[1])[0]
            self.by_key[label][tuple(key)] = made.pk
            return made.pk
        raise DumpRefused(
            _("The dump names %(what)s %(key)s, which this database does not have.")
            % {"what": label, "key": "/".join(map(str, key))}
        )


def _applied_migrations() -> dict[str, list[str]]:
    """The migrations applied to the database, per app of the loudou project."""
    applied: dict[str, list[str]] = {}
    for app, name in MigrationRecorder(connection).applied_migrations():
        if apps.is_installed(f"loudou.{app}"):
            applied.setdefault(app, []).append(name)
    return {app: sorted(names) for app, names in sorted(applied.items())}


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
        migrations = _applied_migrations()
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


def read_manifest(directory: Path) -> dict[str, Any]:
    """The dump's manifest, or DumpRefused if there is none or it is not one."""
    path = directory / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DumpRefused(
            _("%(path)s is missing: %(dir)s is not a complete loudou dump.")
            % {"path": path, "dir": directory}
        ) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DumpRefused(
            _("%(path)s cannot be read: %(error)s") % {"path": path, "error": exc}
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DumpRefused(_("%(path)s is not the manifest of a loudou dump.") % {"path": path})
    if manifest.get("format_version") != FORMAT_VERSION:
        raise DumpRefused(
            _("The dump is in format version %(found)s; this loudou reads version %(known)s.")
            % {"found": manifest.get("format_version"), "known": FORMAT_VERSION}
        )
    entries = manifest.get("models")
    if not isinstance(entries, list) or not all(_is_entry(e) for e in entries):
        raise DumpRefused(_("%(path)s is not the manifest of a loudou dump.") % {"path": path})
    return manifest


def _is_entry(entry: Any) -> bool:
    """A manifest's file entry has the fields the load reads, of the right types."""
    return (
        isinstance(entry, dict)
        and all(isinstance(entry.get(k), str) for k in ("model", "file", "sha256"))
        and isinstance(entry.get("rows"), int)
        and isinstance(entry.get("columns"), list)
    )


def verify_files(directory: Path, manifest: dict[str, Any], progress: Progress) -> None:
    """Every file the manifest lists is there, whole and unchanged (SHA-256 and row count)."""
    entries = manifest["models"]
    progress.start(_("Checksums"), len(entries))
    for entry in entries:
        path = directory / Path(entry["file"]).name
        digest, lines = hashlib.sha256(), 0
        try:
            with path.open("rb") as handle:
                while block := handle.read(1 << 20):
                    digest.update(block)
                    lines += block.count(b"\n")
        except OSError:
            raise DumpRefused(
                _("%(file)s is missing from the dump.") % {"file": path.name}
            ) from None
        if digest.hexdigest() != entry["sha256"] or lines != entry["rows"]:
            raise DumpRefused(
                _(
                    "%(file)s does not match the manifest (its checksum or its number of rows "
                    "differs): the file was changed or cut short. Nothing was loaded."
                )
                % {"file": path.name}
            )
        progress.advance()


def _check_schema(manifest: dict[str, Any], tables: list[Table]) -> list[str]:
    """The database is fully migrated and each of the dump's tables has the columns this
    database's has. A dump from an earlier loudou loads when what changed since are only new
    tables: they stay empty (derived ones are rebuilt). Returns the tables the dump lacks."""
    executor = MigrationExecutor(connection)
    if executor.migration_plan(executor.loader.graph.leaf_nodes()):
        raise DumpRefused(_("The database is not fully migrated: run `loudou migrate` first."))
    here = _applied_migrations()
    theirs = manifest.get("migrations") or {}
    unknown = sorted(
        f"{app}.{name}"
        for app, names in theirs.items()
        for name in names
        if name not in here.get(app, [])
    )
    if unknown:
        raise DumpRefused(
            _(
                "The dump was written by a newer loudou (%(version)s): its database has "
                "migrations this code does not know (%(migrations)s). Upgrade loudou first, "
                "then load it. Nothing was loaded."
            )
            % {"version": manifest.get("loudou_version", "?"), "migrations": ", ".join(unknown)}
        )
    expected = {t.label: [c.key for c in t.columns] for t in tables}
    found = {e["model"]: e["columns"] for e in manifest["models"]}
    for label in sorted(found):
        if expected.get(label) != found[label]:
            raise DumpRefused(
                _(
                    "The dump's table %(model)s does not match this database's (a migration "
                    "since the dump changed its columns): load it with the loudou that wrote "
                    "it (%(version)s), migrate, and write a new dump."
                )
                % {"model": label, "version": manifest.get("loudou_version", "?")}
            )
    missing = sorted(set(expected) - set(found))
    if missing and theirs == here:
        raise DumpRefused(
            _("The dump lacks the tables %(tables)s.") % {"tables": ", ".join(missing)}
        )
    return missing


def _check_empty(tables: list[Table]) -> None:
    held = {t.label: t.model._base_manager.count() for t in tables}
    held = {label: n for label, n in held.items() if n}
    if held:
        listed = ", ".join(f"{label} ({n})" for label, n in held.items())
        raise DumpRefused(
            _(
                "The database already holds data (%(tables)s). A dump loads into an empty "
                "database only, so nothing was changed: create a new database, run `loudou "
                "migrate`, then load the dump."
            )
            % {"tables": listed}
        )


def _rows(path: Path, table: Table, keys: NaturalKeys) -> Iterator[models.Model]:
    """The file's rows as unsaved model instances."""
    columns = table.columns
    decoders: list[Callable[[Any], Any] | None] = [_decoder(c.value_field) for c in columns]
    expected = [c.key for c in columns]
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                row = json.loads(raw)
                if list(row) != expected:
                    raise ValueError(_("the row's keys are not the table's columns"))
                values = []
                for column, decode in zip(columns, decoders, strict=True):
                    value = row[column.key]
                    if value is not None and column.natural:
                        value = keys.id_for(column.natural, value)
                    elif value is not None and decode is not None:
                        value = decode(value)
                    values.append(value)
            except (ValueError, TypeError, AttributeError, ValidationError) as exc:
                raise DumpRefused(
                    _("%(file)s, line %(line)s: %(error)s")
                    % {"file": path.name, "line": number, "error": exc}
                ) from None
            yield table.model(*values)  # positional: concrete fields in order, the fast path


def _load_table(path: Path, table: Table, rows: int, keys: NaturalKeys, progress: Progress) -> int:
    progress.start(table.label, rows)
    manager, batch, count = table.model._base_manager, [], 0
    try:
        for instance in _rows(path, table, keys):
            batch.append(instance)
            if len(batch) == BATCH:
                manager.bulk_create(batch)
                count += len(batch)
                progress.advance(len(batch))
                batch = []
        manager.bulk_create(batch)
    except DatabaseError as exc:
        raise DumpRefused(
            _("%(file)s does not fit this database: %(error)s") % {"file": path.name, "error": exc}
        ) from None
    progress.advance(len(batch))
    return count + len(batch)


def _finish(tables: list[Table], *, rebuild_caches: bool = False) -> None:
    """Check every foreign key now, let new rows get fresh ids, check the analytics caches
    (rebuilt first from the history when the dump, older than this code, lacks a table)."""
    from loudou.analytics.caches import caches_rebuild, caches_verify

    try:
        connection.check_constraints(table_names=[t.model._meta.db_table for t in tables])
    except DatabaseError as exc:
        raise DumpRefused(
            _("The dump's references do not hold: %(error)s") % {"error": exc}
        ) from None
    statements = connection.ops.sequence_reset_sql(no_style(), [t.model for t in tables])
    with connection.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement)
    if rebuild_caches:
        caches_rebuild()
    problems = caches_verify()
    if problems:
        raise DumpRefused(
            _("The loaded analytics caches disagree with the history: %(problems)s")
            % {"problems": "; ".join(problems[:5])}
        )


def load_all(directory: str | Path, *, progress: Progress | None = None) -> dict[str, Any]:
    """Restore a dump into an empty, migrated database: all of it in one transaction, or
    nothing. Checks the files against the manifest first."""
    source = Path(directory)
    progress = progress or NoProgress()
    manifest = read_manifest(source)
    verify_files(source, manifest, progress)
    tables = {t.label: t for t in dump_tables()}
    missing = _check_schema(manifest, list(tables.values()))
    loaded: dict[str, int] = {}
    with transaction.atomic():
        _check_empty(list(tables.values()))
        keys = NaturalKeys()
        for entry in manifest["models"]:
            table = tables[entry["model"]]
            path = source / Path(entry["file"]).name
            loaded[table.label] = _load_table(path, table, entry["rows"], keys, progress)
        _finish(list(tables.values()), rebuild_caches=bool(missing))
    return {
        "directory": str(source),
        "exported_at": manifest.get("exported_at"),
        "database_vendor": manifest.get("database_vendor"),
        "models": loaded,
        "rows": sum(loaded.values()),
    }
