"""Reads for "My dashboard" and the funnel page's stage drill-down.

The dashboard answers a seller's (or a manager's, for their branches) morning questions: what is
open in each stage and what each deal needs next, which activities are overdue, which key dates
come soon, which deals stall, which 立项 requests wait, and where the month and the quarter stand
against the target. Every figure comes from the selectors the rest of loudou uses (the board's
columns and cards, `velocity.stalled`, the forecast's `period_weighted` and `scope_target`), so the
dashboard never disagrees with the board, `loudou stalled` or `loudou targets`.

Each read costs a fixed number of queries, whatever the number of deals.
"""

import datetime as dt
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django.db.models import Q

from loudou.analytics.forecast import Period, parse_period, period_weighted, scope_target
from loudou.analytics.scope import Scope
from loudou.analytics.selectors import end_of_day, states_at
from loudou.analytics.velocity import stalled
from loudou.core import clock
from loudou.org.access import managed_branch_ids
from loudou.org.models import User
from loudou.pipeline.board import BoardFilters, Card, Column, board_columns
from loudou.pipeline.gates import CriterionState, criteria_states
from loudou.pipeline.models import Activity, KeyDate, Opportunity, Status
from loudou.pipeline.selectors import approvals_waiting_for
from loudou.playbooks.models import Playbook

MINE = "mine"
BRANCH = "branch"
DEALS_PER_STAGE = 10
DEALS_PER_STAGE_BRANCH = 5
SHOWN_MISSING = 2
LIST_LIMIT = 15
KEY_DATE_DAYS = 30


# --- whose numbers ---------------------------------------------------------------------------


@dataclass
class DashboardScope:
    """Whose deals the dashboard shows: the user's own ("mine"), or those of the branches the
    user manages ("branch"; every branch for executives and administrators)."""

    user: Any
    playbook: Playbook
    view: str
    branch_ids: set[int] | None = None

    @property
    def can_switch(self) -> bool:
        """Managers, executives and administrators may look at their branch as well as their own
        deals; a seller has only their own."""
        return managed_branch_ids(self.user) != set()

    @property
    def analytics(self) -> Scope:
        """The same question as an analytics Scope (what `loudou stalled`/`targets` take)."""
        if self.view == MINE:
            return Scope(actor=self.user, playbook=self.playbook, owner_id=self.user.pk)
        return Scope(actor=self.user, playbook=self.playbook, branch_ids=self.branch_ids)

    @property
    def board_filters(self) -> BoardFilters:
        """The board's filters that show the same deals (for links "see all on the board")."""
        if self.view == MINE:
            return BoardFilters(owner_id=self.user.pk)
        branch_id = self.user.branch_id if self.branch_ids is not None else None
        return BoardFilters(branch_id=branch_id)

    def open_deals(self) -> Any:
        """The open deals in view, of any playbook: activities and key dates are to-dos, whatever
        the playbook their deal follows."""
        qs = Opportunity.objects.visible_to(self.user).filter(status=Status.OPEN)
        if self.view == MINE:
            return qs.filter(owner_id=self.user.pk)
        if self.branch_ids is not None:
            return qs.filter(branch_id__in=self.branch_ids)
        return qs


def dashboard_scope(user: Any, playbook: Playbook, view: str | None) -> DashboardScope:
    """The dashboard's scope for `view` ("mine" or "branch"). Managers and executives default to
    their branch, sellers always see their own deals."""
    managed = managed_branch_ids(user)
    if managed == set() or view == MINE:
        return DashboardScope(user=user, playbook=playbook, view=MINE)
    return DashboardScope(user=user, playbook=playbook, view=BRANCH, branch_ids=managed)


# --- pipeline by stage, and what each deal needs next --------------------------------------


@dataclass
class DealNeeds:
    """A deal's card (gate progress, days in stage, stalled mark) and the required criteria of its
    next stage that do not hold yet."""

    card: Card
    missing: list[CriterionState] = field(default_factory=list)

    @property
    def first_missing(self) -> list[CriterionState]:
        """The first missing criteria, in the stage's order (the rest fold away)."""
        return self.missing[:SHOWN_MISSING]

    @property
    def more_missing(self) -> list[CriterionState]:
        return self.missing[SHOWN_MISSING:]


