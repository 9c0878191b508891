"""The pipeline flow (waterfall) between two dates: how the open pipeline for a close window got
from what it was when the period began to what it was when it ended.

Definitions, in a sales director's words (docs/analytics-flow.md has a worked example):

- **Close window** W: the expected close dates we are looking at. By default the period itself
  ([from, to]: the deals expected to close in the period); `window_from` / `window_to` change it.
- **The pipeline at a moment**: the open deals in scope whose expected close date, as it was
  recorded at that moment, falls in W. Each deal is read from its history (its latest history row
  at that moment), never from its current fields.
- **Start**: the pipeline when `from` began (00:00 local time; every change up to the end of the
  day before counts, every change from 00:00 on `from` is in the period). **End**: the pipeline at
  the end of `to` (23:59:59.999999 local time).

Each deal in scope is classified by its state at the start (S) and at the end (E):

- in the pipeline at both: its amount change E − S goes to **amount change**; in count it adds
  nothing (it is one deal at the start and one at the end).
- in at the start, out at the end: **won** if it is won at the end, **lost** if it is lost at the
  end, otherwise (still open, close date moved out of W, usually later) **pushed out**. Won and
  lost deals are valued at the amount they were won or lost at; a pushed-out deal at its amount
  when it was (last) moved out of the pipeline. The difference from S goes to amount change.
- out at the start, in at the end: **created** if the deal did not exist at the start, otherwise
  **pulled in** (it existed but its close date was outside W, or it was lost or won, and it came
  into the pipeline: close date moved into W, or reopened). Valued at its amount when it (first)
  came into the pipeline during the period; E minus that goes to amount change.
- out at both ends but in the pipeline at some moment during the period (e.g. created and won
  within it): counted twice, in created or pulled in when it first came in and in won, lost or
  pushed out by its state at the end, valued as above; the difference goes to amount change.
- never in the pipeline during the period: ignored.

Only the two ends matter for a deal that is in the pipeline at both: if it was lost and reopened,
or pushed out and pulled back in between, it is simply an amount change. Between the first entry
and the last exit, likewise, everything in between is an amount change.

Then, exactly, in amount and in count (each bucket counts deals; amount change counts none):

    end = start + created + pulled in − pushed out + amount change − won − lost

Scope (visibility, playbook, branch, owner) is decided by the deal as it is now, as in the
funnel snapshot; amounts are summed as they are recorded, whatever their currency.
"""

import datetime as dt
from decimal import Decimal
from typing import Any

import numpy as np
import numpy.typing as npt
from django.db.models import Count
from django.utils.translation import gettext as _

from loudou.analytics.models import OPEN_ENDED
from loudou.analytics.rows import Text, columns
from loudou.analytics.selectors import began_by, cents_sum, end_of_day, open_now, scoped_spans
from loudou.core.errors import ValidationFailed
from loudou.pipeline.models import Status
from loudou.playbooks.models import Playbook

#: The buckets in the order of the waterfall.
BUCKETS = ("start", "created", "pulled_in", "pushed_out", "amount_change", "won", "lost", "end")


def start_of_day(day: dt.date) -> dt.datetime:
    """The pipeline "at the start of `day`": the state after every change up to the end of the
    day before (a change at 00:00:00 on `day` already belongs to `day`)."""
    return end_of_day(day - dt.timedelta(days=1))


