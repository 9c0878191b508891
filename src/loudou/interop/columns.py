"""Reading a sheet a whole column at a time, for the forms nearly every export writes: text,
2026-03-01, 2026-03-01 10:00[:00], 1234567, open / won / lost. Reading each cell through
`RowReader` and the parsers of `interop.values` costs a few Python calls per cell, which was most
of the time of reading a large file; here a column of such cells is checked at once (numpy,
position by position, when its cells have one width; else one regular expression over the
column) and converted by C functions mapped over it.

Each reader gives one value per cell, or `SLOW` for a cell it does not read: a cell in another
form (2026/3/1, ¥1,234, an XLSX number or date), an empty required cell, a bad cell. The format
readers (`formats.common`) read a row with a `SLOW` cell the way they read every row before,
through `RowReader` and the parsers, so every problem is reported exactly as it was (row, column,
value, reason, in the user's language). For every other cell the value is the one the parser
gives: each reader below takes only what the parser's own fast path takes, and gives what that
path gives (tests/interop/test_import_columns.py compares the two on many forms)."""

import datetime as dt
import functools
import re
from collections.abc import Callable
from decimal import Decimal
from itertools import repeat
from typing import Any

import numpy as np

from loudou.interop.tables import as_text
from loudou.interop.values import CENT, FAST_ISO, LIMIT, truth


