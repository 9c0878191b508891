"""State spans: each history row with the moment the next one replaced it, so "the state of every
deal at T" is an index range (`valid_from <= T < valid_to`) instead of a search for the latest
history row of each deal.

`span_apply` keeps the table current as each history row is written (called by the pipeline's
`history_write`, inside the same transaction; the importer writes the spans of new deals in bulk
beside their history). `spans_rebuild` derives the whole table from history in one statement
(`LEAD` over each deal's rows) and `spans_verify` compares the table with that derivation, both
in SQL, so they take seconds even for millions of rows.
"""

from collections.abc import Sequence
from typing import Any

from django.db import connection

from loudou.analytics.derived import Derivation
from loudou.analytics.models import OPEN_ENDED, StateSpan

#: The columns of a span row, in the order the importer's bulk writer gives them.
SPAN_FIELDS = (
    "opportunity_id", "playbook_id", "stage_id", "status", "owner_id", "amount", "probability",
    "close_date", "valid_from", "valid_to",
)  # fmt: skip


def span_apply(opp: Any, *, at: Any) -> None:
    """End the opportunity's span in force at `at` and start one with its fields as they are now
    (same transaction as the history row written at `at`)."""
    StateSpan.objects.filter(opportunity_id=opp.pk, valid_to=OPEN_ENDED).update(valid_to=at)
    StateSpan.objects.create(
        opportunity_id=opp.pk,
        playbook_id=opp.playbook_id,
        stage_id=opp.stage_id,
        status=opp.status,
        owner_id=opp.owner_id,
        amount=opp.amount,
        probability=opp.probability,
        close_date=opp.close_date,
        valid_from=at,
        valid_to=OPEN_ENDED,
    )


def _derived_select(where: str = "", where_params: Sequence[Any] = ()) -> tuple[str, list[Any]]:
    """SQL selecting every span as history defines it, in SPAN_FIELDS order, and its parameters
    (`where`: a condition on the history rows `h` with `where_params`, to derive only some
    deals' spans)."""
    from loudou.pipeline.models import Opportunity, OpportunityHistory

    history = connection.ops.quote_name(OpportunityHistory._meta.db_table)
    opportunity = connection.ops.quote_name(Opportunity._meta.db_table)
    sql = f"""
        SELECT h.opportunity_id, o.playbook_id, h.stage_id, h.status, h.owner_id, h.amount,
               h.probability, h.close_date, h.valid_from,
               COALESCE(LEAD(h.valid_from) OVER (
                   PARTITION BY h.opportunity_id ORDER BY h.valid_from, h.id
               ), %s)
        FROM {history} h JOIN {opportunity} o ON o.id = h.opportunity_id
        {f"WHERE {where}" if where else ""}
    """
    return sql, [connection.ops.adapt_datetimefield_value(OPEN_ENDED), *where_params]


SPANS = Derivation(StateSpan, SPAN_FIELDS, _derived_select, noun="span", order="1, 9")


def spans_rebuild() -> int:
    """Replace the spans with what the history says; return the number of spans."""
    return SPANS.rebuild()


def spans_derive(opportunity_ids: range) -> int:
    """Write the spans of the deals whose ids are in `opportunity_ids` from their history, in one
    statement (the importer's bulk path: new deals, which have no spans yet). Return how many."""
    return SPANS.insert_for(opportunity_ids)


def spans_verify(limit: int = 20) -> list[str]:
    """Differences between the spans table and the history (empty: consistent), at most `limit`
    of each kind."""
    return SPANS.differences(limit)
