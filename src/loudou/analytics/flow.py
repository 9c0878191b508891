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
from collections import defaultdict
from decimal import Decimal
from typing import Any

from django.utils.translation import gettext as _

from loudou.analytics.scope import narrow
from loudou.analytics.selectors import State, end_of_day, states_at
from loudou.core.errors import ValidationFailed
from loudou.pipeline.models import Opportunity, OpportunityHistory, Status
from loudou.playbooks.models import Playbook

ZERO = Decimal("0.00")

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

    Two queries: the states at the start (as the funnel snapshot reads them) and every history
    row in (start, end] of the deals in scope, walked in Python.
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

    def in_pipeline(status: str, close_date: dt.date) -> bool:
        return status == Status.OPEN and w_from <= close_date <= w_to

    starts: dict[int, State] = {
        s.opportunity_id: s
        for s in states_at(
            user,
            playbook.key,
            start_at,
            branch_ids=branch_ids,
            owner_id=owner_id,
            industry_id=industry_id,
        )
    }
    opps = Opportunity.objects.visible_to(user).filter(
        playbook__key=playbook.key, created_at__lte=end_at
    )
    opps = narrow(opps, branch_ids=branch_ids, owner_id=owner_id, industry_id=industry_id)
    changes: dict[int, list[tuple[str, Decimal, dt.date]]] = defaultdict(list)
    rows = (
        OpportunityHistory.objects.filter(
            opportunity__in=opps.values("pk"), valid_from__gt=start_at, valid_from__lte=end_at
        )
        .order_by("opportunity_id", "valid_from", "id")
        .values_list("opportunity_id", "status", "amount", "close_date")
    )
    for opp_id, status, amount, close_date in rows:
        changes[opp_id].append((status, amount, close_date))

    count = dict.fromkeys(BUCKETS, 0)
    amount = dict.fromkeys(BUCKETS, ZERO)

    def add(bucket: str, value: Decimal) -> None:
        count[bucket] += 1
        amount[bucket] += value

    for opp_id in starts.keys() | changes.keys():
        s = starts.get(opp_id)
        in_start = s is not None and in_pipeline(s.status, s.close_date)
        walk = changes.get(opp_id, [])
        inside = in_start
        entry: Decimal | None = None  # amount when it first came into the pipeline
        exit_: Decimal | None = None  # amount when it last left it
        was_open = s is not None and s.status == Status.OPEN
        for status, value, close_date in walk:
            now_in = in_pipeline(status, close_date)
            if now_in and not inside and entry is None:
                entry = value
            # A deal won early closes inside the window at the moment it is won (winning sets
            # the close date to the win date): it came into the window's pipeline and was won
            # there, so it counts as pulled in (or created) and won, and "won" equals bookings.
            won_here = status == Status.WON and was_open and w_from <= close_date <= w_to
            if won_here and not inside and entry is None:
                entry = value
            was_open = status == Status.OPEN
            if inside and not now_in:
                exit_ = value
            inside = now_in
        if not in_start and entry is None:
            continue  # never in the pipeline during the period
        if in_start:
            assert s is not None
            add("start", s.amount)
            base = s.amount
        else:
            assert entry is not None
            add("created" if s is None else "pulled_in", entry)
            base = entry
        if walk:
            end_status, end_amount, _close = walk[-1]
        else:
            assert s is not None  # in the pipeline at the start and unchanged since
            end_status, end_amount = s.status, s.amount
        if inside:
            add("end", end_amount)
            final = end_amount
        elif end_status == Status.WON:
            add("won", end_amount)
            final = end_amount
        elif end_status == Status.LOST:
            add("lost", end_amount)
            final = end_amount
        else:
            assert exit_ is not None
            add("pushed_out", exit_)
            final = exit_
        amount["amount_change"] += final - base

    result: dict[str, Any] = {
        "from": date_from,
        "to": date_to,
        "window": {"from": w_from, "to": w_to},
    }
    for bucket in BUCKETS:
        result[bucket] = {
            "count": 0 if bucket == "amount_change" else count[bucket],
            "amount": amount[bucket],
        }
    return result


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
