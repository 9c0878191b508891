"""Columns of a queryset as numpy arrays, read straight from the database cursor: the low-level
read under the analytics that go through every stay, deal or span (conversion, velocity, stalled,
the flow, the as-of funnel's ended spans).

The ORM turns each value it reads into a Python object (an aware datetime, a Decimal, a tuple per
row), and SQLite's Python driver alone spends about a microsecond a cell building them: at 300,000
stays that is several times the query itself. So the analytics still build their querysets the
usual way, and the visibility rule and the scope filters stay the ORM's (`Scope.opportunities()`,
`narrow()`, `visible_to`); `columns()` compiles one to SQL and wraps it in one aggregate query that
returns each selected column as a single text (SQLite `group_concat`, PostgreSQL `string_agg`), and
numpy parses the texts. All aggregates of one query consume the rows in one pass, so the i-th value
of every column comes from the same row. At 100k deals (300k stays, 4 columns) that took 0.19 s
against 0.78 s for fetching the rows and converting them to arrays.

Values come back as:
- integers (ids, foreign keys, integer expressions such as a `Case` coding a status): int64;
- amounts (a decimal column with two places, such as `money_field`): int64 whole cents, equal to
  `CAST(ROUND(amount * 100))` in SQL. SQLite hands over the stored number as it is (an integer,
  or a float printed to 15 digits) and numpy scales it: an expression per row costs SQLite more
  than the read itself. Numpy's cents are exact while every amount is under 10^13 with at most
  two decimals; the read checks that, and otherwise reads again with the cents computed in SQL.
  PostgreSQL computes them in SQL (exact numeric);
- dates: datetime64[D], NaT for NULL;
- texts, when asked for as `Text("status")` (a text column that may not be NULL): bytes (numpy
  `S`, UTF-8), one per row; a value may not contain a comma (the read fails rather than
  misalign). Comparing a status in numpy costs less than coding it in SQL;
- labels, when asked for as `Label("name")` (any text column, through relations too, such as
  `Label("account__name")`): Python strings in an object array, None for NULL. They are what a
  list shows (a deal's name, its account's), so they may hold any character: joined with the
  unit separator (U+001F) and split by Python, or, when a value holds that character, read again
  with every label in hex;
- datetimes: datetime64[us], UTC, exact to the microsecond, NaT for NULL. SQLite keeps an aware
  datetime as its UTC text 'YYYY-MM-DD HH:MM:SS[.ffffff]', which numpy parses as it is; computing
  the epoch in SQLite 3.40 (`strftime('%s', …)` plus the microseconds from `substr`) cost more than
  the whole read. PostgreSQL gives the microseconds since the epoch as an integer (`_PG_MICROS`):
  numpy reads integers ten times faster than the floats of `date_part('epoch', …)`.

The rows come in no particular order (the queryset's ordering is dropped: sort in numpy if needed).
Integer, amount and text columns must not be NULL. One aggregated text may not exceed the
database's limit for a value (1 GB on both): about 35 million rows a call.
"""

import datetime as dt
import json
from typing import Any, TypedDict

import numpy as np
import numpy.typing as npt
from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.models import BigIntegerField, CharField, ExpressionWrapper, F, QuerySet, TextField
from django.db.models.expressions import RawSQL

from loudou.org.access import managed_branch_ids
from loudou.playbooks.models import Playbook, Stage

Moments = npt.NDArray[np.datetime64]
IntArray = npt.NDArray[np.int64]

_INTEGER_TYPES = {
    "AutoField",
    "BigAutoField",
    "SmallAutoField",
    "IntegerField",
    "BigIntegerField",
    "SmallIntegerField",
    "PositiveIntegerField",
    "PositiveBigIntegerField",
    "PositiveSmallIntegerField",
}
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)


class Text(F):
    """A text column for `columns()`, read as bytes (other texts are refused: see the module
    docstring)."""


class Label(F):
    """A text column for `columns()` read as Python strings (None for NULL): see the module
    docstring."""


