"""What the format readers share: finding our fields among the file's column headers, and reading
a sheet of deals (and a sheet of history) through a column map into `Deal`s, one Problem per bad
cell. Sheets are read a column at a time (`interop.columns`) where a format adds no per-row
reading of its own, and the rows with a cell in another form, or a bad one, row by row."""

import hashlib
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _

from loudou.interop import columns as col
from loudou.interop.records import Deal, DealEvent, Parsed, Problem, RowReader
from loudou.interop.tables import Sheet
from loudou.interop.values import (
    parse_bool,
    parse_date,
    parse_datetime,
    parse_money,
    parse_probability,
)

Aliases = dict[str, tuple[str, ...]]


def norm_header(header: str) -> str:
    """A header compared without case, spaces, quotes or punctuation."""
    return re.sub(r"[\s\"'“”‘’().:_/\-—（）：]+", "", header).lower()


def match_columns(
    headers: list[str], aliases: Aliases, overrides: dict[str, str] | None = None
) -> dict[str, str]:
    """Our field → the file's header, from the mapping file's `columns` first, then the first alias
    present (compared with `norm_header`)."""
    by_norm: dict[str, str] = {}
    for header in headers:
        by_norm.setdefault(norm_header(header), header)
    found: dict[str, str] = {}
    for key, header in (overrides or {}).items():
        if header in headers:
            found[key] = header
        elif norm_header(header) in by_norm:
            found[key] = by_norm[norm_header(header)]
    for key, names in aliases.items():
        if key in found:
            continue
        for name in names:
            if norm_header(name) in by_norm:
                found[key] = by_norm[norm_header(name)]
                break
    return found


def sheet_score(headers: list[str], aliases: Aliases, keys: tuple[str, ...]) -> int:
    """How many of `keys` the sheet has columns for (to tell a file's sheets apart)."""
    columns = match_columns(headers, aliases)
    return sum(1 for k in keys if k in columns)


def require_columns(
    parsed: Parsed, sheet: Sheet, columns: dict[str, str], aliases: Aliases, keys: tuple[str, ...]
) -> bool:
    """A problem for each required field the sheet has no column for; True when all are there."""
    missing = [k for k in keys if k not in columns]
    for key in missing:
        parsed.problems.append(
            Problem(
                sheet.name,
                1,
                aliases[key][0],
                "",
                _("no column for this (looked for: %(names)s); name it in the mapping file's "
                  "columns") % {"names": ", ".join(aliases[key][:4])},
            )
        )  # fmt: skip
    return not missing


def fallback_id(*parts: str) -> str:
    """An id for a row whose file has no id column: the same account and deal name give the same
    id on the next import, so it updates instead of duplicating."""
    return (
        "h:" + hashlib.sha1("\x1f".join(p.strip().lower() for p in parts).encode()).hexdigest()[:20]
    )


@dataclass
class DealOptions:
    """How to read the values of a file: --dayfirst, and the date of the export for deals that
    carry no creation date."""

    dayfirst: bool = False
    tz: Any = None  # the time zone of times without one (default: the current one)

    def __post_init__(self) -> None:
        if self.tz is None:
            self.tz = timezone.get_current_timezone()


def status_from_flags(won: bool | None, closed: bool | None) -> str:
    """won / lost / open from the IsWon / IsClosed columns (Salesforce, HubSpot); "" if absent."""
    if closed is None and won is None:
        return ""
    if won:
        return "won"
    if closed:
        return "lost"
    return "open"


