"""The work around an opportunity through the API: 立项, team, competitors, key dates,
objections, quotes, activities."""

import datetime as dt
from typing import Any

from django.utils import timezone

from loudou.pipeline.models import (
    Activity,
    ApprovalStatus,
    KeyDate,
    Objection,
    ProjectApproval,
    Quote,
    TeamMember,
)
from tests.conftest import PRELIMINARY_LINES

APPROVAL = {
    "requirement": "Group finance sharing",
    "budget": "1200000",
    "timeline": "Decide by Q1",
    "selection_team": "CIO leads",
}


def test_approval_request_decision_and_inbox(api_for: Any, walker: Any) -> None:
    opp = walker.to(walker.create(), "intent")
    seller, manager = api_for("seller"), api_for("manager")
    created = seller.post(f"opportunities/{opp.pk}/approvals", APPROVAL)
    assert created.status_code == 201
    approval = created.json()
    assert (approval["status"], approval["budget"]) == ("pending", "1200000.00")
    twice = seller.post(f"opportunities/{opp.pk}/approvals", APPROVAL)
    assert twice.status_code == 422
    assert [a["id"] for a in manager.get("approvals").json()] == [approval["id"]]
    assert seller.get("approvals").json() == []
    base = f"opportunities/{opp.pk}/approvals/{approval['id']}"
    own = seller.post(f"{base}/decision", {"approve": True})
    assert own.status_code == 403
    no_reason = manager.post(f"{base}/decision", {"approve": False})
    assert no_reason.status_code == 422
    assert ProjectApproval.objects.get().status == ApprovalStatus.PENDING
    decided = manager.post(f"{base}/decision", {"approve": True, "comment": "Go"})
    assert decided.status_code == 200
    assert (decided.json()["status"], decided.json()["decided_by"]["username"]) == (
        "approved",
        "manager",
    )
    assert [a["status"] for a in seller.get(f"opportunities/{opp.pk}/approvals").json()] == [
        "approved"
    ]


def test_withdraw_by_the_requester(api_for: Any, walker: Any) -> None:
    opp = walker.to(walker.create(), "intent")
    seller = api_for("seller")
    approval = seller.post(f"opportunities/{opp.pk}/approvals", APPROVAL).json()
    url = f"opportunities/{opp.pk}/approvals/{approval['id']}/withdraw"
    assert api_for("manager").post(url).status_code == 403
    done = seller.post(url)
    assert done.status_code == 200 and done.json()["status"] == "withdrawn"
    wrong_deal = seller.post(
        f"opportunities/{walker.create('other').pk}/approvals/{approval['id']}/withdraw"
    )
    assert wrong_deal.status_code == 404


def test_team(api_for: Any, walker: Any, org: dict[str, Any]) -> None:
    opp = walker.create()
    seller = api_for("seller")
    added = seller.post(
        f"opportunities/{opp.pk}/team",
        {"user_id": org["teammate"].pk, "role": "presales_consultant"},
    )
    assert added.status_code == 201
    member = added.json()
    assert (member["user"]["username"], member["role"]["key"]) == (
        "teammate",
        "presales_consultant",
    )
    # The teammate now sees the deal (the visibility rule's team path).
    assert api_for("teammate").get(f"opportunities/{opp.pk}").status_code == 200
    bad = seller.post(
        f"opportunities/{opp.pk}/team", {"user_id": org["teammate"].pk, "role": "chef"}
    )
    assert bad.status_code == 422
    assert [m["id"] for m in seller.get(f"opportunities/{opp.pk}/team").json()] == [member["id"]]
    gone = seller.delete(f"opportunities/{opp.pk}/team/{member['id']}")
    assert gone.status_code == 204
    assert not TeamMember.objects.exists()


def test_competitors(api_for: Any, walker: Any) -> None:
    opp = walker.create()
    seller = api_for("seller")
    row = seller.post(
        f"opportunities/{opp.pk}/competitors", {"name": "德勤", "kind": "consultant"}
    ).json()
    assert row["competitor"] == {
        "id": row["competitor"]["id"],
        "name": "德勤",
        "kind": "consultant",
    }
    changed = seller.patch(
        f"opportunities/{opp.pk}/competitors/{row['id']}",
        {"notes": "Advises the CFO", "active": False},
    )
    assert changed.status_code == 200
    assert (changed.json()["notes"], changed.json()["active"]) == ("Advises the CFO", False)
    listed = seller.get(f"opportunities/{opp.pk}/competitors").json()
    assert [r["competitor"]["name"] for r in listed] == ["德勤"]


