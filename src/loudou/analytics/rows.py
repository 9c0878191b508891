"""Columns of a queryset as numpy arrays, read straight from the database cursor: the low-level
read under the analytics that go through every stay or deal (conversion, velocity, stalled).

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
- datetimes: datetime64[us], UTC, exact to the microsecond, NaT for NULL. SQLite keeps an aware
  datetime as its UTC text 'YYYY-MM-DD HH:MM:SS[.ffffff]', which numpy parses as it is; computing
  the epoch in SQLite 3.40 (`strftime('%s', …)` plus the microseconds from `substr`) cost more than
  the whole read. PostgreSQL gives `date_part('epoch', col)`, the float of the exact microseconds
  divided by 10⁶ printed to the last bit, from which numpy recovers the microseconds exactly.

The rows come in no particular order (the queryset's ordering is dropped: sort in numpy if needed).
Integer columns must not be NULL. One aggregated text may not exceed the database's limit for a
value (1 GB on both): about 35 million rows a call.
"""

import datetime as dt
import json
from typing import Any

import numpy as np
import numpy.typing as npt
from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.models import BigIntegerField, ExpressionWrapper, F
from django.db.models.expressions import RawSQL

from loudou.org.access import managed_branch_ids
from loudou.playbooks.models import Playbook, Stage

Moments = npt.NDArray[np.datetime64]

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
# The int64 that numpy reads as NaT.
_NAT = np.iinfo(np.int64).min


def _kind(field: Any) -> str:
    """'int' or 'moment' for the output field of a selected column."""
    if field.is_relation and field.target_field is not None:
        field = field.target_field
    kind = field.get_internal_type()
    if kind in _INTEGER_TYPES:
        return "int"
    if kind == "DateTimeField":
        return "moment"
    raise TypeError(f"columns() reads integers and datetimes, not a {kind}")


def _aggregate(vendor: str, column: str, kind: str, nullable: bool) -> list[str]:
    """SQL aggregating one column of the wrapped query into comma-separated texts: one, or for a
    datetime that may be NULL on SQLite, two (the values that are not NULL, and which are)."""
    if vendor == "postgresql":
        if kind == "moment":
            # date_part (float8) rather than EXTRACT (numeric): half the time. Its float is the
            # exact microseconds / 10⁶ correctly rounded, printed to the last bit; `_micros`
            # recovers the microseconds exactly.
            return [f"string_agg(COALESCE(date_part('epoch', {column})::text, 'NaN'), ',')"]
        return [f"string_agg({column}::text, ',')"]
    if vendor == "sqlite":
        # group_concat skips NULLs (a NULL integer shows as a missing value, which `_parse`
        # refuses); for a datetime a second text says row by row which are NULL ('1'), so that
        # the others keep the fixed width that `_parse_sqlite_moments` cuts fast.
        if kind == "moment" and nullable:
            return [f"group_concat({column})", f"group_concat({column} IS NULL, '')"]
        return [f"group_concat({column})"]
    raise NotImplementedError(f"columns() supports SQLite and PostgreSQL, not {vendor}")


def _parse(texts: list[str | None], kind: str, vendor: str, size: int) -> npt.NDArray[Any]:
    """The array in a column's aggregated texts (see `_aggregate`; None: no value)."""
    if not size:
        return np.empty(0, np.int64 if kind == "int" else "datetime64[us]")
    text = texts[0] or ""
    values: npt.NDArray[Any]
    if kind == "int":
        # C-speed (the text mode of `fromstring` is not deprecated, only its binary mode).
        values = np.fromstring(text, dtype=np.int64, sep=",") if text else np.empty(0, np.int64)
    elif vendor == "postgresql":
        values = _micros(np.fromstring(text, dtype=np.float64, sep=","))
    elif len(texts) == 2:
        missing = np.frombuffer((texts[1] or "").encode("ascii"), dtype=np.uint8) == ord("1")
        if missing.size != size:
            raise ValueError(f"read {missing.size} NULL flags of {size} from the database")
        values = np.full(size, np.datetime64("NaT"), "datetime64[us]")
        present = size - int(missing.sum())
        if present:
            values[~missing] = _parse_sqlite_moments(text, present)
    else:
        values = _parse_sqlite_moments(text, size)
    if values.size != size:  # a value numpy could not read, or a NULL: fail, never misalign
        raise ValueError(f"read {values.size} values of {size} from the database")
    return values


