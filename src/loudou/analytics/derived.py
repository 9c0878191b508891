"""Tables the analytics derive from history (the stays, the state spans): written for new deals,
replaced and checked against history, all in SQL, so each takes seconds even for millions of rows.

A derived table gives its derivation as a SELECT over history (`Derivation.select`), its columns
in the table's order; the services keep the table current row by row as history is written, and
this module compares or replaces it with that derivation."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection, models, transaction

# (condition on the history rows `h`, its parameters) → (the SELECT, all its parameters).
Select = Callable[[str, Sequence[Any]], tuple[str, list[Any]]]


@dataclass(frozen=True)
class Derivation:
    """A table derived from history: its model, its columns (attnames, in the order `select`
    gives them), its SQL derivation, the name of one row in messages, and the columns (1-based)
    that order the differences `differences` lists."""

    model: type[models.Model]
    fields: tuple[str, ...]
    select: Select
    noun: str
    order: str

    def _table(self) -> str:
        return connection.ops.quote_name(self.model._meta.db_table)

    def _columns(self) -> str:
        meta = self.model._meta
        columns = []
        for name in self.fields:
            field = meta.get_field(name.removesuffix("_id"))
            # `fields` are the table's own columns: concrete fields, each with a column.
            assert isinstance(field, models.Field) and field.column is not None
            columns.append(connection.ops.quote_name(field.column))
        return ", ".join(columns)

    def insert_for(self, opportunity_ids: range) -> int:
        """Write the rows of the deals whose ids are in `opportunity_ids` from their history, in
        one statement (the importer's bulk path: new deals, which have none yet); how many."""
        select, params = self.select(
            "h.opportunity_id BETWEEN %s AND %s", (opportunity_ids.start, opportunity_ids.stop - 1)
        )
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {self._table()} ({self._columns()}) {select}", params)
            return cursor.rowcount

    def rebuild(self) -> int:
        """Replace the whole table with what the history says; return the number of rows."""
        select, params = self.select("", ())
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {self._table()}")
            cursor.execute(f"INSERT INTO {self._table()} ({self._columns()}) {select}", params)
        return self.model._default_manager.count()

    def differences(self, limit: int = 20) -> list[str]:
        """Rows history derives that the table lacks, and rows of the table history does not
        derive (empty: consistent); at most `limit` of each."""
        select, params = self.select("", ())
        stored = f"SELECT {self._columns()} FROM {self._table()}"
        problems = []
        with connection.cursor() as cursor:
            for label, first, second, first_params, second_params in (
                (f"missing {self.noun}", select, stored, params, []),
                (f"{self.noun} not in history", stored, select, [], params),
            ):
                cursor.execute(
                    f"SELECT * FROM ({first} EXCEPT {second}) AS d ORDER BY {self.order}"
                    f" LIMIT {int(limit)}",
                    first_params + second_params,
                )
                problems += [f"{label}: {row}" for row in cursor.fetchall()]
        return problems