@dataclass
class StageGroup:
    """One open stage: its count and amounts over every deal in view, and the first deals."""

    column: Column
    deals: list[DealNeeds]

    @property
    def hidden(self) -> int:
        return self.column.count - len(self.deals)


def pipeline_by_stage(scope: DashboardScope, *, per_stage: int | None = None) -> list[StageGroup]:
    """Per open stage of the playbook: count, amount and weighted amount of the deals in view,
    and the `per_stage` closing first (10 of one's own, 5 of a branch's) with what each needs to
    enter its next stage. Uses the
    board's columns (one query for the totals, one per non-empty stage, a fixed few for the gate
    data); the missing criteria are then read from memory."""
    if per_stage is None:
        per_stage = DEALS_PER_STAGE if scope.view == MINE else DEALS_PER_STAGE_BRANCH
    columns = board_columns(scope.user, scope.playbook, scope.board_filters, per_column=per_stage)
    groups = []
    for column in columns:
        deals = []
        for card in column.cards:
            missing: list[CriterionState] = []
            if card.next_stage is not None:
                states = criteria_states(card.opportunity, [card.next_stage])
                missing = [s for s in states if s.criterion.required and not s.holds]
            deals.append(DealNeeds(card=card, missing=missing))
        groups.append(StageGroup(column=column, deals=deals))
    return groups


# --- to-dos: overdue activities, key dates, approvals ---------------------------------------


def overdue_activities(
    scope: DashboardScope, *, limit: int = LIST_LIMIT
) -> tuple[int, list[Activity]]:
    """Activities planned before today and not done, on open deals in view (for "mine" also those
    assigned to the user on a colleague's deal): how many, and the oldest `limit`."""
    qs = Activity.objects.visible_to(scope.user).filter(
        done_at__isnull=True, due_on__lt=clock.today(), opportunity__status=Status.OPEN
    )
    if scope.view == MINE:
        qs = qs.filter(Q(owner_id=scope.user.pk) | Q(opportunity__owner_id=scope.user.pk))
    elif scope.branch_ids is not None:
        qs = qs.filter(opportunity__branch_id__in=scope.branch_ids)
    rows = qs.select_related("opportunity", "opportunity__account", "owner").order_by(
        "due_on", "id"
    )
    return qs.count(), list(rows[:limit])


def coming_key_dates(
    scope: DashboardScope, *, days: int = KEY_DATE_DAYS, limit: int = LIST_LIMIT
) -> tuple[int, list[KeyDate]]:
    """Key dates (bid, negotiation, signing...) planned from today through the next `days` days
    and not yet held, on open deals in view: how many, and the first `limit`."""
    today = clock.today()
    qs = KeyDate.objects.filter(
        opportunity__in=scope.open_deals().values("pk"),
        actual__isnull=True,
        planned__gte=today,
        planned__lte=today + dt.timedelta(days=days),
    )
    rows = qs.select_related("opportunity", "opportunity__account", "opportunity__owner").order_by(
        "planned", "id"
    )
    return qs.count(), list(rows[:limit])


def stalled_deals(scope: DashboardScope) -> list[dict[str, Any]]:
    """The deals in view stalled in their stage (the rule of `loudou stalled`), most overdue
    first."""
    s = scope.analytics
    deals = stalled(s.actor, s.playbook, branch_ids=s.branch_ids, owner_id=s.owner_id)["deals"]
    for deal in deals:
        # Whole days for display and plural forms (the selector keeps one decimal).
        deal["whole_days"] = int(deal["days_in_stage"])
        deal["whole_threshold"] = int(deal["threshold_days"])
    return deals


def approvals_for(user: Any, *, limit: int = LIST_LIMIT) -> tuple[int, list[Any]]:
    """The 立项 requests waiting for `user`'s decision: how many, and the oldest `limit`."""
    qs = approvals_waiting_for(user)
    return qs.count(), list(qs[:limit])