def _kind(field: Any, nullable: bool, text: bool, label: bool = False) -> str:
    """'int', 'cents', 'date', 'text', 'label' or 'moment' for the output field of a selected
    column (`text`: asked for as `Text`; `label`: as `Label`)."""
    if field.is_relation and field.target_field is not None:
        field = field.target_field
    kind = field.get_internal_type()
    if label:
        if not isinstance(field, CharField | TextField):
            raise TypeError(f"columns() reads labels from text columns, not a {kind}")
        return "label"
    if text:
        if kind not in ("CharField", "TextField") or nullable:
            raise TypeError(f"columns() reads texts that may not be NULL, not a {kind}")
        return "text"
    if kind in _INTEGER_TYPES:
        return "int"
    if kind == "DateTimeField":
        return "moment"
    if kind == "DateField":
        return "date"
    if kind == "DecimalField" and field.decimal_places == 2:
        return "cents"
    raise TypeError(f"columns() reads integers, amounts, dates and datetimes, not a {kind}")


def _aggregate(
    vendor: str, column: str, kind: str, nullable: bool, exact: bool, hexed: bool = False
) -> list[str]:
    """SQL aggregating one column of the wrapped query into comma-separated texts: one, or for a
    datetime or date that may be NULL, two (the values, and which are NULL). `exact`: amounts in cents computed in SQL (see the module docstring). A label is
    always two texts, its values (joined with U+001F, or `hexed`, in hex joined with commas) and
    which are NULL: a label through a relation may be NULL whatever its column says."""
    if kind == "label":
        return _label_aggregates(vendor, column, hexed)
    if vendor == "postgresql":
        if kind in ("moment", "date"):
            value = _PG_MICROS if kind == "moment" else "({c} - DATE '1970-01-01')"
            value = value.format(c=column)
            if not nullable:
                return [f"string_agg({value}::text, ',')"]
            # NULL as 0, and a second text saying which rows are NULL (as on SQLite).
            return [
                f"string_agg(COALESCE({value}, 0)::text, ',')",
                f"string_agg(({column} IS NULL)::int::text, '')",
            ]
        if kind == "cents":
            return [f"string_agg(ROUND({column} * 100)::bigint::text, ',')"]
        return [f"string_agg({column}::text, ',')"]
    if vendor == "sqlite":
        # group_concat skips NULLs (a NULL integer shows as a missing value, which `_parse`
        # refuses); for a datetime a second text says row by row which are NULL ('1'), so that
        # the others keep the fixed width that `_parse_sqlite_moments` cuts fast.
        if kind in ("moment", "date") and nullable:
            return [f"group_concat({column})", f"group_concat({column} IS NULL, '')"]
        if kind == "cents" and exact:
            return [f"group_concat(CAST(ROUND({column} * 100) AS INTEGER))"]
        return [f"group_concat({column})"]
    raise NotImplementedError(f"columns() supports SQLite and PostgreSQL, not {vendor}")


def _label_aggregates(vendor: str, column: str, hexed: bool) -> list[str]:
    """The two aggregates of a label column (see `_aggregate`)."""
    if vendor == "postgresql":
        value = f"COALESCE({column}, '')"
        if hexed:
            values = f"string_agg(encode(convert_to({value}, 'UTF8'), 'hex'), ',')"
        else:
            values = f"string_agg({value}, chr(31))"
        return [values, f"string_agg(CASE WHEN {column} IS NULL THEN '1' ELSE '0' END, '')"]
    if vendor == "sqlite":
        value = f"COALESCE({column}, '')"
        values = f"group_concat(hex({value}))" if hexed else f"group_concat({value}, char(31))"
        return [values, f"group_concat({column} IS NULL, '')"]
    raise NotImplementedError(f"columns() supports SQLite and PostgreSQL, not {vendor}")


