"""Restoring a dump into an empty, migrated database (`loudou import all DIR`): the files checked
against the manifest first, then every row loaded in one transaction, the foreign keys and the
analytics caches checked before the commit: all of it or nothing."""

import hashlib
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.color import no_style
from django.db import DatabaseError, connection, models, transaction
from django.db.migrations.executor import MigrationExecutor
from django.utils.translation import gettext as _

from loudou.interop.dump.tables import (
    BATCH,
    FORMAT,
    FORMAT_VERSION,
    MANIFEST,
    DumpRefused,
    NaturalKeys,
    Table,
    applied_migrations,
    dump_tables,
)
from loudou.interop.services import NoProgress, Progress


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
    here = applied_migrations()
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
