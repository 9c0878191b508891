"""Reads of one analytic on two connections at once, so that a large read takes both cores.

SQLite and PostgreSQL release Python's lock while they work, so two queries run side by side in
two threads, each on a connection of its own, take about the time of the longer one when a core
is free. An analytic that reads a large table in parts (conversion: its stays by id; the funnel:
its spans by status) hands the parts to `run_reads`.

The trade-off: the parts are read on two connections, each with its own snapshot, so a change
committed between them may be seen by one part and not the other (as it may between two queries
in autocommit on one connection). Inside a transaction (`in_atomic_block`) every part is read on
the transaction's connection, which alone sees its uncommitted rows: `worth_two_connections`
says no there, and for tables too small for a second connection to pay (opening one takes about
a millisecond)."""

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.db import connections, models


def _large_id_range(model: type[models.Model], using: str, at_least: int) -> range | None:
    """The ids of `model`'s table (smallest to largest) when it is worth reading on two
    connections: outside a transaction, and when they span `at_least` or more; else None. One
    query: each end of the primary key is an index lookup."""
    connection = connections[using]
    if connection.in_atomic_block:
        return None
    table = connection.ops.quote_name(model._meta.db_table)
    with connection.cursor() as cursor:
        # Each end its own subquery: SQLite reads MAX(id) alone from the end of the key, but
        # MAX(id) - MIN(id) in one select from every row.
        cursor.execute(f"SELECT (SELECT MIN(id) FROM {table}), (SELECT MAX(id) FROM {table})")
        first, last = cursor.fetchone()
    if first is None or last - first < at_least:
        return None
    return range(first, last + 1)


def worth_two_connections(model: type[models.Model], using: str, at_least: int) -> bool:
    """Whether to read `model`'s table on two connections (see `_large_id_range`)."""
    return _large_id_range(model, using, at_least) is not None


def split_by_id(qs: Any, at_least: int, share: float) -> list[Any] | None:
    """`qs` as two querysets by id, the first over `share` of its table's ids, when the table is
    worth reading on two connections (`_large_id_range`); else None."""
    ids = _large_id_range(qs.model, qs.db, at_least)
    if ids is None:
        return None
    cut = ids.start + int(len(ids) * share)
    return [qs.filter(pk__lt=cut), qs.filter(pk__gte=cut)]


def run_reads(reads: list[Callable[[], Any]], using: str, *, parallel: bool) -> list[Any]:
    """The result of each read, in order. In `parallel`, the first runs in a worker thread on a
    connection of its own (closed after it) while this thread runs the others: give it the
    largest part."""
    if not parallel:
        return [read() for read in reads]

    def on_own_connection() -> Any:
        try:
            return reads[0]()
        finally:
            connections[using].close()  # the worker thread's own connection

    with ThreadPoolExecutor(max_workers=1) as pool:
        first = pool.submit(on_own_connection)
        rest = [read() for read in reads[1:]]
        return [first.result(), *rest]