#: PostgreSQL: a timestamp's exact microseconds since the epoch. `date_part` (float8) takes half
#: the time of `EXTRACT` (numeric); its float is the microseconds / 10⁶ correctly rounded, and
#: that times 10⁶ lies within 0.48 µs of the microseconds while they are under 2³¹ × 10⁶ in size
#: (1902 to 2038), so rounding gives them back. Outside that range, the exact numeric.
_PG_MICROS = (
    "CASE WHEN {c} > TIMESTAMPTZ '1902-01-01 00:00:00+00' "
    "AND {c} < TIMESTAMPTZ '2038-01-01 00:00:00+00' "
    "THEN (date_part('epoch', {c}) * 1000000)::bigint "
    "ELSE (EXTRACT(epoch FROM {c}) * 1000000)::bigint END"
)


def pg_micros(column: str) -> str:
    """PostgreSQL SQL for the exact microseconds since the epoch of the timestamp `column` (an
    integer; see `_PG_MICROS`)."""
    return _PG_MICROS.format(c=column)


class _Inexact(Exception):
    """Amounts that numpy cannot turn into cents exactly (see `_sqlite_cents`)."""


class _Misaligned(Exception):
    """A label holding the unit separator: the labels must be read again in hex."""


#: Below this, an amount with two decimals read as a float gives its cents exactly: its cents
#: n < 2^51, so the float of n / 100 times 100 lies within a thousandth of n.
_EXACT_AMOUNT = 1e13


_EMPTY: dict[str, npt.DTypeLike] = {
    "int": np.int64,
    "cents": np.int64,
    "moment": "datetime64[us]",
    "date": "datetime64[D]",
    "text": "S1",
    "label": object,
}


def _parse(
    texts: list[str | None], kind: str, vendor: str, size: int, hexed: bool = False
) -> npt.NDArray[Any]:
    """The array in a column's aggregated texts (see `_aggregate`; None: no value)."""
    if not size:
        return np.empty(0, _EMPTY[kind])
    if kind == "label":
        return _parse_labels(texts[0] or "", texts[1] or "", size, hexed)
    text = texts[0] or ""
    values: npt.NDArray[Any]
    unit = "D" if kind == "date" else "us"
    if kind == "int" or (kind == "cents" and "." not in text):
        # C-speed (the text mode of `fromstring` is not deprecated, only its binary mode).
        values = np.fromstring(text, dtype=np.int64, sep=",") if text else np.empty(0, np.int64)
        if kind == "cents":
            # Amounts that SQLite holds as integers (it prints every float with a point).
            if values.size == size and np.abs(values).max() >= _EXACT_AMOUNT:
                raise _Inexact
            values = values * 100
    elif kind == "cents":
        values = _sqlite_cents(np.fromstring(text, dtype=np.float64, sep=","))
    elif kind == "text":
        values = _parse_texts(text, size)
    elif vendor == "postgresql":
        values = np.fromstring(text, dtype=np.int64, sep=",").view(f"datetime64[{unit}]")
        if len(texts) == 2 and values.size == size:
            missing = np.frombuffer((texts[1] or "").encode("ascii"), dtype=np.uint8) == ord("1")
            if missing.size != size:
                raise ValueError(f"read {missing.size} NULL flags of {size} from the database")
            values[missing] = np.datetime64("NaT")
    elif len(texts) == 2:
        missing = np.frombuffer((texts[1] or "").encode("ascii"), dtype=np.uint8) == ord("1")
        if missing.size != size:
            raise ValueError(f"read {missing.size} NULL flags of {size} from the database")
        values = np.full(size, np.datetime64("NaT"), f"datetime64[{unit}]")
        present = size - int(missing.sum())
        if present:
            values[~missing] = _parse_sqlite_moments(text, present, unit)
    else:
        values = _parse_sqlite_moments(text, size, unit)
    if values.size != size:  # a value numpy could not read, or a NULL: fail, never misalign
        raise ValueError(f"read {values.size} values of {size} from the database")
    return values