def pipeline_flow(
    user: Any,
    playbook: Playbook,
    *,
    date_from: dt.date,
    date_to: dt.date,
    window_from: dt.date | None = None,
    window_to: dt.date | None = None,
    branch_ids: set[int] | None = None,
    owner_id: int | None = None,
    industry_id: int | None = None,
) -> dict[str, Any]:
    """The waterfall of the pipeline closing in [window_from, window_to] (default [date_from,
    date_to]) from the start of `date_from` to the end of `date_to`; see the module docstring for
    the exact definitions. Amounts are Decimal (exact sums), dates are dates; every bucket is
    {"count", "amount"} with a positive amount except amount_change, which carries its sign and
    a count of 0.

    Four queries over the state spans (the history rows with the moment each was replaced): the
    count and sum of the deals in the pipeline at the start and unchanged to the end, summed in
    SQL (two index ranges); and, for every deal that changed during the period, its state at
    the start and its history rows in (start, end] (two more), read as numpy columns and walked
    vectorised, in whole cents.
    """
    if date_to < date_from:
        raise ValidationFailed(
            _("The period ends (%(to)s) before it starts (%(from)s).")
            % {"to": date_to.isoformat(), "from": date_from.isoformat()},
            details={"to": "before_from"},
        )
    w_from = window_from or date_from
    w_to = window_to or date_to
    if w_to < w_from:
        raise ValidationFailed(
            _("The close window ends (%(to)s) before it starts (%(from)s).")
            % {"to": w_to.isoformat(), "from": w_from.isoformat()},
            details={"window_to": "before_window_from"},
        )
    start_at, end_at = start_of_day(date_from), end_of_day(date_to)

    scoped = scoped_spans(
        user, playbook.key, branch_ids=branch_ids, owner_id=owner_id, industry_id=industry_id
    )
    # Deals in the pipeline at the start and unchanged until after the end: the same at both
    # ends, so only their count and sum are needed (most of the pipeline, summed in SQL). Two
    # sums, each a short range of an index: the open spans still in force (the window's close
    # dates in `span_open_now`), and the open spans that ended after the period (`span_in_force`).
    count = dict.fromkeys(BUCKETS, 0)
    amount = dict.fromkeys(BUCKETS, 0)  # in cents until the end
    # (Each sum names its own range of valid_to: given a wider one too, SQLite scans that.)
    unchanged = scoped.filter(
        began_by(start_at),
        status=Status.OPEN,
        close_date__gte=w_from,
        close_date__lte=w_to,
    )
    for steady in (
        unchanged.filter(open_now()),
        unchanged.filter(valid_to__gt=end_at, valid_to__lt=OPEN_ENDED),
    ):
        sums = steady.aggregate(deals=Count("*"), cents=cents_sum("amount"))
        for bucket in ("start", "end"):
            count[bucket] += sums["deals"]
            amount[bucket] += sums["cents"] or 0
    # Every other deal that existed during the period changed in it: its span at the start (the
    # one ending inside the period; a range of `span_in_force`) and its spans starting inside it
    # (a range of `span_started`, which hands them over in order of valid_from).
    at_start = scoped.filter(began_by(start_at), valid_to__gt=start_at, valid_to__lte=end_at)
    started = scoped.filter(valid_from__gt=start_at, valid_from__lte=end_at)
    _walk(at_start, started, w_from, w_to, count, amount)
    result: dict[str, Any] = {
        "from": date_from,
        "to": date_to,
        "window": {"from": w_from, "to": w_to},
    }
    for bucket in BUCKETS:
        result[bucket] = {
            "count": 0 if bucket == "amount_change" else count[bucket],
            "amount": Decimal(int(amount[bucket])).scaleb(-2),
        }
    return result


_OPEN, _WON, _LOST = 0, 1, 2


def _walk(
    at_start: Any,
    started: Any,
    w_from: dt.date,
    w_to: dt.date,
    count: dict[str, int],
    amount: dict[str, int],
) -> None:
    """Classify the deals that changed during the period into the buckets, adding to `count` and
    `amount` (cents): `at_start`, the span in force at the start of each such deal that existed
    then; `started`, every span starting in the period.

    The walk of the module docstring, vectorised over the spans in (deal, valid_from, id) order:
    each span is compared with the one before it of the same deal (the span at the start comes
    first; a deal created in the period starts outside the pipeline)."""
    # Plain columns, decoded in numpy: an expression per row (a status code, a cents amount)
    # cost SQLite more than reading the row.
    first_deal, first_status, first_cents, first_close = columns(
        at_start, "opportunity_id", Text("status"), "amount", "close_date"
    )
    deal, valid_from, status, cents, close = columns(
        started, "opportunity_id", "valid_from", Text("status"), "amount", "close_date"
    )
    if not first_deal.size and not deal.size:
        return
    order = _by_deal(first_deal, deal, valid_from)
    if order is None:
        # Two spans of one deal start at the same moment: their ids decide, as in history. Read
        # again with the ids in the same query (two queries need not return rows in one order).
        deal, valid_from, status, cents, close, row_id = columns(
            started, "opportunity_id", "valid_from", Text("status"), "amount", "close_date", "id"
        )
        order = _by_deal(first_deal, deal, valid_from, row_id)
        assert order is not None  # with the ids, every tie is broken
    deal = np.concatenate((first_deal, deal))[order]
    text = np.concatenate((first_status, status))[order]
    status = np.where(
        text == Status.OPEN.encode(), _OPEN, np.where(text == Status.WON.encode(), _WON, _LOST)
    )
    cents = np.concatenate((first_cents, cents))[order]
    close = np.concatenate((first_close, close))[order]
    window = (close >= np.datetime64(w_from, "D")) & (close <= np.datetime64(w_to, "D"))
    at_start = order < first_deal.size
    is_open = status == _OPEN
    now_in = is_open & window
    first = np.r_[True, deal[1:] != deal[:-1]]  # the deal's first span
    starts = np.flatnonzero(first)
    last = np.r_[starts[1:], deal.size] - 1
    # The state before each span: the deal's previous span, or outside for its first one.
    inside_before = np.r_[False, now_in[:-1]] & ~first
    open_before = np.r_[False, is_open[:-1]] & ~first
    change = ~at_start
    # A deal won early closes inside the window at the moment it is won (winning sets the close
    # date to the win date): it came into the window's pipeline and was won there, so it counts
    # as pulled in (or created) and won, and "won" equals bookings.
    won_here = (status == _WON) & open_before & window
    comes_in = change & ~inside_before & (now_in | won_here)
    goes_out = change & inside_before & ~now_in
    index = np.arange(deal.size)
    entry = np.minimum.reduceat(np.where(comes_in, index, deal.size), starts)  # first, per deal
    exit_ = np.maximum.reduceat(np.where(goes_out, index, -1), starts)  # last, per deal
    existed = at_start[starts]
    in_start = existed & now_in[starts]
    has_entry = entry < deal.size
    counted = in_start | has_entry  # the others were never in the pipeline during the period
    base = np.where(in_start, cents[starts], cents[np.minimum(entry, deal.size - 1)])
    inside_end, end_status, end_cents = now_in[last], status[last], cents[last]
    final = np.where(inside_end | (end_status != _OPEN), end_cents, cents[np.maximum(exit_, 0)])

    def add(bucket: str, mask: Any, values: Any) -> None:
        count[bucket] += int(mask.sum())
        amount[bucket] += int(values[mask].sum())

    add("start", counted & in_start, base)
    add("created", counted & ~in_start & ~existed, base)
    add("pulled_in", counted & ~in_start & existed, base)
    add("end", counted & inside_end, final)
    add("won", counted & ~inside_end & (end_status == _WON), final)
    add("lost", counted & ~inside_end & (end_status == _LOST), final)
    add("pushed_out", counted & ~inside_end & (end_status == _OPEN), final)
    amount["amount_change"] += int((final - base)[counted].sum())