def read_deals(
    parsed: Parsed,
    sheet: Sheet,
    columns: dict[str, str],
    options: DealOptions,
    *,
    extra: Callable[[RowReader, Deal], None] | None = None,
    statuses: dict[str, str] | None = None,
) -> None:
    """Read every row of a deals sheet into `parsed.deals` (or problems), through `columns`
    (our field → header). `statuses` reads a status column written in words (its cells, lower
    case → won / lost / open; another word is a problem); `extra` reads what a format adds
    (history columns, …).

    Without `extra`, the sheet is read a column at a time (`interop.columns`), and only the rows
    with a cell those readers leave (another form, a bad cell) row by row, in their order among
    the others: the same deals and the same problems, in the same order, as reading every row."""
    probabilities: dict[str, list[int]] = defaultdict(list)
    numbers, cells = sheet.columns(columns)
    fast = _DealColumns(cells, len(numbers), columns, options, statuses) if extra is None else None
    for index, number in enumerate(numbers):
        if fast is not None and index not in fast.slow:
            deal = fast.deal(index, sheet.name, number)
            stage, probability = deal.stage, deal.probability
        else:
            row = {key: column[index] for key, column in cells.items()}
            read = _read_deal(parsed, sheet, number, row, columns, options, extra, statuses)
            if read is None:
                continue
            deal, stage, probability = read
        # A closed deal's 0 or 100 says how it ended (Odoo, Salesforce and HubSpot set it when a
        # deal is lost or won), not its stage's probability: one lost deal at 0 % pulled a 70 %
        # stage's average down to 35 % and the automatic mapping to the wrong stage.
        ended = deal.status in ("won", "lost") and probability in (0, 100)
        if stage and probability is not None and not ended:
            probabilities[stage].append(probability)
        parsed.deals.append(deal)
    for stage, values in probabilities.items():
        if parsed.stage_hints.get(stage) is None:
            parsed.stage_hints[stage] = round(sum(values) / len(values))


def _read_deal(
    parsed: Parsed,
    sheet: Sheet,
    number: int,
    cells: dict[str, Any],
    columns: dict[str, str],
    options: DealOptions,
    extra: Callable[[RowReader, Deal], None] | None,
    statuses: dict[str, str] | None,
) -> tuple[Deal, str, int | None] | None:
    """One row of a deals sheet read cell by cell: (the deal, the stage and probability its cells
    say, before `extra`), or None when a cell is bad (each bad cell is a problem)."""
    r = RowReader(parsed, sheet.name, number, cells, columns)
    name = r.text("name", required=True, limit=200)
    account = r.text("account", required=True, limit=200)
    owner = r.text("owner")
    stage = r.text("stage")
    amount, currency = r.parse("amount", parse_money) or (None, "")
    if "currency" in columns:
        currency = r.text("currency").upper() or currency
    close = r.parse("close_date", parse_date, dayfirst=options.dayfirst)
    created = r.parse("created_at", parse_datetime, dayfirst=options.dayfirst, tz=options.tz)
    closed_at = r.parse("closed_at", parse_datetime, dayfirst=options.dayfirst, tz=options.tz)
    probability = r.parse("probability", parse_probability)
    won = r.parse("is_won", parse_bool)
    closed = r.parse("is_closed", parse_bool)
    external_id = r.text("external_id") or fallback_id(account, name)
    if not stage and "status" not in columns and won is None:
        r.problem("stage", "", _("required"))
    if created is None and close is None and closed_at is None:
        r.problem("created_at", "", _("no creation date, close date or closing date"))
    if not r.ok:
        parsed.refused_ids.add(external_id)
        return None
    created = created or closed_at or parse_datetime(close, tz=options.tz)
    deal = Deal(
        sheet=sheet.name,
        row=number,
        external_id=external_id,
        name=name,
        account=account,
        owner=owner,
        stage=stage,
        # A Decimal with cents like the stored amount: an int 0 made every re-import of a
        # deal without an amount look like a change (an update and a version bump each time).
        amount=amount if amount is not None else Decimal("0.00"),
        currency=currency,
        close_date=close or (closed_at or created).date(),  # type: ignore[union-attr]
        created_at=created,  # type: ignore[arg-type]  # set above when a date is there
        status=status_from_flags(won, closed),
        closed_at=closed_at,
        probability=probability,
        need=r.text("need"),
        lost_reason=r.text("lost_reason"),
    )
    if statuses is not None:
        # After the other cells, as a format's `extra` reads: a row with a bad amount and a bad
        # status reports the amount.
        value = r.text("status").strip().lower()
        if value not in statuses:
            # The cell as written, not lower-cased, so the user can find it.
            r.problem("status", r.raw("status"), _("must be open, won or lost"))
        deal.status = statuses.get(value, "")
    if extra is not None and r.ok:
        extra(r, deal)
    if not r.ok:
        parsed.refused_ids.add(external_id)
        return None
    return deal, stage, probability