def _parse_sqlite_moments(text: str, size: int, unit: str = "us") -> npt.NDArray[np.datetime64]:
    """SQLite's datetime (or date, `unit` "D") texts, comma-separated, as datetime64 ('' → NaT).

    When every text has the same width (the usual case: Django writes 19 characters, or 26 with
    microseconds; 10 for a date) they are cut at fixed offsets, several times faster than
    splitting; the commas found exactly at every offset prove the cut right."""
    width = (len(text) + 1) // size
    if width > 1 and width * size == len(text) + 1:
        raw = np.frombuffer(text.encode("ascii") + b",", dtype=np.uint8).reshape(size, width)
        if (raw[:, -1] == ord(",")).all():
            cells = np.ascontiguousarray(raw[:, :-1]).view(f"S{width - 1}").ravel()
            return cells.astype(f"datetime64[{unit}]")
    return np.array(text.split(","), dtype=f"datetime64[{unit}]")


def _sqlite_cents(amounts: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    """Whole cents of amounts that SQLite printed (integers, or floats to 15 significant digits),
    equal to SQLite's `CAST(ROUND(amount * 100) AS INTEGER)`; `_Inexact` when that cannot be
    guaranteed (an amount of 10^13 or more, or one with more than two decimals)."""
    scaled = amounts * 100
    cents = np.rint(scaled)
    # Under 10^13 with two decimals, the 15 printed digits are the decimal itself, and its float
    # scaled by 100 lies within a thousandth of the whole cents: then rounding half to even
    # (numpy) and half away from zero (SQLite) never differ, and both give those cents.
    if not (np.abs(amounts) < _EXACT_AMOUNT).all() or not (np.abs(scaled - cents) < 1e-3).all():
        raise _Inexact
    return cents.astype(np.int64)


def _parse_texts(text: str, size: int) -> npt.NDArray[np.bytes_]:
    """Comma-separated texts as a numpy bytes array (UTF-8), cut in numpy rather than split into
    Python strings. Exactly `size` values or ValueError (a value holding a comma)."""
    raw = np.frombuffer(text.encode("utf-8"), dtype=np.uint8)
    cuts = np.flatnonzero(raw == ord(","))
    if cuts.size != size - 1:
        raise ValueError(f"read {cuts.size + 1} texts of {size} from the database")
    if not raw.size:
        return np.full(size, b"", "S1")
    starts = np.r_[0, cuts + 1]
    lengths = np.r_[cuts, raw.size] - starts
    width = max(int(lengths.max()), 1)
    cells = np.zeros((size, width), dtype=np.uint8)
    last = raw.size - 1
    for offset in range(width):  # one pass per character: texts such as statuses are short
        beyond = np.minimum(starts + offset, last)
        cells[:, offset] = np.where(lengths > offset, raw[beyond], 0)
    return cells.view(f"S{width}").ravel()


def _parse_labels(text: str, missing: str, size: int, hexed: bool) -> npt.NDArray[Any]:
    """Labels as an object array of strings (None where `missing` says '1')."""
    if hexed:
        values: list[str | None] = [bytes.fromhex(h).decode() for h in text.split(",")]
    else:
        values = list(text.split("\x1f"))
        if len(values) != size:
            raise _Misaligned
    if len(values) != size or len(missing) != size:
        raise ValueError(f"read {len(values)} labels of {size} from the database")
    labels = np.empty(size, object)
    labels[:] = values
    if "1" in missing:
        labels[np.frombuffer(missing.encode("ascii"), np.uint8) == ord("1")] = None
    return labels


def columns(qs: Any, *fields: Any) -> list[npt.NDArray[Any]]:
    """One numpy array per field of `qs` (names as in `values_list`, or expressions), from one
    aggregate query; see the module docstring for the types. An empty queryset (`.none()`, an
    anonymous user's) gives empty arrays without a query.

    `qs` may also be a list of querysets of one model: their rows together (`UNION ALL`), for
    reads that are one index range each, which SQLite answers from the index alone where an OR
    of the ranges would fetch every row from the table."""
    querysets = list(qs) if isinstance(qs, list | tuple) else [qs]
    exact = hexed = False
    while True:
        try:
            return _columns(querysets, fields, exact=exact, hexed=hexed)
        except _Inexact:
            exact = True
        except _Misaligned:
            hexed = True


def _columns(
    querysets: list[Any], fields: tuple[Any, ...], *, exact: bool, hexed: bool = False
) -> list[npt.NDArray[Any]]:
    """`columns()`, with amounts read as they are stored or (`exact`) as cents computed in SQL,
    and labels joined by U+001F or (`hexed`) in hex."""
    aliases = [f"col{i}_" for i in range(len(fields))]
    annotations = {
        alias: F(f) if isinstance(f, str) else f for alias, f in zip(aliases, fields, strict=True)
    }
    annotated = [qs.order_by().annotate(**annotations) for qs in querysets]
    selected = [annotated[0].query.annotations[alias] for alias in aliases]
    # A plain column says whether it may be NULL; any other expression may be.
    nullable = [getattr(getattr(e, "target", None), "null", True) for e in selected]
    kinds = [
        _kind(expression.output_field, null, isinstance(field, Text), isinstance(field, Label))
        for expression, null, field in zip(selected, nullable, fields, strict=True)
    ]
    using = annotated[0].db
    connection = connections[using]
    vendor = connection.vendor
    arms, params = [], []
    for qs in annotated:
        try:
            sql, more = qs.values_list(*aliases).query.get_compiler(using=using).as_sql()
        except EmptyResultSet:
            continue  # a queryset that can hold no row: `.none()`, an anonymous user's
        arms.append(sql)
        params.extend(more)
    if not arms:
        return [_parse([], kind, vendor, 0) for kind in kinds]
    inner = arms[0]
    if len(arms) > 1:
        inner = " UNION ALL ".join(f"SELECT * FROM ({sql}) arm_" for sql in arms)
    quote = connection.ops.quote_name
    aggregates = [
        _aggregate(vendor, f"rows_.{quote(alias)}", kind, null, exact, hexed)
        for alias, kind, null in zip(aliases, kinds, nullable, strict=True)
    ]
    sql = ", ".join(part for parts in aggregates for part in parts)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*), {sql} FROM ({inner}) rows_", params)
        size, *texts = cursor.fetchone()
    # Cents computed in SQL arrive as integers.
    kinds = ["int" if k == "cents" and (exact or vendor != "sqlite") else k for k in kinds]
    arrays = []
    for kind, parts in zip(kinds, aggregates, strict=True):
        arrays.append(_parse(texts[: len(parts)], kind, vendor, size, hexed))
        texts = texts[len(parts) :]
    return arrays


