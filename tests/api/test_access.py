"""Every operation of the OpenAPI document: anonymous callers get 401; a seller of another
branch gets 404 for objects they may not see, with a valid request, and nothing changes."""

import datetime as dt
import re
from typing import Any

import pytest
from django.utils import timezone

from loudou.api.api import api
from loudou.core.models import AuditEvent
from loudou.pipeline import services as ps
from loudou.pipeline.models import Opportunity
from tests.api.conftest import ApiClient

FUTURE = (timezone.localdate() + dt.timedelta(days=90)).isoformat()
LINES = [{"category": "software", "description": "Licences", "unit_price": "100000"}]


def operations() -> list[tuple[str, str]]:
    """(method, path template) of every operation, e.g. ("post", "/api/v1/accounts")."""
    document = api.get_openapi_schema(path_prefix="/api/v1/")
    return sorted((method, path) for path, ops in document["paths"].items() for method in ops)


def valid_body(method: str, template: str, ids: dict[str, Any]) -> Any:
    """A body the operation accepts (so that a refusal cannot come from validation)."""
    tail = template.removeprefix("/api/v1/")
    bodies: dict[tuple[str, str], Any] = {
        ("post", "accounts"): {"name": "新客户"},
        ("patch", "accounts/{account_id}"): {"it_need": "ERP"},
        ("post", "accounts/{account_id}/contacts"): {"name": "李工"},
        ("patch", "accounts/{account_id}/contacts/{contact_id}"): {"title": "CTO"},
        ("post", "opportunities"): {
            "account_id": ids["account_id"],
            "name": "New deal",
            "amount": "100",
            "close_date": FUTURE,
        },
        ("patch", "opportunities/{opportunity_id}"): {"expected_version": 1, "amount": "1"},
        ("post", "opportunities/{opportunity_id}/advance"): {"to_stage": "intent"},
        ("post", "opportunities/{opportunity_id}/regress"): {"to_stage": "discover", "reason": "x"},
        ("post", "opportunities/{opportunity_id}/win"): {},
        ("post", "opportunities/{opportunity_id}/lose"): {"reason": "price"},
        ("post", "opportunities/{opportunity_id}/reopen"): {"reason": "x"},
        ("post", "opportunities/{opportunity_id}/reassign"): {"owner_id": ids["seller"]},
        ("post", "opportunities/{opportunity_id}/evidence"): {
            "criterion": "interested",
            "note": "x",
        },
        ("post", "opportunities/{opportunity_id}/approvals"): {
            "requirement": "r",
            "budget": "100",
            "timeline": "t",
            "selection_team": "s",
        },
        ("post", "opportunities/{opportunity_id}/approvals/{approval_id}/decision"): {
            "approve": True
        },
        ("post", "opportunities/{opportunity_id}/team"): {
            "user_id": ids["seller"],
            "role": "presales_consultant",
        },
        ("post", "opportunities/{opportunity_id}/competitors"): {"name": "Kingdee"},
        ("patch", "opportunities/{opportunity_id}/competitors/{row_id}"): {"notes": "x"},
        ("post", "opportunities/{opportunity_id}/key-dates"): {"kind": "bid", "planned": FUTURE},
        ("post", "opportunities/{opportunity_id}/objections"): {"text": "Too dear"},
        ("post", "opportunities/{opportunity_id}/objections/{objection_id}/answer"): {
            "answer": "Phased licences"
        },
        ("post", "opportunities/{opportunity_id}/quotes"): {
            "kind": "preliminary",
            "lines": LINES,
        },
        ("post", "opportunities/{opportunity_id}/activities"): {
            "kind": "call",
            "subject": "Call the CIO",
            "due_on": FUTURE,
        },
        ("post", "opportunities/{opportunity_id}/activities/{activity_id}/complete"): {},
    }
    return bodies.get((method, tail), {})


def fill(template: str, ids: dict[str, Any]) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: str(ids.get(m.group(1), 1)), template)


