"""Writing many new rows fast: one `executemany` per table inside the caller's transaction, with
ids chosen here so rows of other tables can point at them without reading them back.

Django's `bulk_create` builds a model instance per row and, on SQLite, cannot hand back the ids
of a multi-row insert; at import sizes (10⁵ opportunities with their history) that is the
difference between ~20k and ~150k rows/s on this machine (docs/performance.md). Only importers
use this, and only for rows they create; changes to existing rows go through the services."""

import contextlib
import datetime as dt
import functools
import json
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from django.core.management.color import no_style
from django.db import connection, models

Adapter = Callable[[Any], Any]


@functools.lru_cache(maxsize=1 << 18)
def _sqlite_datetime(value: dt.datetime | None) -> str | None:
    # What Django's SQLite backend stores (naive UTC text), without its per-value checks, which
    # cost more than the insert itself at import sizes; cached, since a deal's times recur in its
    # history, its stays and the deal itself.
    if value is None:
        return None
    if value.tzinfo is not None:
        # str() of an aware time in UTC is the naive one's and "+00:00"; cheaper than replace().
        return str(value.astimezone(dt.UTC))[:-6]
    return str(value)


@functools.lru_cache(maxsize=1 << 12)
def _sqlite_date(value: dt.date | None) -> str | None:
    # What the sqlite3 adapter Django's SQLite backend registers writes (isoformat), called once
    # per distinct day (a deal's close date recurs in each of its history rows) instead of once
    # per value from inside the driver.
    return None if value is None else value.isoformat()


class JsonText(str):
    """A JSON field's value already encoded as JSON text: the `Inserter` binds the text as it is
    instead of encoding it again (the writer encodes what it can once per import, not per row)."""

    __slots__ = ()


def _json(value: Any) -> str | None:
    if value is None:
        return None
    if value.__class__ is JsonText:
        return str(value)  # a plain str: what every driver binds as text
    if isinstance(value, list | tuple):  # e.g. history's "changed": a handful of distinct lists
        return _json_list(tuple(value))
    return json.dumps(value, ensure_ascii=False)


@functools.lru_cache(maxsize=1024)
def _json_list(value: tuple[Any, ...]) -> str:
    return json.dumps(list(value), ensure_ascii=False)


def _adapter(field: models.Field) -> Adapter | None:
    ops = connection.ops
    if isinstance(field, models.DateTimeField):
        if connection.vendor == "sqlite" and connection.timezone == dt.UTC:
            return _sqlite_datetime
        return ops.adapt_datetimefield_value
    if isinstance(field, models.DateField) and connection.vendor == "sqlite":
        return _sqlite_date
    if isinstance(field, models.DateField | models.DecimalField):
        # Passed as they are: both drivers store a date and a Decimal as Django does (Django's
        # SQLite backend registers sqlite3 adapters that write the same text its own
        # `adapt_*field_value` would; psycopg binds them natively), without a Python call per
        # value in the loop below.
        return None
    if isinstance(field, models.JSONField):
        return _json
    return None


class Inserter:
    """Inserts rows of one model given as tuples in the order of `fields` (attnames)."""

    def __init__(self, model: type[models.Model], fields: Sequence[str]) -> None:
        self.model = model
        meta = model._meta
        concrete = {f.attname: f for f in meta.concrete_fields}
        self.fields = list(fields)
        self.adapters = [_adapter(concrete[name]) for name in self.fields]
        columns = ", ".join(connection.ops.quote_name(str(concrete[n].column)) for n in self.fields)
        marks = ", ".join(["%s"] * len(self.fields))
        self.sql = (
            f"INSERT INTO {connection.ops.quote_name(meta.db_table)} ({columns}) VALUES ({marks})"
        )
        self.copy_sql = f"COPY {connection.ops.quote_name(meta.db_table)} ({columns}) FROM STDIN"
        self.count = 0
        self.seconds = 0.0  # spent in the database (benchmarks report it)

    def write(self, rows: Iterable[Sequence[Any]]) -> int:
        rows = list(rows)
        converted = [(i, adapt) for i, adapt in enumerate(self.adapters) if adapt is not None]
        if converted and rows:
            # A column at a time: the adapters (None-safe, most of them cached) mapped over a
            # column in C, instead of a Python loop over the cells of each row.
            columns: list[Any] = list(zip(*rows, strict=True))
            for index, adapt in converted:
                columns[index] = map(adapt, columns[index])
            prepared: Sequence[Sequence[Any]] = list(zip(*columns, strict=True))
        else:
            prepared = rows
        if prepared:
            started = time.perf_counter()
            with connection.cursor() as cursor:
                if connection.vendor == "postgresql":
                    # COPY streams the rows; executemany makes a round trip per row (~15k rows/s
                    # here against COPY's ~100k: docs/performance.md).
                    with cursor.cursor.copy(self.copy_sql) as copy:
                        for row in prepared:
                            copy.write_row(row)
                else:
                    cursor.executemany(self.sql, prepared)
            self.seconds += time.perf_counter() - started
        self.count += len(prepared)
        return len(prepared)


