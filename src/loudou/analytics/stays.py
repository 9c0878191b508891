"""Stays: the periods an open opportunity spends in each stage, derived from its history.

`stay_apply` keeps the table current as each history row is written (called by the pipeline's
`history_write`, inside the same transaction). `_derived_select` derives the same rows from history
alone, in SQL (window functions over each deal's rows), so that `stays_rebuild` (`loudou analytics
rebuild`), `stays_verify` (`loudou analytics verify`) and the importer's bulk path
(`stays_derive`) take seconds even for millions of rows.
"""

from collections.abc import Sequence
from typing import Any

from django.db import connection

from loudou.analytics.derived import Derivation
from loudou.analytics.models import OpportunityStay, StayOutcome

OPEN = "open"
#: The columns of a stay row, in the order `_derived_select` gives them.
STAY_FIELDS = ("opportunity_id", "stage_id", "stage_order", "entered_at", "exited_at", "outcome")


def _outcome(prev_order: int, new_status: str, new_order: int) -> str:
    if new_status == "won":
        return StayOutcome.WON
    if new_status == "lost":
        return StayOutcome.LOST
    return StayOutcome.ADVANCED if new_order > prev_order else StayOutcome.REGRESSED


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


def _derived_select(where: str = "", where_params: Sequence[Any] = ()) -> tuple[str, list[Any]]:
    """SQL selecting every stay as history defines it, in STAY_FIELDS order, and its parameters
    (`where`: a condition on the history rows `h` with `where_params`, to derive only some deals'
    stays).

    A deal's history rows in order (valid_from, id); a row *continues* the stay before it when it
    and the row before are both open in the same stage (an amount or date change). Every other
    row is a *boundary*: it ends the stay in progress, if any, and, when it is open, begins one.
    So the stays are the open boundary rows, each ended by the next boundary row of its deal,
    whose status and stage order give the outcome (`_outcome`); the last one of a deal still open
    has no end."""
    from loudou.pipeline.models import OpportunityHistory
    from loudou.playbooks.models import Stage

    history = connection.ops.quote_name(OpportunityHistory._meta.db_table)
    stage = connection.ops.quote_name(Stage._meta.db_table)
    order = connection.ops.quote_name("order")
    sql = f"""
        SELECT opportunity_id, stage_id, stage_order, valid_from, next_at,
               CASE WHEN next_at IS NULL THEN ''
                    WHEN next_status = %s THEN %s
                    WHEN next_status = %s THEN %s
                    WHEN next_order > stage_order THEN %s
                    ELSE %s END
        FROM (
            SELECT b.*,
                   LEAD(valid_from) OVER w AS next_at,
                   LEAD(status) OVER w AS next_status,
                   LEAD(stage_order) OVER w AS next_order
            FROM (
                SELECT h.id, h.opportunity_id, h.stage_id, h.status, h.valid_from,
                       s.{order} AS stage_order,
                       LAG(h.stage_id) OVER p AS previous_stage,
                       LAG(h.status) OVER p AS previous_status
                FROM {history} h JOIN {stage} s ON s.id = h.stage_id
                {f"WHERE {where}" if where else ""}
                WINDOW p AS (PARTITION BY h.opportunity_id ORDER BY h.valid_from, h.id)
            ) b
            WHERE NOT (b.status = %s AND COALESCE(b.previous_status, '') = %s
                       AND COALESCE(b.previous_stage, -1) = b.stage_id)
            WINDOW w AS (PARTITION BY b.opportunity_id ORDER BY b.valid_from, b.id)
        ) boundaries
        WHERE status = %s
    """
    params = [
        "won", StayOutcome.WON, "lost", StayOutcome.LOST, StayOutcome.ADVANCED,
        StayOutcome.REGRESSED, *where_params, OPEN, OPEN, OPEN,
    ]  # fmt: skip
    return sql, params


STAYS = Derivation(OpportunityStay, STAY_FIELDS, _derived_select, noun="stay", order="1, 4")


def stays_derive(opportunity_ids: range) -> int:
    """Write the stays of the deals whose ids are in `opportunity_ids` from their history, in one
    statement (the importer's bulk path: new deals, which have no stays yet). Return how many."""
    return STAYS.insert_for(opportunity_ids)


def table_stays() -> list[tuple[Any, ...]]:
    """Every stay as the table holds it, in STAY_FIELDS order (by deal and entry)."""
    return list(
        OpportunityStay.objects.order_by("opportunity_id", "entered_at", "id").values_list(
            *STAY_FIELDS
        )
    )


def stays_rebuild() -> int:
    """Replace the stays table with what the history says; return the number of stays."""
    return STAYS.rebuild()


def stays_verify(limit: int = 20) -> list[str]:
    """Differences between the stays table and the history (empty: consistent), and between each
    opportunity's current fields and its latest history row; at most `limit` of each kind."""
    from loudou.pipeline.models import Opportunity, OpportunityHistory

    problems = STAYS.differences(limit)
    with connection.cursor() as cursor:
        history = connection.ops.quote_name(OpportunityHistory._meta.db_table)
        opportunity = connection.ops.quote_name(Opportunity._meta.db_table)
        fields = ("stage_id", "status", "amount", "close_date", "owner_id")
        cursor.execute(
            f"""
            SELECT o.id, {", ".join(f"o.{f}" for f in fields)},
                   {", ".join(f"h.{f}" for f in fields)}
            FROM {opportunity} o LEFT JOIN (
                SELECT opportunity_id, {", ".join(fields)}, ROW_NUMBER() OVER (
                    PARTITION BY opportunity_id ORDER BY valid_from DESC, id DESC
                ) AS latest
                FROM {history}
            ) h ON h.opportunity_id = o.id AND h.latest = 1
            WHERE h.opportunity_id IS NULL
               OR {" OR ".join(f"o.{f} <> h.{f}" for f in fields)}
            ORDER BY o.id LIMIT {int(limit)}
            """
        )
        for row in cursor.fetchall():
            current, latest = row[1 : 1 + len(fields)], row[1 + len(fields) :]
            problems.append(f"opportunity {row[0]}: current fields {current} != history {latest}")
    return problems
