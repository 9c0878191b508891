"""Stays are maintained by the history writer and equal what history alone derives."""

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import IntegrityError, transaction

from loudou.analytics.models import OpportunityStay
from loudou.analytics.stays import stays_rebuild, stays_verify, table_stays
from loudou.core import clock
from loudou.pipeline import services as ps


def stays_of(opp):
    return list(
        OpportunityStay.objects.filter(opportunity=opp)
        .order_by("entered_at", "id")
        .values_list("stage__key", "outcome")
    )


def test_a_walk_with_a_regress_a_loss_and_a_reopen(walker, org):
    opp = walker.to(walker.create(), "project")
    ps.opportunity_regress(
        opportunity=opp, to_stage="intent", actor=org["seller"], reason="budget frozen"
    )
    ps.opportunity_lose(opportunity=opp, actor=org["seller"], reason="no_budget")
    ps.opportunity_reopen(opportunity=opp, actor=org["seller"], reason="budget back")

    assert stays_of(opp) == [
        ("discover", "advanced"),
        ("intent", "advanced"),
        ("project", "regressed"),
        ("intent", "lost"),
        ("intent", ""),
    ]
    assert stays_verify() == []


def test_a_won_deal_ends_its_last_stay_as_won(walker):
    opp = walker.to(walker.create(), "closed")
    assert stays_of(opp)[-1] == ("negotiation", "won")
    assert OpportunityStay.objects.filter(opportunity=opp, exited_at__isnull=True).count() == 0


def test_amount_changes_do_not_split_a_stay(walker, org):
    opp = walker.create()
    ps.opportunity_update(opportunity=opp, actor=org["seller"], amount="5")
    assert stays_of(opp) == [("discover", "")]


def test_rebuild_gives_the_same_table_and_verify_finds_tampering(walker, org):
    walker.to(walker.create(name="a"), "recognition")
    lost = walker.create(name="b")
    ps.opportunity_lose(opportunity=lost, actor=org["seller"], reason="price")
    before = table_stays()

    assert stays_rebuild() == len(before)
    assert table_stays() == before

    OpportunityStay.objects.filter(opportunity=lost).update(outcome="won")
    with pytest.raises(CommandError, match="inconsistencies"):
        call_command("analytics", "verify", stdout=io.StringIO(), stderr=io.StringIO())
    out = io.StringIO()
    call_command("analytics", "rebuild", stdout=out)
    call_command("analytics", "verify", stdout=out)
    assert "agree with history" in out.getvalue()


def test_the_database_refuses_a_second_open_stay_for_a_deal(walker):
    # The one-open-stay constraint exists on both databases (PostgreSQL lost its index once, to
    # an AlterField of the opportunity foreign key: analytics migration 0005 puts it back).
    opp = walker.create()
    stay = OpportunityStay.objects.get(opportunity=opp, exited_at__isnull=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        OpportunityStay.objects.create(
            opportunity=opp, stage=stay.stage, stage_order=stay.stage_order, entered_at=clock.now()
        )
    assert OpportunityStay.objects.filter(opportunity=opp).count() == 1