def reserve_ids(model: type[models.Model], count: int) -> range:
    """`count` primary keys no row of `model` has, for rows this transaction will insert.

    On PostgreSQL the table is locked against other writers until the transaction ends (so no
    concurrent insert takes the same ids) and its sequence is moved past them by `sync_sequences`;
    SQLite allows one writer at a time anyway."""
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"LOCK TABLE {table} IN SHARE ROW EXCLUSIVE MODE")
        cursor.execute(f"SELECT MAX(id) FROM {table}")
        top = cursor.fetchone()[0] or 0
    return range(top + 1, top + 1 + count)


def sync_sequences(*models_: type[models.Model]) -> None:
    """After inserting rows with chosen ids, move PostgreSQL's id sequences past them."""
    statements = connection.ops.sequence_reset_sql(no_style(), list(models_))
    if statements:
        with connection.cursor() as cursor:
            for sql in statements:
                cursor.execute(sql)


@contextlib.contextmanager
def larger_page_cache(mebibytes: int) -> Iterator[None]:
    """On SQLite, let the connection's page cache grow to `mebibytes` while the block writes, then
    give it back to what it was.

    SQLite's default cache holds 2 MB of pages; a bulk load dirties hundreds of megabytes in one
    transaction, so without this the cache spills dirty pages to the write-ahead log before the
    commit and reads them back for the next rows (a profile of a 10⁵-deal import found a fifth of
    its write phase in those writes and reads; its database seconds drop by about a tenth:
    docs/performance.md). The pages are allocated as they are used, so a small import takes
    little; on PostgreSQL (a server's shared buffers) nothing changes."""
    if connection.vendor != "sqlite":
        yield
        return
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA cache_size")
        before = cursor.fetchone()[0]
        cursor.execute(f"PRAGMA cache_size = {-1024 * int(mebibytes)}")  # negative: in KiB
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"PRAGMA cache_size = {int(before)}")


def _secondary_indexes(tables: Sequence[str]) -> list[tuple[str, str]]:
    """(name, CREATE statement) of the indexes on `tables` that can be dropped and created again:
    not the primary keys, nor the indexes that back a table constraint (SQLite's autoindexes,
    PostgreSQL's constraint indexes), which cannot be dropped on their own."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT i.indexname, i.indexdef FROM pg_indexes i"
                " WHERE i.schemaname = current_schema() AND i.tablename = ANY(%s)"
                " AND NOT EXISTS (SELECT 1 FROM pg_constraint c"
                "   WHERE c.conindid = (quote_ident(i.schemaname) || '.' ||"
                "                       quote_ident(i.indexname))::regclass)"
                " ORDER BY i.tablename, i.indexname",
                [list(tables)],
            )
        else:
            marks = ", ".join(["%s"] * len(tables))
            cursor.execute(
                "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
                f" AND tbl_name IN ({marks}) ORDER BY tbl_name, name",
                list(tables),
            )
        return list(cursor.fetchall())


def _run_deferred_checks(cursor: Any) -> None:
    """On PostgreSQL, run now the foreign-key checks the transaction has queued (Django defers
    them to the commit), then defer the next ones again: a table with checks still queued can be
    neither indexed nor altered."""
    cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    cursor.execute("SET CONSTRAINTS ALL DEFERRED")


def _foreign_keys(tables: Sequence[str]) -> list[tuple[str, str, str]]:
    """(table, name, definition) of the foreign keys of `tables` on PostgreSQL, as
    `ALTER TABLE … ADD CONSTRAINT` takes them back; [] elsewhere (SQLite's cannot be dropped)."""
    if connection.vendor != "postgresql":
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid)"
            " FROM pg_constraint c WHERE c.contype = 'f'"
            " AND c.conrelid IN (SELECT unnest(%s::text[])::regclass) ORDER BY 1, 2",
            [list(tables)],
        )
        return list(cursor.fetchall())


