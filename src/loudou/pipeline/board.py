"""Reads for the board and the opportunity list: filters, columns with their totals, and cards
with gate progress and a stalled mark — in a fixed number of queries whatever the deal count."""

import datetime as dt
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.db.models import Count, DecimalField, ExpressionWrapper, F, Q, Sum, Value
from django.db.models.functions import Coalesce

from loudou.core import clock
from loudou.org.access import branch_subtree_ids, managed_branch_ids
from loudou.pipeline.gates import criteria_states, prefetch_gate_data
from loudou.pipeline.models import Opportunity, Status
from loudou.playbooks.models import Playbook, Stage, StageKind

QUARTER = re.compile(r"^(\d{4})-?Q([1-4])$", re.IGNORECASE)


@dataclass
class BoardFilters:
    """What the user narrowed the board or the list to (all optional)."""

    owner_id: int | None = None
    branch_id: int | None = None
    industry_id: int | None = None
    quarter: str = ""  # "2026Q4": expected close date in that quarter
    search: str = ""
    source: str = ""  # where the deals came from, e.g. an import's format ("salesforce")

    def quarter_range(self) -> tuple[dt.date, dt.date] | None:
        match = QUARTER.match(self.quarter.strip())
        if not match:
            return None
        year, q = int(match.group(1)), int(match.group(2))
        start = dt.date(year, 3 * q - 2, 1)
        end = dt.date(year + (q == 4), 1 if q == 4 else 3 * q + 1, 1) - dt.timedelta(days=1)
        return start, end

    def apply(self, qs: Any) -> Any:
        if self.owner_id:
            qs = qs.filter(owner_id=self.owner_id)
        if self.branch_id:
            qs = qs.filter(branch_id__in=branch_subtree_ids(self.branch_id))
        if self.industry_id:
            qs = qs.filter(account__industry_id=self.industry_id)
        if (span := self.quarter_range()) is not None:
            qs = qs.filter(close_date__range=span)
        if self.source:
            qs = qs.filter(source=self.source)
        if self.search.strip():
            term = self.search.strip()
            qs = qs.filter(Q(name__icontains=term) | Q(account__name__icontains=term))
        return qs


def weighted_amount() -> ExpressionWrapper:
    """amount × probability (the deal's override, else its stage's default) / 100."""
    return ExpressionWrapper(
        F("amount") * Coalesce(F("probability_override"), F("stage__probability")) / Value(100),
        output_field=DecimalField(max_digits=20, decimal_places=2),
    )


@dataclass
class Card:
    """One deal on the board, with what its card shows beyond the opportunity's own fields."""

    opportunity: Opportunity
    days_in_stage: int
    stalled: bool
    held: int
    required: int
    next_stage: Stage | None

    @property
    def overdue(self) -> bool:
        return self.opportunity.close_date < clock.today()


@dataclass
class Column:
    """A stage of the board: its totals over every matching deal, and the first cards."""

    stage: Stage
    count: int = 0
    amount: Decimal = Decimal(0)
    weighted: Decimal = Decimal(0)
    cards: list[Card] = field(default_factory=list)

    @property
    def hidden(self) -> int:
        return self.count - len(self.cards)


def open_stages(playbook: Playbook) -> list[Stage]:
    return [s for s in playbook.ordered_stages() if s.kind == StageKind.OPEN]


def board_opportunities(user: Any, playbook: Playbook, filters: BoardFilters) -> Any:
    """The deals the board shows: open, of any version of the playbook, visible to `user`."""
    qs = Opportunity.objects.visible_to(user).filter(playbook__key=playbook.key, status=Status.OPEN)
    return filters.apply(qs)


def stall_thresholds(user: Any, playbook: Playbook) -> dict[str, float]:
    """Days after which a deal in each open stage counts as stalled: the stage's max_days, else
    the p80 of completed stays (the rule of `loudou stalled`)."""
    from loudou.analytics.velocity import stage_p80

    stages = open_stages(playbook)
    thresholds = {s.key: float(s.max_days) for s in stages if s.max_days is not None}
    missing = [s.key for s in stages if s.max_days is None]
    if missing:
        for key, value in stage_p80(user, playbook, missing).items():
            if value is not None:
                thresholds[key] = value
    return thresholds


