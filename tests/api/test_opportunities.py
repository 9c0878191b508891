"""Opportunities and their stage operations through the API."""

import datetime as dt
from typing import Any

from django.utils import timezone

from loudou.core.models import AuditEvent
from loudou.pipeline.models import CriterionEvidence, GateOverride, Opportunity
from tests.conftest import (
    INTENT_EVIDENCE,
    NEGOTIATION_EVIDENCE,
    PRELIMINARY_LINES,
)

IN_60_DAYS = (timezone.localdate() + dt.timedelta(days=60)).isoformat()


def state(opp: Opportunity) -> tuple[Any, ...]:
    opp.refresh_from_db()
    return (opp.stage.key, opp.status, opp.version, opp.history.count(), str(opp.amount))


def test_create_opens_at_the_first_stage_through_its_gate(
    api_for: Any, account: Any, org: dict[str, Any]
) -> None:
    seller = api_for("seller")
    body = {
        "account_id": account.pk,
        "name": "集团财务共享",
        "amount": "1500000",
        "close_date": IN_60_DAYS,
        "source": "Referral",
        "evidence": {"need_found": "CFO described the need"},
    }
    response = seller.post("opportunities", body)
    assert response.status_code == 201, response.content
    created = response.json()
    assert created["stage"]["key"] == "discover" and created["status"] == "open"
    assert created["amount"] == "1500000.00" and created["currency"] == "CNY"
    assert created["close_date"] == IN_60_DAYS
    assert created["version"] == 1 and created["owner"]["username"] == "seller"
    assert created["gate"]["next_stage"]["key"] == "intent"
    assert created["gate"]["required"] == 4 and created["gate"]["held"] == 0
    opp = Opportunity.objects.get(pk=created["id"])
    assert opp.history.count() == 1
    refused = seller.post("opportunities", {**body, "evidence": {}, "name": "No need yet"})
    assert refused.status_code == 409
    assert refused.json()["code"] == "gate_refused"
    assert not Opportunity.objects.filter(name="No need yet").exists()


def test_list_filters_sort_and_pagination(api_for: Any, walker: Any, org: dict[str, Any]) -> None:
    today = timezone.localdate()
    a = walker.create("A deal", amount="300", close_date=today + dt.timedelta(days=10))
    b = walker.create("B deal", amount="100", close_date=today + dt.timedelta(days=40))
    c = walker.to(walker.create("C deal", amount="200"), "intent")
    seller = api_for("seller")

    def ids(**params: Any) -> list[int]:
        return [o["id"] for o in seller.get("opportunities", params).json()["results"]]

    assert ids() == [c.pk, b.pk, a.pk]
    assert ids(sort="amount") == [b.pk, c.pk, a.pk]
    assert ids(sort="-stage") == [c.pk, b.pk, a.pk]
    assert ids(stage="intent") == [c.pk]
    assert ids(status="open", close_to=(today + dt.timedelta(days=20)).isoformat()) == [a.pk]
    assert ids(close_from=(today + dt.timedelta(days=30)).isoformat(), sort="close_date") == [
        b.pk,
        c.pk,
    ]
    assert ids(owner_id=org["seller"].pk, industry="power", playbook="project-funnel") == [
        c.pk,
        b.pk,
        a.pk,
    ]
    assert ids(owner_id=org["teammate"].pk) == []
    assert ids(branch="north") == [c.pk, b.pk, a.pk] and ids(branch="sh") == []
    assert ids(q="B de") == [b.pk]
    page = seller.get("opportunities", {"page_size": 2, "page": 2}).json()
    assert (page["count"], page["pages"], [o["id"] for o in page["results"]]) == (3, 2, [a.pk])
    assert seller.get("opportunities", {"page": 9}).json()["results"] == []


def test_list_query_count_does_not_grow_with_rows(
    api_for: Any, walker: Any, django_assert_max_num_queries: Any
) -> None:
    seller = api_for("seller")
    walker.create("one")
    seller.get("opportunities")  # warms the stage cache
    with django_assert_max_num_queries(8):
        assert seller.get("opportunities").json()["count"] == 1
    for n in range(8):
        walker.to(walker.create(f"deal {n}"), "intent" if n % 2 else "discover")
    with django_assert_max_num_queries(8):
        assert seller.get("opportunities").json()["count"] == 9


def test_detail_shows_gate_progress(api_for: Any, walker: Any) -> None:
    opp = walker.to(walker.create(), "intent")
    body = api_for("seller").get(f"opportunities/{opp.pk}").json()
    assert body["stage"]["key"] == "intent"
    assert body["gate"]["next_stage"]["key"] == "project"
    keys = [c["key"] for c in body["gate"]["criteria"]]
    assert "approved" in keys or any(c["kind"] == "approval" for c in body["gate"]["criteria"])
    assert body["gate"]["held"] < body["gate"]["required"]
    zh = api_for("seller", "zh-hans").get(f"opportunities/{opp.pk}").json()
    assert zh["stage"]["name"] != body["stage"]["name"]


def test_update_with_expected_version(api_for: Any, walker: Any) -> None:
    opp = walker.create()
    seller = api_for("seller")
    response = seller.patch(
        f"opportunities/{opp.pk}",
        {"expected_version": 1, "amount": "2000000", "close_date": "2030-06-30", "reason": "Scope"},
    )
    assert response.status_code == 200
    assert response.json()["version"] == 2
    assert state(opp)[2:] == (2, 2, "2000000.00")
    missing = seller.patch(f"opportunities/{opp.pk}", {"amount": "1"})
    assert missing.status_code == 422
    assert missing.json()["errors"][0]["field"] == "expected_version"
    assert state(opp)[4] == "2000000.00"