def _micros(seconds: npt.NDArray[np.float64]) -> Moments:
    """Epoch seconds as PostgreSQL's `date_part` computes them (float8 of the exact microseconds,
    divided by 10⁶ and correctly rounded; NaN for NULL) back to the exact microseconds.

    `round(seconds × 10⁶)` is within a microsecond or two of the truth; of the candidates around
    it, the one whose own division gives back the same float is it (below 2³³ s, the year 2242,
    no two microseconds share a float)."""
    missing = np.isnan(seconds)
    seconds = np.where(missing, 0.0, seconds)
    guess = np.rint(seconds * 1e6).astype(np.int64)
    micros = np.full(seconds.size, _NAT, np.int64)
    found = missing.copy()
    for step in (0, -1, 1, -2, 2):
        candidate = guess + step
        hit = ~found & (candidate / 1e6 == seconds)
        micros[hit] = candidate[hit]
        found |= hit
    if not found.all():
        raise ValueError("a datetime from the database has no exact microsecond")
    return micros.view("datetime64[us]")


def _parse_sqlite_moments(text: str, size: int) -> Moments:
    """SQLite's datetime texts, comma-separated, as datetime64[us] ('' → NaT).

    When every text has the same width (the usual case: Django writes 19 characters, or 26 with
    microseconds) they are cut at fixed offsets, several times faster than splitting; the commas
    found exactly at every offset prove the cut right."""
    width = (len(text) + 1) // size
    if width > 1 and width * size == len(text) + 1:
        raw = np.frombuffer(text.encode("ascii") + b",", dtype=np.uint8).reshape(size, width)
        if (raw[:, -1] == ord(",")).all():
            cells = np.ascontiguousarray(raw[:, :-1]).view(f"S{width - 1}").ravel()
            return cells.astype("datetime64[us]")
    return np.array(text.split(","), dtype="datetime64[us]")


def columns(qs: Any, *fields: Any) -> list[npt.NDArray[Any]]:
    """One numpy array per field of `qs` (names as in `values_list`, or expressions), from one
    aggregate query; see the module docstring for the types. An empty queryset (`.none()`, an
    anonymous user's) gives empty arrays without a query."""
    aliases = [f"col{i}_" for i in range(len(fields))]
    qs = qs.order_by().annotate(
        **{
            alias: F(f) if isinstance(f, str) else f
            for alias, f in zip(aliases, fields, strict=True)
        }
    )
    selected = [qs.query.annotations[alias] for alias in aliases]
    kinds = [_kind(expression.output_field) for expression in selected]
    # A plain column says whether it may be NULL; any other expression may be.
    nullable = [getattr(getattr(e, "target", None), "null", True) for e in selected]
    qs = qs.values_list(*aliases)
    connection = connections[qs.db]
    vendor = connection.vendor
    try:
        inner, params = qs.query.get_compiler(using=qs.db).as_sql()
    except EmptyResultSet:
        return [_parse([], kind, vendor, 0) for kind in kinds]
    quote = connection.ops.quote_name
    aggregates = [
        _aggregate(vendor, f"rows_.{quote(alias)}", kind, null)
        for alias, kind, null in zip(aliases, kinds, nullable, strict=True)
    ]
    sql = ", ".join(part for parts in aggregates for part in parts)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*), {sql} FROM ({inner}) rows_", params)
        size, *texts = cursor.fetchone()
    arrays = []
    for kind, parts in zip(kinds, aggregates, strict=True):
        arrays.append(_parse(texts[: len(parts)], kind, vendor, size))
        texts = texts[len(parts) :]
    return arrays


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
    """`qs` kept to the rows whose integer `field` is in `values`, checked row by row.

    Written as `field + 0` so that SQLite, which has no statistics (loudou never runs ANALYZE),
    does not walk the field's index and fetch each row at random: when the values cover most of
    the table, as the playbook of a single-playbook company does, the plain scan is two to three
    times faster (100k deals: 68 ms against 139 ms)."""
    return qs.alias(scanned=ExpressionWrapper(F(field) + 0, output_field=BigIntegerField())).filter(
        scanned__in=list(values)
    )
