"""Stays: the periods an open opportunity spends in each stage, derived from its history.

`stay_apply` keeps the table current as each history row is written (called by the pipeline's
`history_write`, inside the same transaction). `stays_from_history` derives the same rows from
history alone; `loudou analytics rebuild` writes them and `loudou analytics verify` compares.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.db import transaction

from loudou.analytics.models import OpportunityStay, StayOutcome

OPEN = "open"


@dataclass(frozen=True)
class StaySpec:
    """A stay as derived from history (comparable with a row of the table)."""

    opportunity_id: int
    stage_id: int
    stage_order: int
    entered_at: Any
    exited_at: Any
    outcome: str


def _outcome(prev_order: int, new_status: str, new_order: int) -> str:
    if new_status == "won":
        return StayOutcome.WON
    if new_status == "lost":
        return StayOutcome.LOST
    return StayOutcome.ADVANCED if new_order > prev_order else StayOutcome.REGRESSED


def stays_from_history(rows: Iterable[Any]) -> Iterator[StaySpec]:
    """Derive stays from history rows given in (opportunity, valid_from, id) order. Each row needs
    `opportunity_id`, `stage_id`, `stage_order`, `status`, `valid_from`."""
    current: dict[str, Any] | None = None
    current_opp = None
    for row in rows:
        if row.opportunity_id != current_opp:
            if current is not None:
                yield StaySpec(**current)
            current, current_opp = None, row.opportunity_id
        if current is not None and (row.stage_id != current["stage_id"] or row.status != OPEN):
            current["exited_at"] = row.valid_from
            current["outcome"] = _outcome(current["stage_order"], row.status, row.stage_order)
            yield StaySpec(**current)
            current = None
        if current is None and row.status == OPEN:
            current = {
                "opportunity_id": row.opportunity_id,
                "stage_id": row.stage_id,
                "stage_order": row.stage_order,
                "entered_at": row.valid_from,
                "exited_at": None,
                "outcome": "",
            }
    if current is not None:
        yield StaySpec(**current)


def stay_apply(*, opportunity_id: int, stage: Any, status: str, at: Any) -> None:
    """Bring the stays of one opportunity up to a new history row (same transaction)."""
    current = OpportunityStay.objects.filter(
        opportunity_id=opportunity_id, exited_at__isnull=True
    ).first()
    if current is not None and (current.stage_id == stage.pk and status == OPEN):
        return
    if current is not None:
        current.exited_at = at
        current.outcome = _outcome(current.stage_order, status, stage.order)
        current.save(update_fields=["exited_at", "outcome"])
    if status == OPEN:
        OpportunityStay.objects.create(
            opportunity_id=opportunity_id,
            stage=stage,
            stage_order=stage.order,
            entered_at=at,
        )


def _history_rows() -> Any:
    from loudou.pipeline.models import OpportunityHistory

    return (
        OpportunityHistory.objects.order_by("opportunity_id", "valid_from", "id")
        .values_list("opportunity_id", "stage_id", "stage__order", "status", "valid_from")
        .iterator(chunk_size=5000)
    )


@dataclass
class _Row:
    opportunity_id: int
    stage_id: int
    stage_order: int
    status: str
    valid_from: Any


def derived_stays() -> list[StaySpec]:
    """Every stay, derived from the whole history."""
    return list(stays_from_history(_Row(*r) for r in _history_rows()))


def table_stays() -> list[StaySpec]:
    """Every stay as the table holds it."""
    return [
        StaySpec(*r)
        for r in OpportunityStay.objects.order_by("opportunity_id", "entered_at", "id").values_list(
            "opportunity_id", "stage_id", "stage_order", "entered_at", "exited_at", "outcome"
        )
    ]


@transaction.atomic
def stays_rebuild() -> int:
    """Replace the stays table with what the history says; return the number of stays."""
    OpportunityStay.objects.all().delete()
    specs = derived_stays()
    OpportunityStay.objects.bulk_create(
        (OpportunityStay(**spec.__dict__) for spec in specs), batch_size=2000
    )
    return len(specs)


def stays_verify() -> list[str]:
    """Differences between the stays table and the history (empty: consistent), and between each
    opportunity's current fields and its latest history row."""
    from loudou.pipeline.models import Opportunity, OpportunityHistory

    problems = []
    derived, stored = derived_stays(), table_stays()
    if derived != stored:
        derived_set, stored_set = set(derived), set(stored)
        for spec in sorted(
            derived_set - stored_set, key=lambda s: (s.opportunity_id, s.entered_at)
        )[:20]:
            problems.append(f"missing stay: {spec}")
        for spec in sorted(
            stored_set - derived_set, key=lambda s: (s.opportunity_id, s.entered_at)
        )[:20]:
            problems.append(f"stay not in history: {spec}")
    latest: dict[int, tuple] = {}
    for row in OpportunityHistory.objects.order_by(
        "opportunity_id", "valid_from", "id"
    ).values_list("opportunity_id", "stage_id", "status", "amount", "close_date", "owner_id"):
        latest[row[0]] = row[1:]
    for row in Opportunity.objects.values_list(
        "id", "stage_id", "status", "amount", "close_date", "owner_id"
    ):
        if latest.get(row[0]) != row[1:]:
            problems.append(
                f"opportunity {row[0]}: current fields {row[1:]} != history {latest.get(row[0])}"
            )
    return problems
