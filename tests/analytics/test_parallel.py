"""Analytics that read a large table on two connections at once (`loudou.analytics.parallel`):
the funnel's spans by status, velocity's stays by id. Each gives exactly what the reads on one
connection give; inside a transaction they stay on its connection."""

import datetime as dt

import pytest
from django.db import connection

from loudou.analytics import conversion, parallel, selectors
from loudou.analytics import velocity as velocity_module
from loudou.analytics.models import OpportunityStay, StateSpan
from loudou.analytics.selectors import funnel_snapshot
from loudou.analytics.velocity import velocity
from loudou.core import clock
from loudou.pipeline import services as ps

START = dt.datetime(2026, 3, 2, 9, 0, tzinfo=dt.UTC)


def make_deals(walker, org):
    """Deals open at several stages, lost and won, over a few weeks."""
    made = []
    for i, stage in enumerate(["discover", "intent", "project", "intent", "discover", "project"]):
        with clock.frozen_at(START + dt.timedelta(days=i)):
            opp = walker.create(name=f"deal {i}", amount=str(100_000 * (i + 1)))
        with clock.frozen_at(START + dt.timedelta(days=10 + i)):
            made.append(walker.to(opp, stage))
    with clock.frozen_at(START + dt.timedelta(days=30)):
        ps.opportunity_lose(opportunity=made[0], actor=org["seller"], reason="price")
        ps.opportunity_win(opportunity=made[2], actor=org["manager"], override_reason="signed")
    return made


def funnels(org, playbook):
    with clock.frozen_at(START + dt.timedelta(days=40)):
        return [
            funnel_snapshot(org[who], playbook, as_of=as_of)
            for who in ("executive", "manager", "seller")
            for as_of in (None, dt.date(2026, 3, 14), dt.date(2026, 3, 1))
        ]


def velocities(org, playbook):
    with clock.frozen_at(START + dt.timedelta(days=40)):
        return [
            velocity(org[who], playbook, **kw)
            for who in ("executive", "manager", "seller")
            for kw in ({}, {"entered_from": dt.date(2026, 3, 12)})
        ]


def test_the_funnel_on_two_connections_is_the_same(
    transactional_db, walker, org, playbook, monkeypatch, read_calls
):
    make_deals(walker, org)
    alone = funnels(org, playbook)
    read_calls.clear()
    monkeypatch.setattr(selectors, "_PARALLEL_SPANS", 0)
    assert funnels(org, playbook) == alone
    # PostgreSQL splits only a past date's reads: the spans in force, and those ended since.
    assert read_calls == [True] * (len(alone) if connection.vendor == "sqlite" else 6)
    won = alone[0]["won"]
    assert (won["count"], won["amount"]) == (1, "300000.00")


def test_velocity_on_two_connections_is_the_same(
    transactional_db, walker, org, playbook, monkeypatch, read_calls
):
    make_deals(walker, org)
    alone = velocities(org, playbook)
    read_calls.clear()
    monkeypatch.setattr(velocity_module, "_PARALLEL_STAYS", 0)
    assert velocities(org, playbook) == alone
    assert read_calls == [True] * len(alone)
    assert alone[0]["cycle_to_won"]["completed"] == 1


def test_a_split_by_id_keeps_every_row_once(transactional_db, walker, org):
    make_deals(walker, org)
    stays = OpportunityStay.objects.all()
    for share in (0, 0.5, 2 / 3, 1):
        parts = parallel.split_by_id(stays, 0, share)
        ids = [pk for part in parts for pk in part.values_list("pk", flat=True)]
        assert sorted(ids) == sorted(stays.values_list("pk", flat=True))
    assert parallel.split_by_id(stays, 10**9, 0.5) is None  # too few ids to pay


@pytest.mark.django_db
def test_inside_a_transaction_reads_stay_on_its_connection(walker, org):
    make_deals(walker, org)  # the test's transaction: a second connection would not see these
    assert not parallel.worth_two_connections(StateSpan, "default", 0)
    assert parallel.split_by_id(OpportunityStay.objects.all(), 0, 0.5) is None


def test_conversion_figures_on_two_threads_are_the_same(walker, org, playbook, monkeypatch):
    make_deals(walker, org)
    with clock.frozen_at(START + dt.timedelta(days=40)):
        alone = conversion.conversion_by_stage(org["executive"], playbook)
        monkeypatch.setattr(conversion, "_THREADED_DEALS", 0)
        threaded = conversion.conversion_by_stage(org["executive"], playbook)
    assert threaded == alone
    assert alone["overall"]["reached"] == 6 and alone["overall"]["interval"] is not None
