"""What every format's reader turns a file into, before anything is written: deals with their
history in the source's own words (its stage names, its owner names), accounts and contacts, and
the problems found, each pointing at a cell."""

import datetime as dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext as _

from loudou.interop.tables import as_text
from loudou.interop.values import BadValue


@dataclass(frozen=True)
class Problem:
    """One bad cell (or row, when `column` is empty): what a user needs to fix it."""

    sheet: str
    row: int
    column: str
    value: str
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "sheet": self.sheet,
            "row": self.row,
            "column": self.column,
            "value": self.value,
            "reason": self.reason,
        }

    def __str__(self) -> str:
        where = _("%(sheet)s row %(row)s") % {"sheet": self.sheet, "row": self.row}
        if self.column:
            where += f", {self.column}"
        value = f" “{self.value[:80]}”" if self.value else ""
        return f"{where}:{value} {self.reason}"


@dataclass
class DealEvent:
    """From `at` on, the deal was in the source's stage `stage`; `status` is won, lost or open
    when the source says so, "" when the stage mapping decides."""

    at: dt.datetime
    stage: str
    status: str = ""
    amount: Decimal | None = None
    close_date: dt.date | None = None
    row: int = 0  # the history sheet's row it came from, for problems that point at it


@dataclass
class Deal:
    """One opportunity as the source has it."""

    sheet: str
    row: int
    external_id: str
    name: str
    account: str
    owner: str
    stage: str
    amount: Decimal
    currency: str
    close_date: dt.date
    created_at: dt.datetime
    status: str = ""  # won / lost / open when the source says; "" → from the stage mapping
    closed_at: dt.datetime | None = None
    probability: int | None = None
    need: str = ""
    lost_reason: str = ""
    account_external_id: str = ""
    events: list[DealEvent] = field(default_factory=list)


@dataclass
class AccountRow:
    """An account of a native file."""

    sheet: str
    row: int
    external_id: str
    name: str
    owner: str
    fields: dict[str, Any]
    parent: str = ""


@dataclass
class ContactRow:
    """A contact of a native file."""

    sheet: str
    row: int
    external_id: str
    account: str
    fields: dict[str, Any]


@dataclass
class Parsed:
    """A whole file read: what it holds and what is wrong with it. `stage_hints` are the source's
    stage names with a probability (the file's average, or the CRM's default) for the automatic
    stage mapping, in the order the source lists its stages."""

    source: str
    deals: list[Deal] = field(default_factory=list)
    accounts: list[AccountRow] = field(default_factory=list)
    contacts: list[ContactRow] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    stage_hints: dict[str, int | None] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # Ids of deal rows left out for their problems: their history rows are no orphans to report.
    refused_ids: set[str] = field(default_factory=set)


class RowReader:
    """Reads the cells of one row by our field names (`cells`: field → value, as
    `Sheet.fields(columns)` gives them; `columns` names each field's header for the problems),
    collecting a Problem for each bad cell instead of stopping at the first."""

    def __init__(
        self, parsed: Parsed, sheet: str, row: int, cells: dict[str, Any], columns: dict[str, str]
    ) -> None:
        self.parsed, self.sheet, self.row = parsed, sheet, row
        self.cells, self.columns = cells, columns
        self.ok = True

    def raw(self, key: str) -> Any:
        return self.cells.get(key)

    def text(self, key: str, *, required: bool = False, limit: int = 0) -> str:
        value = as_text(self.raw(key))
        if required and not value:
            self.problem(key, value, _("required"))
        if limit and len(value) > limit:
            self.problem(key, value, _("longer than %(n)s characters") % {"n": limit})
        return value

    def parse(self, key: str, parser: Any, *, required: bool = False, **options: Any) -> Any:
        value = self.cells.get(key)
        if value is None or value == "":  # an absent column or empty cell: nothing to parse
            if required:
                self.problem(key, value, _("required"))
            return None
        try:
            result = parser(value, **options)
        except BadValue as exc:
            self.problem(key, value, str(exc))
            return None
        empty = result is None or (isinstance(result, tuple) and result[0] is None)
        if required and empty:
            self.problem(key, value, _("required"))
        return result

    def problem(self, key: str, value: Any, reason: str) -> None:
        self.ok = False
        self.parsed.problems.append(
            Problem(self.sheet, self.row, self.columns.get(key, key), as_text(value), reason)
        )