class _Slow:
    """The type of `SLOW`."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "SLOW"


# A cell the column readers leave to RowReader and the parsers (compared with `is`).
SLOW: Any = _Slow()

# A column as one text, a cell a line, empty cells allowed (read as None, as RowReader.parse
# reads them). [0-9], not \d: \d takes other scripts' digits, which the parsers' fast paths may
# read differently; a column with one of those goes cell by cell, as the parsers do.
_DATE = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_DATETIME = _DATE + r"[ T][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?"


def _lines(cell: str) -> re.Pattern[str]:
    return re.compile(f"(?:{cell})?(?:\n(?:{cell})?)*")


_DATE_LINES, _DATETIME_LINES = _lines(_DATE), _lines(_DATETIME)
# The same forms by width, a character per position: 9 a digit, ? a space or a T, any other
# itself. A column's cells are nearly always all of one width (one program wrote them), which
# numpy checks position by position faster than the regular expression reads the lines.
_DATE_FORMS = {10: "9999-99-99"}
_DATETIME_FORMS = {
    16: "9999-99-99?99:99",
    19: "9999-99-99?99:99:99",
    **{20 + n: "9999-99-99?99:99:99." + "9" * n for n in range(1, 7)},
}
_FIRST_DAY, _LAST_DAY = dt.date(1900, 1, 1), dt.date(2200, 12, 31)  # parse_date's range


def _all_in_form(cells: list[Any], lines: re.Pattern[str], forms: dict[int, str]) -> bool:
    """Whether every cell is text in the form `lines` (and `forms`, by width) describes, or
    empty ("")."""
    filled = [v for v in cells if v != ""] if "" in cells else cells
    try:
        widths = set(map(len, filled))
    except TypeError:  # a None (a short row's padding) or an XLSX value: not this form
        return False
    if len(widths) == 1 and widths <= forms.keys():
        return _one_width_in_form(filled, forms[widths.pop()])
    try:
        text = "\n".join(cells)
    except TypeError:
        return False
    # One line per cell: a cell with a line break in it (a quoted CSV cell) is not in the form.
    return text.count("\n") == len(cells) - 1 and lines.fullmatch(text) is not None


def _one_width_in_form(cells: list[str], form: str) -> bool:
    """Whether every cell (all `len(form)` characters long) has at each position what `form`
    says: 9 a digit, ? a space or a T, any other character itself."""
    try:
        data = "".join(cells).encode("ascii")
    except UnicodeEncodeError:
        return False
    grid = np.frombuffer(data, dtype=np.uint8).reshape(len(cells), len(form))
    low = np.array([ord("0") if c == "9" else ord(" ") if c == "?" else ord(c) for c in form])
    high = np.array([ord("9") if c == "9" else ord("T") if c == "?" else ord(c) for c in form])
    if not ((grid >= low) & (grid <= high)).all():
        return False
    either = [i for i, c in enumerate(form) if c == "?"]  # between " " and "T": only those two
    return bool(((grid[:, either] == ord(" ")) | (grid[:, either] == ord("T"))).all())


def _cell_by_cell(cells: list[Any], read: Callable[[Any], Any]) -> list[Any]:
    return [read(value) for value in cells]


# --- text ---------------------------------------------------------------------------------


def texts(cells: list[Any], *, required: bool = False, limit: int = 0) -> list[Any]:
    """`RowReader.text` of each cell (stripped; an XLSX value as Excel shows it), `SLOW` for a
    cell that it would report (empty when `required`, longer than `limit`)."""
    try:
        out = list(map(str.strip, cells))
    except TypeError:  # not all text (XLSX): as_text, which reads any cell
        out = list(map(as_text, cells))
    if (required and "" in out) or (limit and max(map(len, out), default=0) > limit):
        out = [SLOW if (required and not v) or (limit and len(v) > limit) else v for v in out]
    return out


def words(cells: list[Any], allowed: dict[str, str]) -> list[Any]:
    """Each cell's text, lower-cased, through `allowed` (e.g. 赢单 → won); `SLOW` for one not in
    it. Looked up once per distinct cell: such columns hold a handful of values."""
    distinct = set(cells)
    if any(value.__class__ is not str for value in distinct):
        # XLSX values: 1 and True are one key of a dict, and their texts differ.
        return [allowed.get(as_text(value).lower(), SLOW) for value in cells]
    meaning = {value: allowed.get(value.strip().lower(), SLOW) for value in distinct}
    return list(map(meaning.__getitem__, cells))


# --- dates --------------------------------------------------------------------------------


def date_cell(value: Any) -> Any:
    """`RowReader.parse(parse_date)` of a cell in parse_date's fast form (2026-03-01), None for an
    empty one; else `SLOW`."""
    if value is None or value == "":
        return None
    if value.__class__ is str and len(value) == 10 and value[4] == "-" and value[7] == "-":
        try:
            day = dt.date.fromisoformat(value)
        except ValueError:
            return SLOW
        if 1900 <= day.year <= 2200:
            return day
    return SLOW


def dates(cells: list[Any]) -> list[Any]:
    """`date_cell` of each cell; a column of 2026-03-01 cells in one pass."""
    if not _all_in_form(cells, _DATE_LINES, _DATE_FORMS):
        return _cell_by_cell(cells, date_cell)
    out: list[dt.date | None] | list[dt.date]
    try:
        if "" in cells:
            out = [dt.date.fromisoformat(v) if v else None for v in cells]
            days = [d for d in out if d is not None]
        else:
            out = days = list(map(dt.date.fromisoformat, cells))
    except ValueError:  # 2026-02-30: cell by cell, that one SLOW
        return _cell_by_cell(cells, date_cell)
    if days and (min(days) < _FIRST_DAY or max(days) > _LAST_DAY):
        return _cell_by_cell(cells, date_cell)
    return out


def datetime_cell(value: Any, tz: Any) -> Any:
    """`RowReader.parse(parse_datetime, tz=tz)` of a cell in parse_datetime's fast form
    (2026-03-01 10:00[:00[.ffffff]]), None for an empty one; else `SLOW`."""
    if value is None or value == "":
        return None
    if isinstance(value, str) and FAST_ISO.match(value):
        try:
            return dt.datetime.fromisoformat(value).replace(tzinfo=tz)
        except ValueError:
            return SLOW
    return SLOW


def datetimes(cells: list[Any], tz: Any) -> list[Any]:
    """`datetime_cell` of each cell; a column of 2026-03-01 10:00 cells in one pass."""
    if not _all_in_form(cells, _DATETIME_LINES, _DATETIME_FORMS):
        return _cell_by_cell(cells, functools.partial(datetime_cell, tz=tz))
    filled = [v for v in cells if v] if "" in cells else cells
    try:
        naive = list(map(dt.datetime.fromisoformat, filled))
    except ValueError:  # 2026-13-20 10:00: cell by cell, that one SLOW
        return _cell_by_cell(cells, functools.partial(datetime_cell, tz=tz))
    # replace(tzinfo=tz), as parse_datetime does; combine() with the time makes the same
    # datetime for a quarter of the cost (replace parses its keyword argument each call).
    aware = list(map(dt.datetime.combine, naive, map(dt.datetime.time, naive), repeat(tz)))
    if filled is cells:
        return aware
    times = iter(aware)
    return [next(times) if v else None for v in cells]


# --- numbers and flags ----------------------------------------------------------------------


def money_cell(value: Any) -> Any:
    """`RowReader.parse(parse_money)` of a plain amount (1234567): (amount, ""); None for an empty
    cell; else `SLOW`."""
    if value is None or value == "":
        return None
    if value.__class__ is str and value.isascii() and value.isdigit():
        amount = Decimal(value)
        if amount < LIMIT:
            return amount.quantize(CENT), ""
    return SLOW


def moneys(cells: list[Any]) -> list[Any]:
    """`money_cell` of each cell."""
    return _cell_by_cell(cells, money_cell)


def probability_cell(value: Any) -> Any:
    """`RowReader.parse(parse_probability)` of a whole percent written plainly (0 to 100); None
    for an empty cell; else `SLOW`."""
    if value is None or value == "":
        return None
    if value.__class__ is str and value.isascii() and value.isdigit():
        number = int(value)
        if number <= 100:
            return number
    return SLOW


def probabilities(cells: list[Any]) -> list[Any]:
    """`probability_cell` of each cell."""
    return _cell_by_cell(cells, probability_cell)


def bool_cell(value: Any) -> Any:
    """`RowReader.parse(parse_bool)` of a text cell; None for an empty one; else `SLOW`."""
    if value is None or value == "":
        return None
    if value.__class__ is not str:
        return SLOW
    text = value.strip().lower()
    if not text:
        return None
    answer = truth(text)
    return SLOW if answer is None else answer


def bools(cells: list[Any]) -> list[Any]:
    """`bool_cell` of each cell, looked up once per distinct cell."""
    distinct = set(cells)
    if any(value.__class__ is not str for value in distinct):  # see words()
        return _cell_by_cell(cells, bool_cell)
    meaning = {value: bool_cell(value) for value in distinct}
    return list(map(meaning.__getitem__, cells))


def slow_rows(column: list[Any]) -> set[int]:
    """The positions of the `SLOW` cells of a column."""
    return {i for i, value in enumerate(column) if value is SLOW}