def _by_deal(
    first_deal: npt.NDArray[np.int64],
    deal: npt.NDArray[np.int64],
    valid_from: npt.NDArray[np.datetime64],
    row_id: npt.NDArray[np.int64] | None = None,
) -> npt.NDArray[np.intp] | None:
    """The order (deal, valid_from, id) of the spans at the start (`first_deal`; one per deal,
    each before every span starting in the period) followed by the spans starting in the period
    (`deal`, `valid_from` and, when known, `row_id`). None when two spans of one deal start at
    the same moment and `row_id` was not given.

    The index hands the spans starting in the period over in order of valid_from, so a sort by
    deal that keeps that order usually gives the order wanted; it is checked (each deal's spans
    in increasing valid_from), and the rows are sorted on every key when it does not hold
    (several playbook versions, or a database that read them in another order)."""
    deals = np.concatenate((first_deal, deal))
    size = deals.size
    if size and int(deals.max()) < np.iinfo(np.int64).max // size - 1 and deals.min() >= 0:
        # Sorting the keys deal × size + position and taking the positions back keeps the order
        # within a deal, and costs a fifth of a stable argsort.
        keys = np.sort(deals * size + np.arange(size))
        order, by_deal = keys % size, keys // size
    else:
        order = np.argsort(deals, kind="stable")
        by_deal = deals[order]
    same = by_deal[1:] == by_deal[:-1]
    starts = np.full(first_deal.size, np.datetime64(np.iinfo(np.int64).min + 1, "us"))
    moments = np.concatenate((starts, valid_from))
    ids = np.concatenate((np.full(first_deal.size, -1), row_id)) if row_id is not None else None
    for attempt in range(2):
        ordered = moments[order]
        before, after = ordered[:-1][same], ordered[1:][same]
        if ids is None:
            if (before < after).all():
                return order
            if attempt or (before <= after).all():
                return None  # in order, but with a tie
            order = np.lexsort((moments, deals))  # still by deal: `same` holds
        else:
            first, then = ids[order][:-1][same], ids[order][1:][same]
            if ((before < after) | ((before == after) & (first < then))).all():
                return order
            order = np.lexsort((ids, moments, deals))
    raise AssertionError("a sort left the spans out of order")


def flow_balances(flow: dict[str, Any]) -> bool:
    """Whether end = start + created + pulled_in − pushed_out + amount_change − won − lost holds,
    in count and in amount (Decimal amounts or their strings)."""
    for key in ("count", "amount"):
        v = {b: Decimal(str(flow[b][key])) for b in BUCKETS}
        total = (
            v["start"]
            + v["created"]
            + v["pulled_in"]
            - v["pushed_out"]
            + v["amount_change"]
            - v["won"]
            - v["lost"]
        )
        if total != v["end"]:
            return False
    return True
