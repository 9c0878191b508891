"""Two users racing each other on one opportunity, with real threads, each on its own database
connection (SQLite in WAL mode with IMMEDIATE transactions, or PostgreSQL with row locks).

Both read the deal at the same version and write at once (a barrier releases them together):
exactly one write lands, the other gets `Conflict` and changes nothing; no "database is locked",
OperationalError or IntegrityError ever reaches the caller; the version moves by one and history
by one row per write that landed; at the end the analytics caches agree with history.

A hundred races in all, in four kinds: both advance, both edit, both win, and one advances
while the other edits (the two swap roles, and threads, every round). Run with -s, the test
prints who won how often.
"""

import threading
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from django.db import DatabaseError, close_old_connections, connections

from loudou.analytics.caches import caches_verify
from loudou.core import clock
from loudou.pipeline import services as ps
from loudou.pipeline.models import Opportunity, OpportunityHistory, Status
from tests.conftest import INTENT_EVIDENCE, PRELIMINARY_LINES

# Races per kind: a hundred in all.
RACES = {"advance": 25, "update": 25, "win": 25, "mixed": 25}
WON_EVIDENCE = {"contract_signed": "Signed on the day"}
RACERS = ("seller", "manager")  # the owner and the Beijing branch manager


def race(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls at once, one thread each; each one's result, or the exception it raised."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int, call: Callable[[], Any]) -> None:
        try:
            barrier.wait(timeout=30)
            results[i] = call()
        except BaseException as exc:  # every outcome is asserted by the caller
            results[i] = exc
        finally:
            connections.close_all()  # this thread's own connection, not the test's

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(90)
    assert not any(t.is_alive() for t in threads), "a racer never finished"
    close_old_connections()
    return results


class Deal:
    """One opportunity the races run on, with the version and history count it must have."""

    def __init__(self, opp: Opportunity) -> None:
        self.pk = opp.pk
        self.version = opp.version
        self.history = OpportunityHistory.objects.filter(opportunity_id=opp.pk).count()

    def fresh(self) -> Opportunity:
        return Opportunity.objects.select_related("stage").get(pk=self.pk)

    def wrote(self, opp: Opportunity, *, history: int = 1) -> None:
        """A write done outside a race (resetting the deal for the next one) landed."""
        self.version += 1
        self.history += history
        assert (opp.version, self.count()) == (self.version, self.history)

    def count(self) -> int:
        return OpportunityHistory.objects.filter(opportunity_id=self.pk).count()


def judge(deal: Deal, results: list[Any], who: tuple[str, str], tally: Counter) -> int:
    """Exactly one racer won and the other got a conflict naming the new version; the deal's
    version and history moved by exactly one. The index of the winner."""
    for result in results:
        assert not isinstance(result, DatabaseError), f"a database error reached a user: {result!r}"
    kinds = [type(r).__name__ for r in results]
    assert sorted(kinds) == ["Conflict", "Opportunity"], results
    winner = kinds.index("Opportunity")
    loser = results[1 - winner]
    assert loser.current_version == deal.version + 1
    assert loser.code == "conflict"
    deal.version += 1
    deal.history += 1
    assert deal.fresh().version == deal.version
    assert deal.count() == deal.history
    tally["races"] += 1
    tally["conflicts"] += 1
    tally[f"won by {who[winner]}"] += 1
    return winner


def advance_call(deal: Deal, org: dict[str, Any], who: str) -> Callable[[], Any]:
    version = deal.version
    return lambda: ps.opportunity_advance(
        opportunity=deal.pk,
        to_stage="intent",
        actor=org[who],
        evidence=INTENT_EVIDENCE,
        expected_version=version,
    )


def update_call(deal: Deal, org: dict[str, Any], who: str, amount: str) -> Callable[[], Any]:
    version = deal.version
    return lambda: ps.opportunity_update(
        opportunity=deal.pk, actor=org[who], amount=amount, expected_version=version
    )


def win_call(deal: Deal, org: dict[str, Any], who: str) -> Callable[[], Any]:
    version = deal.version
    return lambda: ps.opportunity_win(
        opportunity=deal.pk, actor=org[who], evidence=WON_EVIDENCE, expected_version=version
    )


def back_to_discover(deal: Deal, org: dict[str, Any]) -> None:
    """The winner advanced the deal; move it back so the next race can advance it again."""
    opp = ps.opportunity_regress(
        opportunity=deal.pk,
        to_stage="discover",
        actor=org["seller"],
        reason="Race reset",
        expected_version=deal.version,
    )
    deal.wrote(opp)


def reopen(deal: Deal, org: dict[str, Any]) -> None:
    """The winner closed the sale; the manager reopens it for the next race."""
    opp = ps.opportunity_reopen(
        opportunity=deal.pk,
        actor=org["manager"],
        reason="Race reset",
        expected_version=deal.version,
    )
    assert (opp.status, opp.stage.key) == (Status.OPEN, "negotiation")
    deal.wrote(opp)


def ready_to_win(walker: Any, org: dict[str, Any]) -> Opportunity:
    """A deal in negotiation with a submitted formal quote: only the contract is missing."""
    opp = walker.to(walker.create(name="赢单竞争"), "negotiation")
    ps.quote_create(
        opportunity=opp, actor=org["seller"], kind="formal", lines=PRELIMINARY_LINES, submit=True
    )
    return Opportunity.objects.get(pk=opp.pk)


@pytest.mark.django_db(transaction=True)
def test_a_hundred_races_each_won_by_exactly_one(walker: Any, org: dict[str, Any]) -> None:
    advancing = Deal(walker.create(name="推进竞争"))
    editing = Deal(walker.create(name="编辑竞争"))
    winning = Deal(ready_to_win(walker, org))
    mixed = Deal(walker.create(name="混合竞争"))
    history_before = OpportunityHistory.objects.count()
    resets = 0
    tallies: dict[str, Counter] = {kind: Counter() for kind in RACES}
    for round_ in range(max(RACES.values())):
        # The two swap threads every round, so neither is always first past the barrier.
        pair = RACERS if round_ % 2 == 0 else RACERS[::-1]
        if round_ < RACES["advance"]:
            results = race(*(advance_call(advancing, org, who) for who in pair))
            judge(advancing, results, pair, tallies["advance"])
            assert advancing.fresh().stage.key == "intent"
            back_to_discover(advancing, org)
            resets += 1
        if round_ < RACES["update"]:
            amounts = [f"{2_000_000 + round_}", f"{3_000_000 + round_}"]
            results = race(
                *(update_call(editing, org, w, a) for w, a in zip(pair, amounts, strict=True))
            )
            winner = judge(editing, results, pair, tallies["update"])
            assert editing.fresh().amount == Decimal(amounts[winner])
        if round_ < RACES["win"]:
            results = race(*(win_call(winning, org, who) for who in pair))
            judge(winning, results, pair, tallies["win"])
            fresh = winning.fresh()
            assert (fresh.status, fresh.stage.key, fresh.closed_on) == (
                Status.WON,
                "closed",
                clock.today(),
            )
            reopen(winning, org)
            resets += 1
        if round_ < RACES["mixed"]:
            # One moves the deal while the other edits its amount; they swap roles every round.
            mover, editor = pair
            amount = f"{4_000_000 + round_}"
            before_amount = mixed.fresh().amount
            results = race(advance_call(mixed, org, mover), update_call(mixed, org, editor, amount))
            winner = judge(mixed, results, (mover, editor), tallies["mixed"])
            fresh = mixed.fresh()
            if winner == 0:  # the advance landed; the edit changed nothing
                assert (fresh.stage.key, fresh.amount) == ("intent", before_amount)
                back_to_discover(mixed, org)
                resets += 1
            else:
                assert (fresh.stage.key, fresh.amount) == ("discover", Decimal(amount))
    for kind, count in RACES.items():
        assert (tallies[kind]["races"], tallies[kind]["conflicts"]) == (count, count), tallies
    # One history row per write that landed: a hundred races, plus the resets between them.
    assert OpportunityHistory.objects.count() == history_before + sum(RACES.values()) + resets
    assert caches_verify() == []
    print("\nraces:", {kind: dict(t) for kind, t in tallies.items()})


@pytest.mark.django_db(transaction=True)
def test_writers_without_a_version_queue_and_none_is_lost(walker: Any, org: dict[str, Any]) -> None:
    """Four users write the same deal at once, five times each, without a version: every write
    waits its turn (no "database is locked"), each lands, and none overwrites another unseen."""
    opp = walker.create(name="排队写入")
    users = ("seller", "manager", "north_manager", "admin")
    writes = 5

    def writer(i: int, who: str) -> Callable[[], Any]:
        def run() -> list[int]:
            versions = []
            for j in range(writes):
                done = ps.opportunity_update(
                    opportunity=opp.pk, actor=org[who], amount=f"{(i + 1) * 100_000 + j}"
                )
                versions.append(done.version)
            return versions

        return run

    results = race(*(writer(i, who) for i, who in enumerate(users)))
    assert all(isinstance(r, list) for r in results), results
    # Each write got its own version: 2 … 21, none twice.
    assert sorted(v for r in results for v in r) == list(range(2, 2 + len(users) * writes))
    fresh = Opportunity.objects.get(pk=opp.pk)
    assert fresh.version == 1 + len(users) * writes
    assert OpportunityHistory.objects.filter(opportunity=opp).count() == 1 + len(users) * writes
    last = OpportunityHistory.objects.filter(opportunity=opp).latest("valid_from", "id")
    assert last.amount == fresh.amount
    assert caches_verify() == []
