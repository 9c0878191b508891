"""State spans are maintained by the history writer, equal what history alone derives, and give
every deal's state at any moment (the funnel's and the flow's source)."""

import datetime as dt
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from loudou.analytics.caches import caches_rebuild, caches_verify
from loudou.analytics.models import OPEN_ENDED, StateSpan
from loudou.analytics.selectors import spans_in_force, states_at
from loudou.analytics.spans import spans_rebuild, spans_verify
from loudou.core import clock
from loudou.pipeline import services as ps
from loudou.pipeline.models import OpportunityHistory
from tests.conftest import INTENT_EVIDENCE


def at(day: int, hour: int = 10) -> dt.datetime:
    return timezone.make_aware(dt.datetime(2026, 3, day, hour))


def spans_of(opp) -> list[tuple]:
    return list(
        StateSpan.objects.filter(opportunity=opp)
        .order_by("valid_from", "id")
        .values_list("stage__key", "status", "amount", "valid_from", "valid_to")
    )


@pytest.fixture
def deal(walker, org):
    """Created Mar 1, amount raised Mar 2, advanced Mar 3, lost Mar 4."""
    seller = org["seller"]
    with clock.frozen_at(at(1)):
        opp = walker.create(name="Spanned", amount="100")
    with clock.frozen_at(at(2)):
        ps.opportunity_update(opportunity=opp, actor=seller, amount="250.50")
    with clock.frozen_at(at(3)):
        ps.opportunity_advance(
            opportunity=opp, to_stage="intent", actor=seller, evidence=INTENT_EVIDENCE
        )
    with clock.frozen_at(at(4)):
        ps.opportunity_lose(opportunity=opp, actor=seller, reason="price")
    return opp


def test_each_history_row_is_a_span_up_to_the_next(deal):
    assert spans_of(deal) == [
        ("discover", "open", 100, at(1), at(2)),
        ("discover", "open", 250.5, at(2), at(3)),
        ("intent", "open", 250.5, at(3), at(4)),
        ("intent", "lost", 250.5, at(4), OPEN_ENDED),
    ]
    assert OpportunityHistory.objects.filter(opportunity=deal).count() == 4
    assert spans_verify() == []


def test_states_at_reads_the_span_in_force(deal, org):
    manager = org["manager"]

    def state(moment):
        return [
            (s.stage_key, s.status, s.amount) for s in states_at(manager, "project-funnel", moment)
        ]

    assert state(at(1) - dt.timedelta(microseconds=1)) == []
    assert state(at(1)) == [("discover", "open", 100)]
    assert state(at(3) - dt.timedelta(microseconds=1)) == [("discover", "open", 250.5)]
    assert state(at(3)) == [("intent", "open", 250.5)]
    assert state(at(20)) == [("intent", "lost", 250.5)]
    assert [
        s.opportunity_id for s in states_at(manager, "project-funnel", at(3), open_in="intent")
    ] == [deal.pk]
    assert states_at(manager, "project-funnel", at(3), open_in="discover") == []


def test_the_visibility_rule_holds_for_spans(deal, org):
    assert spans_in_force(org["sh_seller"], "project-funnel", at(20)).count() == 0
    assert spans_in_force(org["seller"], "project-funnel", at(20)).count() == 1
    assert spans_in_force(org["executive"], "project-funnel", at(20)).count() == 1
    assert spans_in_force(org["sh_manager"], "project-funnel", at(20)).count() == 0
    assert spans_in_force(None, "project-funnel", at(20)).count() == 0
    assert not spans_in_force(
        org["executive"], "project-funnel", at(20), owner_id=org["sh_seller"].pk
    )
    assert spans_in_force(org["executive"], "project-funnel", at(20), owner_id=org["seller"].pk)


def test_rebuild_gives_the_same_spans_and_verify_finds_tampering(deal, walker):
    walker.to(walker.create(name="other"), "recognition")
    before = sorted(StateSpan.objects.values_list(*_columns()))

    assert spans_rebuild() == len(before) == OpportunityHistory.objects.count()
    assert sorted(StateSpan.objects.values_list(*_columns())) == before

    StateSpan.objects.filter(opportunity=deal, status="lost").update(amount=1)
    problems = spans_verify()
    assert len(problems) == 2
    assert problems[0].startswith("missing span: ") and problems[1].startswith("span not in")
    with pytest.raises(CommandError, match="2 inconsistencies"):
        call_command("analytics", "verify", stdout=io.StringIO(), stderr=io.StringIO())
    out = io.StringIO()
    call_command("analytics", "rebuild", stdout=out)
    assert f"{len(before)} state spans" in out.getvalue()
    assert caches_verify() == []


def test_a_missing_span_is_found_and_rebuilt(deal):
    StateSpan.objects.filter(opportunity=deal, valid_to=OPEN_ENDED).delete()
    assert [p.split(":")[0] for p in spans_verify()] == ["missing span"]
    assert caches_rebuild()["spans"] == 4
    assert spans_verify() == []


def test_the_migration_fills_spans_for_history_already_there(deal, walker):
    from importlib import import_module

    migration = import_module("loudou.analytics.migrations.0003_state_spans")
    before = sorted(StateSpan.objects.values_list(*_columns()))
    StateSpan.objects.all().delete()

    class Editor:
        pass

    editor = Editor()
    editor.connection = connection
    migration.fill_spans(None, editor)
    assert sorted(StateSpan.objects.values_list(*_columns())) == before


def _columns() -> tuple[str, ...]:
    return ("opportunity_id", "stage_id", "status", "owner_id", "amount", "probability",
            "close_date", "valid_from", "valid_to")  # fmt: skip