def test_advance_with_evidence_then_regress(api_for: Any, walker: Any) -> None:
    opp = walker.create()
    seller = api_for("seller")
    advanced = seller.post(
        f"opportunities/{opp.pk}/advance",
        {"to_stage": "intent", "evidence": INTENT_EVIDENCE, "expected_version": 1},
    )
    assert advanced.status_code == 200, advanced.content
    assert advanced.json()["stage"]["key"] == "intent"
    assert CriterionEvidence.objects.filter(opportunity=opp).count() == 5
    back = seller.post(
        f"opportunities/{opp.pk}/regress",
        {"to_stage": "discover", "reason": "Customer paused", "expected_version": 2},
    )
    assert back.status_code == 200 and back.json()["stage"]["key"] == "discover"
    history = seller.get(f"opportunities/{opp.pk}/history").json()
    assert [h["action"] for h in history] == ["create", "advance", "regress"]
    assert history[-1]["reason"] == "Customer paused"
    assert history[1]["actor"]["username"] == "seller"


def test_manager_override_is_recorded(api_for: Any, walker: Any) -> None:
    opp = walker.create()
    refused = api_for("seller").post(
        f"opportunities/{opp.pk}/advance", {"to_stage": "intent", "override_reason": "Trust me"}
    )
    assert refused.status_code == 403
    assert state(opp)[0] == "discover"
    done = api_for("manager").post(
        f"opportunities/{opp.pk}/advance",
        {"to_stage": "intent", "override_reason": "Strategic account"},
    )
    assert done.status_code == 200
    assert GateOverride.objects.get(opportunity=opp).reason == "Strategic account"


def test_win_lose_reopen(api_for: Any, walker: Any, org: dict[str, Any]) -> None:
    from loudou.pipeline import services as ps

    opp = walker.to(walker.create(), "negotiation")
    ps.quote_create(
        opportunity=opp, actor=org["seller"], kind="formal", lines=PRELIMINARY_LINES, submit=True
    )
    seller = api_for("seller")
    won = seller.post(
        f"opportunities/{opp.pk}/win",
        {"evidence": {"contract_signed": "Signed on site"}, "amount": "950000"},
    )
    assert won.status_code == 200, won.content
    body = won.json()
    assert (body["status"], body["probability"], body["amount"]) == ("won", 100, "950000.00")
    reopen = seller.post(f"opportunities/{opp.pk}/reopen", {"reason": "Signed by mistake"})
    assert reopen.status_code == 403  # only managers reopen won deals
    assert state(opp)[1] == "won"
    assert (
        api_for("manager")
        .post(f"opportunities/{opp.pk}/reopen", {"reason": "Contract voided"})
        .json()["stage"]["key"]
        == "negotiation"
    )
    lost = seller.post(
        f"opportunities/{opp.pk}/lose",
        {"reason": "price", "note": "Cheaper bid", "lost_to": "Kingdee"},
    )
    assert lost.status_code == 200
    assert (lost.json()["status"], lost.json()["lost_reason"], lost.json()["lost_to"]) == (
        "lost",
        "price",
        "Kingdee",
    )
    unknown = seller.post(f"opportunities/{opp.pk}/reopen", {"reason": " "})
    assert unknown.status_code == 422
    again = seller.post(f"opportunities/{opp.pk}/reopen", {"reason": "They came back"})
    assert again.status_code == 200 and again.json()["status"] == "open"
    assert NEGOTIATION_EVIDENCE  # the walk recorded it


def test_lose_with_an_unknown_reason_changes_nothing(api_for: Any, walker: Any) -> None:
    opp = walker.create()
    before = state(opp)
    response = api_for("seller").post(f"opportunities/{opp.pk}/lose", {"reason": "bored"})
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "reason", "message": "unknown"}]
    assert state(opp) == before


def test_reassign_by_a_manager(api_for: Any, walker: Any, org: dict[str, Any]) -> None:
    opp = walker.create()
    assert (
        api_for("seller")
        .post(f"opportunities/{opp.pk}/reassign", {"owner_id": org["teammate"].pk})
        .status_code
        == 403
    )
    moved = api_for("manager").post(
        f"opportunities/{opp.pk}/reassign",
        {"owner_id": org["teammate"].pk, "reason": "Holiday", "expected_version": 1},
    )
    assert moved.status_code == 200
    assert moved.json()["owner"]["username"] == "teammate"


def test_evidence_and_criteria(api_for: Any, walker: Any) -> None:
    opp = walker.create()
    seller = api_for("seller")
    recorded = seller.post(
        f"opportunities/{opp.pk}/evidence",
        {"criterion": "intent.interested", "note": "Asked for a demo"},
    )
    assert recorded.status_code == 201
    assert recorded.json()["criterion"] == "intent.interested"
    criteria = seller.get(f"opportunities/{opp.pk}/criteria").json()
    interested = next(c for c in criteria if c["key"] == "interested")
    assert (interested["holds"], interested["reason"]) == (True, "Asked for a demo")
    assert criteria[0]["stage"] == "discover"
    system = seller.post(f"opportunities/{opp.pk}/evidence", {"criterion": "ghost", "note": "x"})
    assert system.status_code == 422
    assert CriterionEvidence.objects.filter(opportunity=opp).count() == 2
    assert AuditEvent.objects.filter(action="evidence.record").count() == 2