class _DealColumns:
    """A deals sheet read a column at a time: each field's values (`interop.columns`), and `slow`,
    the rows `_read_deal` must read because a cell is not in a form read here or the row would
    have a problem. Every other row gives the deal `_read_deal` would give."""

    def __init__(
        self,
        cells: dict[str, list[Any]],
        rows: int,
        columns: dict[str, str],
        options: DealOptions,
        statuses: dict[str, str] | None,
    ) -> None:
        absent = [None] * rows  # a field without a column: what RowReader reads for it
        no_text = [""] * rows

        def read(key: str, reader: Callable[..., list[Any]], empty: list[Any], **kw: Any) -> Any:
            if key not in cells:
                return empty
            values = reader(cells[key], **kw)
            self.slow |= col.slow_rows(values) if col.SLOW in values else set()
            return values

        self.slow: set[int] = set()
        self.names = read("name", col.texts, no_text, required=True, limit=200)
        self.accounts = read("account", col.texts, no_text, required=True, limit=200)
        self.owners = read("owner", col.texts, no_text)
        self.stages = read("stage", col.texts, no_text)
        self.amounts = read("amount", col.moneys, absent)
        self.currencies = read("currency", col.texts, no_text)
        self.closes = read("close_date", col.dates, absent)
        self.created = read("created_at", col.datetimes, absent, tz=options.tz)
        self.closed_at = read("closed_at", col.datetimes, absent, tz=options.tz)
        self.probabilities = read("probability", col.probabilities, absent)
        self.won = read("is_won", col.bools, absent)
        self.closed = read("is_closed", col.bools, absent)
        self.external_ids = read("external_id", col.texts, no_text)
        self.needs = read("need", col.texts, no_text)
        self.lost_reasons = read("lost_reason", col.texts, no_text)
        self.statuses = (
            read("status", col.words, no_text, allowed=statuses) if statuses is not None else None
        )
        self.has_currency = "currency" in columns
        self.tz = options.tz
        # The checks across cells of a row, as _read_deal makes them: such a row is read there.
        stage_needed = "status" not in columns
        each = zip(self.stages, self.won, self.created, self.closes, self.closed_at, strict=True)
        for index, (stage, won, created, close, closed_at) in enumerate(each):
            if (stage_needed and not stage and won is None) or (
                created is None and close is None and closed_at is None
            ):
                self.slow.add(index)

    def deal(self, index: int, sheet: str, number: int) -> Deal:
        """The deal of row `index` (not in `slow`), as `_read_deal` reads it."""
        name, account = self.names[index], self.accounts[index]
        money = self.amounts[index]
        amount, currency = money if money is not None else (None, "")
        if self.has_currency:
            currency = self.currencies[index].upper() or currency
        close, created, closed_at = self.closes[index], self.created[index], self.closed_at[index]
        if created is None:
            created = closed_at or parse_datetime(close, tz=self.tz)
        return Deal(
            sheet=sheet,
            row=number,
            external_id=self.external_ids[index] or fallback_id(account, name),
            name=name,
            account=account,
            owner=self.owners[index],
            stage=self.stages[index],
            amount=amount if amount is not None else Decimal("0.00"),
            currency=currency,
            close_date=close or (closed_at or created).date(),
            created_at=created,
            status=(
                self.statuses[index]
                if self.statuses is not None
                else status_from_flags(self.won[index], self.closed[index])
            ),
            closed_at=closed_at,
            probability=self.probabilities[index],
            need=self.needs[index],
            lost_reason=self.lost_reasons[index],
        )