@pytest.fixture
def hidden(org: dict[str, Any], sh_deal: Opportunity) -> dict[str, Any]:
    """Ids of a Shanghai deal with one row of every kind around it."""
    sh = org["sh_seller"]
    approval = ps.approval_request(
        opportunity=sh_deal,
        actor=sh,
        requirement="r",
        budget="100",
        timeline="t",
        selection_team="s",
    )
    member = ps.team_member_add(
        opportunity=sh_deal, actor=sh, user=org["sh_manager"], role="branch_gm"
    )
    row = ps.competitor_add(opportunity=sh_deal, actor=sh, name="Kingdee")
    objection = ps.objection_raise(opportunity=sh_deal, actor=sh, text="Too dear")
    quote = ps.quote_create(opportunity=sh_deal, actor=sh, kind="preliminary", lines=LINES)
    activity = ps.activity_plan(
        opportunity=sh_deal, actor=sh, kind="call", subject="Call", due_on=timezone.localdate()
    )
    contact = sh_deal.account.contacts.create(name="张总")
    return {
        "opportunity_id": sh_deal.pk,
        "account_id": sh_deal.account_id,
        "contact_id": contact.pk,
        "approval_id": approval.pk,
        "member_id": member.pk,
        "row_id": row.pk,
        "objection_id": objection.pk,
        "quote_id": quote.pk,
        "activity_id": activity.pk,
        "key": "project-funnel",
        "seller": org["seller"].pk,
    }


def call(client: ApiClient, method: str, url: str, body: Any) -> Any:
    if method == "get":
        return client.get(url)
    if method == "delete":
        return client.delete(url)
    return getattr(client, method)(url, body)


def test_every_operation_refuses_anonymous_callers(anonymous: ApiClient, db: Any) -> None:
    ops = operations()
    assert len(ops) >= 50
    for method, template in ops:
        response = call(anonymous, method, fill(template, {"key": "project-funnel"}), {})
        assert response.status_code == 401, (method, template, response.content)
        assert response.json()["code"] == "not_authenticated"


def test_another_branchs_seller_gets_404_and_changes_nothing(
    api_for: Any, hidden: dict[str, Any], sh_deal: Opportunity
) -> None:
    seller = api_for("seller")
    events = AuditEvent.objects.count()
    sh_deal.refresh_from_db()
    before = (sh_deal.version, sh_deal.stage_id, sh_deal.status, sh_deal.history.count())
    checked = 0
    for method, template in operations():
        if "{" not in template or "{key}" in template or "{playbook_key}" in template:
            continue  # lists and creates are scoped, not refused; playbooks are for everyone
        response = call(
            seller, method, fill(template, hidden), valid_body(method, template, hidden)
        )
        assert response.status_code == 404, (method, template, response.content)
        assert response.json()["code"] == "not_found"
        checked += 1
    assert checked >= 35
    assert AuditEvent.objects.count() == events
    sh_deal.refresh_from_db()
    assert (sh_deal.version, sh_deal.stage_id, sh_deal.status, sh_deal.history.count()) == before


def test_creating_on_a_hidden_account_is_refused(api_for: Any, hidden: dict[str, Any]) -> None:
    body = valid_body("post", "/api/v1/opportunities", hidden)
    response = api_for("seller").post("opportunities", body)
    assert response.status_code == 422
    assert response.json()["errors"] == [{"field": "account_id", "message": "unknown"}]
    assert not Opportunity.objects.filter(name="New deal").exists()


def test_lists_leave_out_what_the_caller_may_not_see(
    api_for: Any, hidden: dict[str, Any], walker: Any
) -> None:
    mine = walker.create()
    seller = api_for("seller")
    assert [o["id"] for o in seller.get("opportunities").json()["results"]] == [mine.pk]
    assert hidden["account_id"] not in [a["id"] for a in seller.get("accounts").json()["results"]]
    sh = api_for("sh_seller")
    assert [o["id"] for o in sh.get("opportunities").json()["results"]] == [
        hidden["opportunity_id"]
    ]
    manager = api_for("north_manager")
    assert [o["id"] for o in manager.get("opportunities").json()["results"]] == [mine.pk]
    everyone = api_for("executive").get("opportunities").json()
    assert everyone["count"] == 2