# --- targets ---------------------------------------------------------------------------------


@dataclass
class TargetProgress:
    """A period's target against the amount won in it and the weighted forecast (won + Σ amount
    × probability of the open deals closing in it), as `loudou forecast` computes them."""

    period: Period
    target: Decimal | None
    won: Decimal
    weighted: Decimal
    open_deals: int

    @property
    def won_share(self) -> int | None:
        """Won as a whole percentage of the target (None without a positive target)."""
        return _share(self.won, self.target)

    @property
    def weighted_share(self) -> int | None:
        return _share(self.weighted, self.target)

    @property
    def won_bar(self) -> int:
        """The won share for a progress bar: 0–100."""
        return min(self.won_share or 0, 100)

    @property
    def weighted_bar(self) -> int:
        return min(self.weighted_share or 0, 100)

    @property
    def gap(self) -> Decimal | None:
        """What is still to win to reach the target (0 once reached)."""
        if self.target is None:
            return None
        return max(self.target - self.won, Decimal(0))

    def whole(self, name: str) -> Decimal | None:
        """An amount rounded to the yuan for display (the weighted sum carries fractions)."""
        value = getattr(self, name)
        return None if value is None else value.quantize(Decimal(1), rounding=ROUND_HALF_UP)

    @property
    def shown(self) -> dict[str, Decimal | None]:
        """Target, won, weighted and gap rounded to the yuan, for the page."""
        return {name: self.whole(name) for name in ("target", "won", "weighted", "gap")}


def _share(part: Decimal, whole: Decimal | None) -> int | None:
    if not whole:
        return None
    return int((100 * part / whole).to_integral_value())


def current_periods(today: dt.date) -> tuple[Period, Period]:
    """The month and the quarter `today` falls in."""
    month = parse_period(f"{today:%Y-%m}")
    quarter = parse_period(f"{today.year}Q{(today.month - 1) // 3 + 1}")
    return month, quarter


def target_progress(scope: DashboardScope, period: Period) -> TargetProgress:
    """Target, won and weighted forecast of `period` for the scope: the user's own target in
    "mine", the branch's (or the company's for those who see everything) in "branch"."""
    s = scope.analytics
    booked, weighted, open_deals = period_weighted(s, period)
    return TargetProgress(
        period=period,
        target=scope_target(s, period),
        won=booked,
        weighted=weighted,
        open_deals=open_deals,
    )


# --- the funnel page's drill-down -------------------------------------------------------------


@dataclass
class StageDeal:
    """A deal as it stood in a stage at a past moment: amount, close date and owner then."""

    opportunity: Opportunity
    amount: Decimal
    close_date: dt.date
    owner: User | None


def stage_deals_at(
    user: Any,
    playbook: Playbook,
    stage_key: str,
    *,
    as_of: dt.date | None = None,
    branch_ids: set[int] | None = None,
    owner_id: int | None = None,
    industry_id: int | None = None,
    limit: int = 200,
) -> tuple[int, list[StageDeal]]:
    """The deals open in `stage_key` at the end of `as_of` (default now), as counted by
    `funnel_snapshot` for the same scope: how many, and the `limit` largest with the amount,
    close date and owner they had then. Three queries."""
    at = end_of_day(as_of) if as_of else clock.now()
    rows = states_at(
        user,
        playbook.key,
        at,
        branch_ids=branch_ids,
        owner_id=owner_id,
        industry_id=industry_id,
        open_in=stage_key,
    )
    rows.sort(key=lambda r: (-r.amount, r.opportunity_id))
    shown = rows[:limit]
    opps = Opportunity.objects.select_related("account", "stage").in_bulk(
        [r.opportunity_id for r in shown]
    )
    owners = User.objects.in_bulk({r.owner_id for r in shown})
    deals = [
        StageDeal(
            opportunity=opps[r.opportunity_id],
            amount=r.amount,
            close_date=r.close_date,
            owner=owners.get(r.owner_id),
        )
        for r in shown
        if r.opportunity_id in opps
    ]
    return len(rows), deals