class _EventColumns:
    """A history sheet read a column at a time (see `_DealColumns`): `slow` are the rows
    `history_events` reads cell by cell."""

    def __init__(self, cells: dict[str, list[Any]], rows: int, options: DealOptions) -> None:
        self.slow: set[int] = set()
        required = [col.SLOW] * rows  # a required field without a column: every row a problem

        def read(key: str, reader: Callable[..., list[Any]], empty: list[Any], **kw: Any) -> Any:
            values = reader(cells[key], **kw) if key in cells else empty
            if col.SLOW in values:
                self.slow |= col.slow_rows(values)
            return values

        self.deal_ids = read("deal_id", col.texts, required, required=True)
        self.ats = read("at", col.datetimes, required, tz=options.tz)
        self.stages = read("stage", col.texts, required, required=True)
        amounts = read("amount", col.moneys, [None] * rows)
        # The amount of (amount, currency); a currency sign in a history row is not read.
        self.amounts = [a[0] if a is not None and a is not col.SLOW else a for a in amounts]
        self.closes = read("close_date", col.dates, [None] * rows)
        self.statuses = read("status", col.words, [""] * rows, allowed=HISTORY_STATUSES)
        if None in self.ats:  # an empty time: "required", reported row by row
            self.slow.update(i for i, at in enumerate(self.ats) if at is None)

    def event(self, index: int, number: int) -> tuple[str, DealEvent]:
        """(deal id, event) of row `index` (not in `slow`), as `history_events` reads it."""
        return self.deal_ids[index], DealEvent(
            self.ats[index],
            self.stages[index],
            self.statuses[index],
            self.amounts[index],
            self.closes[index],
            number,
        )

    def events(self, numbers: list[int]) -> Iterator[DealEvent]:
        """The event of every row, when no row is in `slow`."""
        return map(
            DealEvent, self.ats, self.stages, self.statuses, self.amounts, self.closes, numbers
        )


# The history sheet's status words (the template's Chinese sheet says 进行中 / 赢单 / 输单, as its
# deals sheet does).
HISTORY_STATUSES = {"": "", "open": "open", "won": "won", "lost": "lost", "进行中": "open",
                    "赢单": "won", "输单": "lost"}  # fmt: skip


def history_events(
    parsed: Parsed,
    sheet: Sheet,
    columns: dict[str, str],
    options: DealOptions,
) -> dict[str, list[DealEvent]]:
    """A history sheet (one row per change: deal id, time, stage, and optionally amount and close
    date) as events per deal id. Read a column at a time, and the rows with a cell those readers
    leave row by row, in their order (see `read_deals`)."""
    events: dict[str, list[DealEvent]] = defaultdict(list)
    numbers, cells = sheet.columns(columns)
    fast = _EventColumns(cells, len(numbers), options)
    if not fast.slow:  # every row read at once (the usual case): no test per row
        for deal_id, event in zip(fast.deal_ids, fast.events(numbers), strict=True):
            events[deal_id].append(event)
        return events
    for index, number in enumerate(numbers):
        if index not in fast.slow:
            deal_id, event = fast.event(index, number)
            events[deal_id].append(event)
            continue
        r = RowReader(parsed, sheet.name, number, {k: v[index] for k, v in cells.items()}, columns)
        deal_id = r.text("deal_id", required=True)
        at = r.parse("at", parse_datetime, required=True, dayfirst=options.dayfirst, tz=options.tz)
        stage = r.text("stage", required=True)
        amount = (r.parse("amount", parse_money) or (None, ""))[0]
        close = r.parse("close_date", parse_date, dayfirst=options.dayfirst)
        status = r.text("status").lower()
        status = HISTORY_STATUSES.get(status, status)
        if status and status not in ("open", "won", "lost"):
            r.problem("status", r.raw("status"), _("must be open, won or lost"))
        if r.ok:
            events[deal_id].append(DealEvent(at, stage, status, amount, close, row=number))
    return events


def attach_history(
    parsed: Parsed, events: dict[str, list[DealEvent]], sheet: str, column: str = ""
) -> None:
    """Give each deal its events; each event of a deal the file does not have is a problem at its
    own row (`column` is the history sheet's deal id header)."""
    by_id = {d.external_id: d for d in parsed.deals}
    for deal_id, found in events.items():
        deal = by_id.get(deal_id)
        if deal is None and deal_id in parsed.refused_ids:
            continue  # its deal's row is reported: "a deal the file does not have" would be false
        if deal is None:
            # Row 0 and no column told the user nothing to find: name every row of it.
            parsed.problems.extend(
                Problem(
                    sheet, e.row, column, deal_id, _("history of a deal the file does not have")
                )
                for e in found
            )
            continue
        deal.events.extend(found)


def no_sheet(sheets: list[Sheet], what: str) -> Problem:
    """The problem of a file without the sheet a format needs."""
    return Problem(
        sheets[0].name if sheets else "", 1, "", "", _("no %(w)s sheet in the file") % {"w": what}
    )