def id_positions(ids: IntArray, wanted: IntArray) -> IntArray:
    """The position in sorted `ids` of each of `wanted`, −1 where it is not there: through a
    table indexed by id when the ids are not much sparser than the values looked up (one gather),
    else by binary search."""
    if not ids.size:
        return np.full(wanted.size, -1, np.int64)
    top = int(ids[-1])
    if int(ids[0]) >= 0 and top < 4 * (ids.size + wanted.size) + 1024:
        table = np.full(top + 2, -1, np.int64)  # the last entry: any id beyond `top`
        table[ids] = np.arange(ids.size)
        return table[np.clip(wanted, 0, top + 1)]
    found = np.minimum(np.searchsorted(ids, wanted), ids.size - 1)
    return np.where(ids[found] == wanted, found, -1)


def seconds(moments: Moments) -> npt.NDArray[np.float64]:
    """Epoch seconds as floats, NaN for NaT: equal to `datetime.timestamp()` to the last bit (both
    divide the exact count of microseconds by 10⁶, correctly rounded)."""
    micros = moments.astype("datetime64[us]").view(np.int64)
    return np.where(np.isnat(moments), np.nan, micros / 1e6)


def days_between(
    start: Moments | np.datetime64, end: Moments | np.datetime64
) -> npt.NDArray[np.float64]:
    """Days from `start` to `end`, never negative (a clock skew in imported data counts as zero,
    not as negative time; NaN where either is NaT): equal to
    `max(0, (end - start).total_seconds() / 86400)` on the same datetimes to the last bit, because
    the difference is taken in whole microseconds before any rounding. Ties stay ties."""
    micros = (end.astype("datetime64[us]") - start.astype("datetime64[us]")).view(np.int64)
    days = np.where(np.isnat(start) | np.isnat(end), np.nan, micros / 1e6 / 86_400.0)
    return np.maximum(days, 0.0)