def test_key_dates(api_for: Any, walker: Any) -> None:
    opp = walker.create()
    seller = api_for("seller")
    first = seller.post(
        f"opportunities/{opp.pk}/key-dates", {"kind": "bid", "planned": "2030-03-01"}
    )
    assert first.status_code == 200
    moved = seller.post(
        f"opportunities/{opp.pk}/key-dates", {"kind": "bid", "planned": "2030-04-01"}
    )
    assert moved.json()["id"] == first.json()["id"]
    custom = seller.post(
        f"opportunities/{opp.pk}/key-dates", {"kind": "custom", "planned": "2030-05-01"}
    )
    assert custom.status_code == 422
    dates = seller.get(f"opportunities/{opp.pk}/key-dates").json()
    assert [(d["kind"], d["planned"]) for d in dates] == [("bid", "2030-04-01")]
    assert KeyDate.objects.count() == 1


def test_objections(api_for: Any, walker: Any) -> None:
    opp = walker.create()
    seller = api_for("seller")
    raised = seller.post(f"opportunities/{opp.pk}/objections", {"text": "Too expensive"})
    assert raised.status_code == 201 and raised.json()["status"] == "queued"
    oid = raised.json()["id"]
    answered = seller.post(
        f"opportunities/{opp.pk}/objections/{oid}/answer", {"answer": "Phased licences"}
    )
    assert answered.status_code == 200
    assert (answered.json()["status"], answered.json()["answered_by"]["username"]) == (
        "answered",
        "seller",
    )
    assert [o["answer"] for o in seller.get(f"opportunities/{opp.pk}/objections").json()] == [
        "Phased licences"
    ]
    assert Objection.objects.get().answer == "Phased licences"


def test_quotes(api_for: Any, walker: Any) -> None:
    opp = walker.create()
    seller = api_for("seller")
    lines = [
        *PRELIMINARY_LINES,
        {
            "category": "services",
            "description": "Training",
            "unit_price": "50000",
            "quantity": "2",
            "discount_percent": "10",
        },
    ]
    created = seller.post(f"opportunities/{opp.pk}/quotes", {"kind": "preliminary", "lines": lines})
    assert created.status_code == 201, created.content
    quote = created.json()
    assert (quote["version"], quote["submitted_at"]) == (1, None)
    assert quote["totals"] == {
        "software": "600000.00",
        "implementation": "300000.00",
        "services": "190000.00",
        "total": "1090000.00",
    }
    submitted = seller.post(f"opportunities/{opp.pk}/quotes/{quote['id']}/submit")
    assert submitted.status_code == 200 and submitted.json()["submitted_at"]
    again = seller.post(f"opportunities/{opp.pk}/quotes/{quote['id']}/submit")
    assert again.status_code == 422
    bad = seller.post(f"opportunities/{opp.pk}/quotes", {"kind": "formal", "lines": []})
    assert bad.status_code == 422
    assert [q["version"] for q in seller.get(f"opportunities/{opp.pk}/quotes").json()] == [1]
    assert Quote.objects.count() == 1


def test_activities(api_for: Any, walker: Any, org: dict[str, Any]) -> None:
    opp = walker.create()
    seller = api_for("seller")
    due = (timezone.localdate() + dt.timedelta(days=3)).isoformat()
    planned = seller.post(
        f"opportunities/{opp.pk}/activities",
        {
            "kind": "demo",
            "subject": "Demo for the CFO",
            "due_on": due,
            "owner_id": org["teammate"].pk,
        },
    )
    assert planned.status_code == 201
    activity = planned.json()
    assert (activity["owner"]["username"], activity["due_on"], activity["done_at"]) == (
        "teammate",
        due,
        None,
    )
    done = seller.post(
        f"opportunities/{opp.pk}/activities/{activity['id']}/complete", {"outcome": "Liked it"}
    )
    assert done.status_code == 200 and done.json()["outcome"] == "Liked it"
    twice = seller.post(f"opportunities/{opp.pk}/activities/{activity['id']}/complete", {})
    assert twice.status_code == 422
    assert [a["subject"] for a in seller.get(f"opportunities/{opp.pk}/activities").json()] == [
        "Demo for the CFO"
    ]
    assert Activity.objects.get().outcome == "Liked it"
