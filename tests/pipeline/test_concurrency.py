"""Concurrent writes to one opportunity, with real threads and real connections: exactly one of
two writers holding the same version wins, the other gets a conflict, nothing is lost."""

import threading

import pytest
from django.db import close_old_connections, connection

from loudou.core.errors import Conflict
from loudou.pipeline import services as ps
from loudou.pipeline.models import Opportunity, OpportunityHistory
from tests.conftest import INTENT_EVIDENCE

ROUNDS = 15


def race(*calls):
    """Run the calls at once in threads; return each one's result or exception."""
    barrier = threading.Barrier(len(calls))
    results = [None] * len(calls)

    def run(i, call):
        try:
            barrier.wait()
            results[i] = call()
        except Exception as exc:  # each outcome is asserted by the test
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    close_old_connections()
    return results


@pytest.mark.django_db(transaction=True)
def test_two_updates_with_the_same_version_one_wins(walker, org):
    opp = walker.create()
    for round_ in range(ROUNDS):
        version = Opportunity.objects.get(pk=opp.pk).version
        history = OpportunityHistory.objects.filter(opportunity=opp).count()
        amounts = [f"{1000 + round_ * 10 + i}" for i in range(2)]
        results = race(
            *[
                (
                    lambda a=a, who=who, v=version: ps.opportunity_update(
                        opportunity=opp.pk, actor=org[who], amount=a, expected_version=v
                    )
                )
                for a, who in zip(amounts, ["seller", "manager"], strict=True)
            ]
        )
        winners = [r for r in results if isinstance(r, Opportunity)]
        losers = [r for r in results if isinstance(r, Conflict)]
        assert (len(winners), len(losers)) == (1, 1), results
        fresh = Opportunity.objects.get(pk=opp.pk)
        assert fresh.version == version + 1
        assert str(fresh.amount) == f"{winners[0].amount}"
        assert OpportunityHistory.objects.filter(opportunity=opp).count() == history + 1


@pytest.mark.django_db(transaction=True)
def test_two_updates_without_a_version_both_apply_in_turn(walker, org):
    opp = walker.create()
    results = race(
        lambda: ps.opportunity_update(opportunity=opp.pk, actor=org["seller"], amount="111"),
        lambda: ps.opportunity_update(opportunity=opp.pk, actor=org["manager"], name="renamed"),
    )
    assert all(isinstance(r, Opportunity) for r in results), results
    fresh = Opportunity.objects.get(pk=opp.pk)
    # Neither write overwrote the other.
    assert (fresh.version, str(fresh.amount), fresh.name) == (3, "111.00", "renamed")


@pytest.mark.django_db(transaction=True)
def test_two_advances_of_one_opportunity_one_wins(walker, org):
    for _round in range(5):
        opp = walker.create()
        results = race(
            *[
                (
                    lambda who=who, pk=opp.pk: ps.opportunity_advance(
                        opportunity=pk,
                        to_stage="intent",
                        actor=org[who],
                        evidence=INTENT_EVIDENCE,
                        expected_version=1,
                    )
                )
                for who in ("seller", "manager")
            ]
        )
        assert sorted(type(r).__name__ for r in results) == ["Conflict", "Opportunity"], results
        rows = OpportunityHistory.objects.filter(opportunity=opp).order_by("valid_from", "id")
        assert [r.action for r in rows] == ["create", "advance"]