class IndexesSetAside:
    """Drops the secondary indexes of some tables for a bulk load and creates them again after.

    A database maintains each index row by row as rows come in (a B-tree insertion per index per
    row, into pages all over the index); building the index once from the loaded table sorts
    the keys and writes the pages in order, several times faster (docs/performance.md). Worth it
    only when the load is large against what the tables already hold. The drops and the creates
    are in the caller's transaction: a rollback (a dry run, a refused import) puts the indexes
    back as they were, and a unique index that the loaded rows would break fails its creation,
    which rolls the load back like the row-by-row check would have. Readers are not disturbed on
    SQLite (they keep their snapshot); on PostgreSQL the tables are locked until the end of the
    transaction, which is why the importer does this only for initial loads."""

    def __init__(self, models_: Sequence[type[models.Model]]) -> None:
        self.tables = [m._meta.db_table for m in models_]
        self.indexes: list[tuple[str, str]] = []
        self.seconds = 0.0  # creating them again (benchmarks report it)

    def drop(self) -> None:
        self.indexes = _secondary_indexes(self.tables)
        with connection.cursor() as cursor:
            for name, _sql in self.indexes:
                cursor.execute(f"DROP INDEX {connection.ops.quote_name(name)}")

    def restore(self, progress: Any = None) -> None:
        started = time.perf_counter()
        with connection.cursor() as cursor:
            if connection.vendor == "postgresql":
                _run_deferred_checks(cursor)
            for _name, sql in self.indexes:
                cursor.execute(sql)
                if progress is not None:
                    progress.advance()
        self.seconds = time.perf_counter() - started


class ForeignKeysSetAside:
    """On PostgreSQL, drops the foreign keys of some tables for a bulk load and adds them back
    after; elsewhere nothing.

    PostgreSQL checks a foreign key with a trigger per inserted row (a lookup of the row it
    points to), queued to the end of the transaction since Django makes them deferred: about 4
    million checks for 10⁵ deals with their history, stays and spans, which took half of such an
    import's time (docs/performance.md). Adding a key back checks every row in one query (a join)
    instead: PostgreSQL's own advice for loading data ("Populating a Database": remove foreign
    key constraints). Same transaction as the load, as `IndexesSetAside`: a rollback puts the
    keys back, and a row pointing nowhere fails the adding, which rolls the load back. The
    tables, and the tables their keys point to, stay locked against writers until the end of the
    transaction: only for initial loads."""

    def __init__(self, models_: Sequence[type[models.Model]]) -> None:
        self.tables = [m._meta.db_table for m in models_]
        self.keys: list[tuple[str, str, str]] = []  # (table, constraint, its definition)
        self.seconds = 0.0  # adding them back (benchmarks report it)

    def drop(self) -> None:
        self.keys = _foreign_keys(self.tables)
        if not self.keys:
            return
        with connection.cursor() as cursor:
            _run_deferred_checks(cursor)
            for table, name, _definition in self.keys:
                cursor.execute(
                    f"ALTER TABLE {table} DROP CONSTRAINT {connection.ops.quote_name(name)}"
                )

    def restore(self) -> None:
        started = time.perf_counter()
        with connection.cursor() as cursor:
            for table, name, definition in self.keys:
                name = connection.ops.quote_name(name)
                cursor.execute(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")
        self.seconds = time.perf_counter() - started
