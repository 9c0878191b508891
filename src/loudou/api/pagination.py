"""Paging the API's lists: by page number (`page`, `page_size`, with the total) or by an opaque
cursor (`cursor`, `page_size`) that walks a list in its sort order without skipping or
repeating a row when rows are inserted or deleted between two requests.

A cursor is keyset pagination: it holds the sort key values of the last row of a page (the
requested sort, then the id as the tiebreaker), and the next page is "the rows after those
values". It is base64url JSON signed with `django.core.signing` (salted per list), so a client
can neither forge one nor use one list's cursor on another; a bad one is 400 `invalid_cursor`.

Nulls: wherever a sort key may be null, rows without a value come after every row with one, in
both directions (`NULLS LAST`), on SQLite and PostgreSQL alike.
"""

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.core import signing
from django.db.models import F, Model, Q, QuerySet
from django.db.models.expressions import OrderBy
from django.utils.translation import gettext as _

from loudou.core.errors import LoudouError, ValidationFailed

# Bumped when the encoding of the sort keys changes: older cursors are then refused cleanly.
CURSOR_VERSION = 1
MAX_CURSOR_LENGTH = 2000
CURSOR_HELP = (
    "Cursor paging: empty for the first page, then the `next_cursor` of the previous answer. "
    "The answer has `results`, `page_size` and `next_cursor` (null on the last page) instead of "
    "`count`, `page` and `pages`. Keep the same `sort` (and filters) while you walk."
)


class InvalidCursor(LoudouError):
    """A cursor loudou did not make for this list and sort (forged, garbled, or stale)."""

    code = "invalid_cursor"


@dataclass(frozen=True)
class SortKey:
    """One column of a list's order: an ORM path, its direction, and whether it can be null."""

    path: str
    descending: bool = False
    nullable: bool = False

    def expression(self) -> OrderBy:
        """The ORDER BY term: nulls last in both directions, whatever the database's default."""
        nulls_last = True if self.nullable else None
        if self.descending:
            return F(self.path).desc(nulls_last=nulls_last)
        return F(self.path).asc(nulls_last=nulls_last)


def asc(path: str, *, nullable: bool = False) -> SortKey:
    return SortKey(path, False, nullable)


def desc(path: str, *, nullable: bool = False) -> SortKey:
    return SortKey(path, True, nullable)


Ordering = tuple[SortKey, ...]


def ordered(qs: QuerySet[Any], keys: Ordering) -> QuerySet[Any]:
    """`qs` in the order of `keys` (whose last key must be unique: the id)."""
    return qs.order_by(*(key.expression() for key in keys))


def _value_of(row: Model, path: str) -> Any:
    value: Any = row
    for part in path.split("__"):
        value = getattr(value, part) if value is not None else None
    return value


def _to_json(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return value


def _field(model: type[Model], path: str) -> Any:
    """The model field at the end of an ORM path such as `account__name`."""
    parts = path.split("__")
    for part in parts[:-1]:
        model = model._meta.get_field(part).related_model  # type: ignore[assignment]
    return model._meta.get_field(parts[-1])


def _salt(scope: str) -> str:
    return f"loudou.api.cursor.{scope}"


def encode_cursor(scope: str, sort: str, keys: Ordering, row: Model) -> str:
    """The cursor that continues after `row` in the list `scope` sorted by `sort`."""
    values = [_to_json(_value_of(row, key.path)) for key in keys]
    return signing.dumps({"v": CURSOR_VERSION, "s": sort, "k": values}, salt=_salt(scope))


def decode_cursor(
    scope: str, sort: str, keys: Ordering, model: type[Model], token: str
) -> list[Any]:
    """The sort key values a cursor holds, as Python values; InvalidCursor if it is not one of
    ours for this list and sort."""
    try:
        data = signing.loads(token, salt=_salt(scope))
    except (signing.BadSignature, ValueError, UnicodeError):
        raise InvalidCursor(
            _("This cursor is not valid; start again without one (cursor=).")
        ) from None
    if not isinstance(data, dict) or data.get("v") != CURSOR_VERSION:
        raise InvalidCursor(_("This cursor is out of date; start again without one (cursor=)."))
    if data.get("s") != sort:
        raise InvalidCursor(
            _(
                "This cursor was made for the sort “%(made)s”, not “%(asked)s”; keep the sort, or "
                "start again without a cursor."
            )
            % {"made": data.get("s"), "asked": sort}
        )
    raw = data.get("k")
    if not isinstance(raw, list) or len(raw) != len(keys):
        raise InvalidCursor(_("This cursor is out of date; start again without one (cursor=)."))
    values: list[Any] = []
    for key, value in zip(keys, raw, strict=True):
        if value is None:
            if not key.nullable:
                raise InvalidCursor(_("This cursor is out of date; start again without one."))
            values.append(None)
            continue
        try:
            values.append(_field(model, key.path).to_python(value))
        except Exception:  # a field's own parse error: the cursor no longer fits the list
            raise InvalidCursor(
                _("This cursor is out of date; start again without one (cursor=).")
            ) from None
    return values


def after(keys: Ordering, values: Sequence[Any]) -> Q:
    """The rows that come after the row with `values` in the order of `keys`: for some i, the
    first i-1 keys equal and key i further along (nulls being the furthest)."""
    condition = Q(pk__in=[])
    equal = Q()
    for key, value in zip(keys, values, strict=True):
        if value is None:
            # Nothing comes after a null in this key (nulls last); ties fall to the next key.
            equal &= Q(**{f"{key.path}__isnull": True})
            continue
        further = Q(**{f"{key.path}__{'lt' if key.descending else 'gt'}": value})
        if key.nullable:
            further |= Q(**{f"{key.path}__isnull": True})
        condition |= equal & further
        equal &= Q(**{key.path: value})
    return condition


@dataclass(frozen=True)
class Paging:
    """How a list endpoint is paged: its scope (for the cursor's signature), the sort asked
    for and the order it means."""

    scope: str
    sort: str
    keys: Ordering


def page_or_cursor(
    qs: QuerySet[Any],
    params: Any,
    paging: Paging,
    convert: Callable[[Any], dict[str, Any]],
) -> dict[str, Any]:
    """One page of `qs` (already filtered) in the paging's order: by `cursor` when the request
    has one (even empty), else by `page`."""
    rows = ordered(qs, paging.keys)
    size = params.page_size
    if params.cursor is None:
        total = rows.count()
        offset = (params.page - 1) * size
        return {
            "count": total,
            "page": params.page,
            "page_size": size,
            "pages": max(1, -(-total // size)),
            "results": [convert(row) for row in rows[offset : offset + size]],
        }
    if "page" in params.model_fields_set:
        raise ValidationFailed(
            _("Page by “page” or by “cursor”, not both."), details={"page": "with_cursor"}
        )
    if params.cursor:
        values = decode_cursor(paging.scope, paging.sort, paging.keys, qs.model, params.cursor)
        rows = rows.filter(after(paging.keys, values))
    found = list(rows[: size + 1])
    more = len(found) > size
    found = found[:size]
    return {
        "results": [convert(row) for row in found],
        "page_size": size,
        "next_cursor": (
            encode_cursor(paging.scope, paging.sort, paging.keys, found[-1]) if more else None
        ),
    }