def moment(value: dt.datetime) -> np.datetime64:
    """An aware datetime as a datetime64[us] (UTC), exactly."""
    return np.datetime64((value - _EPOCH) // _MICROSECOND, "us")


def to_datetime(value: np.datetime64) -> dt.datetime:
    """A datetime64 as an aware datetime in UTC, exactly (the inverse of `moment`)."""
    return _EPOCH + int(value.astype("datetime64[us]").view(np.int64)) * _MICROSECOND


def sees_every_opportunity(user: Any) -> bool:
    """True when the visibility rule hides no opportunity from `user`: an active, authenticated
    user for whom `managed_branch_ids` is None (executives, administrators, the system actor), so
    that `visible_to` adds no filter. Anonymous and inactive users see none. Costs no query:
    `managed_branch_ids` is asked only of users who see everything, and answers them at once."""
    if not (getattr(user, "is_authenticated", False) and getattr(user, "is_active", False)):
        return False
    return bool(getattr(user, "sees_everything", False)) and managed_branch_ids(user) is None


class ScopeFilters(TypedDict):
    """The branch, owner and industry filters of a question, as the keyword arguments of
    `unrestricted`, `scope.narrow` and `scope.Scope`."""

    branch_ids: set[int] | None
    owner_id: int | None
    industry_id: int | None


def unrestricted(
    user: Any,
    *,
    branch_ids: set[int] | None = None,
    owner_id: int | None = None,
    industry_id: int | None = None,
) -> bool:
    """True when a question about a playbook covers every deal of it: no branch, owner or
    industry asked for, and a `user` who sees every opportunity. Then a read of a cache (stays,
    spans) needs no `IN (deals)` check: the playbook's rows are exactly the scope's."""
    unfiltered = branch_ids is None and owner_id is None and industry_id is None
    return unfiltered and sees_every_opportunity(user)


def whole_playbook(scope: Any) -> bool:
    """`unrestricted` for an `analytics.scope.Scope`."""
    return unrestricted(scope.actor, **scope.filters())


def stages_by_id(playbook: Playbook, stage_ids: npt.NDArray[np.int64]) -> dict[int, Stage]:
    """The stages of `stage_ids` (the stays' stages, say) by id. The current version's come from
    its per-process cache (`ordered_stages`); only stages of other versions or playbooks, if any
    id is one, cost a query."""
    found = {stage.pk: stage for stage in playbook.ordered_stages()}
    others = stage_ids[~np.isin(stage_ids, list(found))]
    if others.size:
        found.update(
            (stage.pk, stage)
            for stage in Stage.objects.filter(pk__in=np.unique(others).tolist()).select_related(
                "playbook"
            )
        )
    return found


def id_set(ids: list[int], using: str = "default") -> RawSQL:
    """A subquery of `ids` for a `pk__in=` filter, passed as one parameter whatever their number
    (a JSON array on SQLite, an array on PostgreSQL): no limit on the number of SQL variables, and
    none of the ORM's per-value work, which took longer than the query for 4,000 ids."""
    if connections[using].vendor == "postgresql":
        return RawSQL("SELECT unnest(%s::bigint[])", (ids,))
    return RawSQL("SELECT value FROM json_each(%s)", (json.dumps(ids),))


def scan_in(qs: Any, field: str, values: Any) -> Any:
    """`qs` kept to the rows whose integer `field` is in `values` (a list, or a queryset of one
    column), checked row by row.

    Written as `field + 0` so that SQLite, which has no statistics (loudou never runs ANALYZE),
    does not walk the field's index and fetch each row at random: when the values cover most of
    the table, as the playbook of a single-playbook company does, the plain scan is two to three
    times faster (100k deals: 68 ms against 139 ms)."""
    if not isinstance(values, QuerySet):  # a queryset stays a subquery: no query of its own
        values = list(values)
    return qs.alias(scanned=ExpressionWrapper(F(field) + 0, output_field=BigIntegerField())).filter(
        scanned__in=values
    )
