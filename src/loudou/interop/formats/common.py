"""What the format readers share: finding our fields among the file's column headers, and reading
a sheet of deals through a column map into `Deal`s, one Problem per bad cell."""

import hashlib
import re
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.utils import timezone
from django.utils.translation import gettext as _

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
) -> None:
    """Read every row of a deals sheet into `parsed.deals` (or problems), through `columns`
    (our field → header). `extra` reads what a format adds (status, history columns, …)."""
    probabilities: dict[str, list[int]] = defaultdict(list)
    for number, cells in sheet.fields(columns):
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
            continue
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
        if extra is not None:
            extra(r, deal)
            if not r.ok:
                parsed.refused_ids.add(external_id)
                continue
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


def history_events(
    parsed: Parsed,
    sheet: Sheet,
    columns: dict[str, str],
    options: DealOptions,
) -> dict[str, list[DealEvent]]:
    """A history sheet (one row per change: deal id, time, stage, and optionally amount and close
    date) as events per deal id."""
    events: dict[str, list[DealEvent]] = defaultdict(list)
    for number, cells in sheet.fields(columns):
        r = RowReader(parsed, sheet.name, number, cells, columns)
        deal_id = r.text("deal_id", required=True)
        at = r.parse("at", parse_datetime, required=True, dayfirst=options.dayfirst, tz=options.tz)
        stage = r.text("stage", required=True)
        amount = (r.parse("amount", parse_money) or (None, ""))[0]
        close = r.parse("close_date", parse_date, dayfirst=options.dayfirst)
        # The template's Chinese history sheet says 进行中 / 赢单 / 输单, as its deals sheet does.
        status = r.text("status").lower()
        status = {"进行中": "open", "赢单": "won", "输单": "lost"}.get(status, status)
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
