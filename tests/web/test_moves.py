"""Stage moves from the web (board drags and the opportunity page's buttons): gates answer
with a dialog of what is missing, evidence typed there is kept, refusals change nothing."""

import json
from typing import Any

from loudou.pipeline.models import CriterionEvidence, GateOverride, Opportunity

INTENT_NOTES = {
    "evidence.intent.interested": "CIO asked for a second meeting",
    "evidence.intent.accepts_packaged": "No in-house build",
    "evidence.intent.preliminary_requirements": "Requirement list received",
    "evidence.intent.contacting_vendors": "Met two vendors",
}


def state(opp: Opportunity) -> tuple[Any, ...]:
    opp.refresh_from_db()
    return (opp.stage.key, opp.status, opp.version, opp.history.count())


def move(client: Any, opp: Opportunity, **data: str) -> Any:
    data.setdefault("version", str(opp.version))
    return client.post(f"/opportunities/{opp.pk}/move/", data, HTTP_HX_REQUEST="true")


def test_refused_gate_lists_the_missing_criteria_and_changes_nothing(
    walker: Any, client_for: Any
) -> None:
    opp = walker.create()
    before = state(opp)
    response = move(client_for("seller"), opp, to_stage="intent")
    assert response.status_code == 409
    html = response.content.decode()
    assert "4 criteria do not hold yet" in html
    for field in INTENT_NOTES:
        assert f'name="{field}"' in html
    assert state(opp) == before


def test_gate_dialog_in_chinese(walker: Any, client_for: Any) -> None:
    opp = walker.create()
    html = move(client_for("seller", "zh-hans"), opp, to_stage="intent").content.decode()
    assert "确认客户意向" in html
    assert "客户对我们的产品感兴趣" in html or "客户" in html


def test_evidence_in_the_dialog_opens_the_gate(walker: Any, client_for: Any) -> None:
    opp = walker.create()
    response = move(client_for("seller"), opp, to_stage="intent", **INTENT_NOTES)
    assert response.status_code == 204
    events = json.loads(response["HX-Trigger"])
    assert events["boardChanged"] is True and events["closeModal"] is True
    assert state(opp)[:2] == ("intent", "open")
    assert (
        CriterionEvidence.objects.filter(opportunity=opp, criterion__stage__key="intent").count()
        == 4
    )


def test_evidence_typed_is_kept_when_the_gate_still_refuses(walker: Any, client_for: Any) -> None:
    opp = walker.create()
    partial = dict(list(INTENT_NOTES.items())[:2])
    response = move(client_for("seller"), opp, to_stage="intent", **partial)
    assert response.status_code == 409
    assert "2 criteria do not hold yet" in response.content.decode()
    assert state(opp)[0] == "discover"
    notes = set(CriterionEvidence.objects.filter(opportunity=opp).values_list("note", flat=True))
    assert set(partial.values()) <= notes


def test_manager_overrides_with_a_reason_seller_cannot(walker: Any, client_for: Any) -> None:
    opp = walker.create()
    before = state(opp)
    refused = move(client_for("seller"), opp, to_stage="intent", override_reason="trust me")
    assert refused.status_code == 409
    assert "Only a manager" in refused.content.decode()
    assert state(opp) == before and not GateOverride.objects.exists()

    assert (
        'name="override_reason"'
        in move(client_for("manager"), opp, to_stage="intent").content.decode()
    )
    done = move(client_for("manager"), opp, to_stage="intent", override_reason="CEO sponsor")
    assert done.status_code == 204
    assert state(opp)[0] == "intent"
    assert GateOverride.objects.get(opportunity=opp).reason == "CEO sponsor"


def test_stale_version_is_a_conflict_and_changes_nothing(walker: Any, client_for: Any) -> None:
    opp = walker.create()
    stale = str(opp.version)
    walker.to(opp, "intent")
    opp.refresh_from_db()
    before = state(opp)
    response = move(client_for("seller"), opp, to_stage="project", version=stale)
    assert response.status_code == 409
    assert "Someone else changed this opportunity" in response.content.decode()
    assert state(opp) == before


def test_moving_back_asks_why_then_moves(walker: Any, client_for: Any) -> None:
    opp = walker.to(walker.create(), "intent")
    client = client_for("seller")
    ask = move(client, opp, to_stage="discover")
    assert ask.status_code == 200 and 'name="reason"' in ask.content.decode()
    assert state(opp)[0] == "intent"
    empty = move(client, opp, to_stage="discover", reason="  ")
    assert empty.status_code == 400 and state(opp)[0] == "intent"
    assert move(client, opp, to_stage="discover", reason="Budget frozen").status_code == 204
    assert state(opp)[0] == "discover"
    assert opp.history.order_by("-id").first().reason == "Budget frozen"


def test_lose_needs_a_reason_and_reopen_brings_it_back(walker: Any, client_for: Any) -> None:
    opp = walker.create()
    client = client_for("seller")
    ask = move(client, opp, to_stage="__lost__")
    assert ask.status_code == 200 and 'value="price"' in ask.content.decode()
    assert move(client, opp, to_stage="__lost__", reason="").status_code == 400
    assert state(opp)[1] == "open"
    assert (
        move(client, opp, to_stage="__lost__", reason="price", lost_to="Rival").status_code == 204
    )
    opp.refresh_from_db()
    assert (opp.status, opp.lost_reason.key, opp.lost_to.name) == ("lost", "price", "Rival")
    assert move(client, opp, to_stage="intent").status_code == 400  # closed: reopen first
    assert move(client, opp, to_stage="__reopen__", reason="They came back").status_code == 204
    assert state(opp)[:2] == ("discover", "open")


def test_win_from_negotiation_checks_the_closing_gate(walker: Any, client_for: Any) -> None:
    opp = walker.to(walker.create(), "negotiation")
    before = state(opp)
    refused = move(client_for("seller"), opp, to_stage="__won__")
    assert refused.status_code == 409
    assert "No formal quote has been submitted." in refused.content.decode()
    assert state(opp) == before


def test_only_those_who_see_the_deal_may_move_it(walker: Any, client_for: Any, client: Any) -> None:
    opp = walker.create()
    before = state(opp)
    for name in ["tj_seller", "sh_seller", "sh_manager"]:
        assert move(client_for(name), opp, to_stage="intent", **INTENT_NOTES).status_code == 404
    assert client.post(f"/opportunities/{opp.pk}/move/", {"to_stage": "intent"}).status_code == 302
    assert client_for("seller").get(f"/opportunities/{opp.pk}/move/").status_code == 405
    assert state(opp) == before
    assert not CriterionEvidence.objects.filter(
        opportunity=opp, criterion__stage__key="intent"
    ).exists()


def test_unknown_stage_is_refused(walker: Any, client_for: Any) -> None:
    opp = walker.create()
    before = state(opp)
    assert move(client_for("seller"), opp, to_stage="nope").status_code == 400
    assert move(client_for("seller"), opp, to_stage="target").status_code == 400
    assert state(opp) == before