def make_cards(
    opportunities: list[Opportunity], playbook: Playbook, thresholds: dict[str, float]
) -> list[Card]:
    """Cards for loaded opportunities: gate progress toward the next open stage, days in stage
    and the stalled mark. Prefetches the gate data of all of them at once."""
    prefetch_gate_data(opportunities)
    now = clock.now()
    cards = []
    for opp in opportunities:
        stages = opp.playbook.ordered_stages()
        later = [s for s in stages if s.order > opp.stage.order and s.kind != StageKind.ACCOUNT]
        nxt = later[0] if later else None
        held = required = 0
        if nxt is not None:
            states = [s for s in criteria_states(opp, [nxt]) if s.criterion.required]
            held, required = sum(1 for s in states if s.holds), len(states)
        days = (now - opp.stage_entered_at).days
        limit = thresholds.get(opp.stage.key)
        cards.append(
            Card(
                opportunity=opp,
                days_in_stage=days,
                stalled=limit is not None and days > limit,
                held=held,
                required=required,
                next_stage=nxt,
            )
        )
    return cards


CARD_RELATED = ("account", "owner", "stage", "playbook", "branch")


def board_columns(
    user: Any,
    playbook: Playbook,
    filters: BoardFilters,
    *,
    per_column: int = 30,
) -> list[Column]:
    """One column per open stage: count, amount and weighted amount over every matching deal,
    and the first `per_column` cards by expected close date. Queries: one for the totals, one
    per column for its cards, and a fixed few for the cards' gate data."""
    qs = board_opportunities(user, playbook, filters)
    columns = {s.key: Column(stage=s) for s in open_stages(playbook)}
    totals = qs.values("stage__key").annotate(
        # Aliases must not shadow fields: F("amount") inside weighted_amount() would
        # otherwise resolve to the Sum of the same name.
        n=Count("pk"),
        total_amount=Sum("amount"),
        total_weighted=Sum(weighted_amount()),
    )
    for row in totals:
        column = columns.get(row["stage__key"])
        if column is not None:
            column.count = row["n"]
            column.amount = row["total_amount"] or Decimal(0)
            column.weighted = row["total_weighted"] or Decimal(0)
    first: dict[str, list[Opportunity]] = {
        key: list(
            qs.filter(stage__key=key)
            .select_related(*CARD_RELATED)
            .order_by("close_date", "id")[:per_column]
        )
        for key, column in columns.items()
        if column.count
    }
    loaded = [opp for opps in first.values() for opp in opps]
    cards = {
        c.opportunity.pk: c for c in make_cards(loaded, playbook, stall_thresholds(user, playbook))
    }
    for key, opps in first.items():
        columns[key].cards = [cards[o.pk] for o in opps]
    return list(columns.values())


def column_cards(
    user: Any,
    playbook: Playbook,
    filters: BoardFilters,
    stage_key: str,
    *,
    offset: int,
    limit: int = 30,
) -> list[Card]:
    """The next cards of one column ("show more")."""
    rows = list(
        board_opportunities(user, playbook, filters)
        .filter(stage__key=stage_key)
        .select_related(*CARD_RELATED)
        .order_by("close_date", "id")[offset : offset + limit]
    )
    return make_cards(rows, playbook, stall_thresholds(user, playbook))


def filter_choices(user: Any) -> dict[str, Any]:
    """The owners, branches and industries the filter menus offer `user`."""
    from loudou.customers.models import Industry
    from loudou.org.models import Branch, User

    managed = managed_branch_ids(user)
    branches = Branch.objects.all() if managed is None else Branch.objects.filter(pk__in=managed)
    owners = User.objects.filter(is_active=True)
    if managed is not None:
        owners = owners.filter(Q(branch_id__in=managed) | Q(pk=user.pk))
    return {
        "branches": list(branches.order_by("code")),
        "owners": list(owners.order_by("username")),
        "industries": list(Industry.objects.order_by("key")),
        "quarters": quarters_around(clock.today()),
    }


def quarters_around(today: dt.date) -> list[str]:
    """Two quarters back to four ahead of today's: the close quarters worth filtering by."""
    index = today.year * 4 + (today.month - 1) // 3
    return [f"{i // 4}Q{i % 4 + 1}" for i in range(index - 2, index + 5)]
