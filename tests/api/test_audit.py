"""GET /api/v1/audit-events: the audit log for managers, executives and administrators, with the
pages' filters and visibility; 401 anonymous, 403 sellers, never another branch's objects."""

import json
from typing import Any

import pytest

from loudou.core.models import AuditEvent
from loudou.core.selectors import (
    audit_events_visible_to,
)
from loudou.pipeline import services as ps
from tests.web.test_audit_page import (
    APPROVAL_COMMENT,
    BJ_DEAL,
    OVERRIDE_REASON,
    ROLE_CHANGE_DAY,
    SH_ACCOUNT,
    SH_DEAL,
    build_world,
)

URL = "audit-events"


@pytest.fixture
def world(org: dict[str, Any], walker: Any) -> dict[str, Any]:
    return build_world(org, walker)


def all_ids(client: Any, **params: Any) -> list[int]:
    """Every event id of the list, walked by cursor."""
    ids: list[int] = []
    cursor = ""
    while cursor is not None:
        answer = client.get(URL, {**params, "cursor": cursor, "page_size": 7}).json()
        ids += [e["id"] for e in answer["results"]]
        cursor = answer["next_cursor"]
    return ids


def test_anonymous_callers_get_401(anonymous: Any, world: dict[str, Any]) -> None:
    response = anonymous.get(URL)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_sellers_get_403_problem(api_for: Any, world: dict[str, Any]) -> None:
    for name in ("seller", "sh_seller", "teammate"):
        client = api_for(name)
        for params in ({}, {"subject_kind": "opportunity", "subject_id": world["bj"].pk}):
            response = client.get(URL, params)
            assert response.status_code == 403
            assert response["Content-Type"].startswith("application/problem+json")
            problem = response.json()
            assert problem["code"] == "permission_denied"
            assert SH_DEAL not in response.content.decode()
            assert BJ_DEAL not in response.content.decode()


def test_a_manager_reads_beijing_never_shanghai(
    api_for: Any, world: dict[str, Any], org: dict[str, Any]
) -> None:
    manager = api_for("manager")
    answer = manager.get(URL, {"page_size": 200})
    assert answer.status_code == 200
    data = answer.json()
    expected = list(
        audit_events_visible_to(org["manager"]).order_by("-at", "-id").values_list("pk", flat=True)
    )
    assert data["count"] == len(expected)
    assert [e["id"] for e in data["results"]] == expected
    text = answer.content.decode()
    for secret in (SH_DEAL, SH_ACCOUNT, "上海特批", "上海同意", "上海联系人", "sh_seller"):
        assert secret not in text, secret
    assert BJ_DEAL in text and OVERRIDE_REASON in text
    # By cursor, the same rows in the same order.
    assert all_ids(manager) == expected
    # Another branch's deal or account as the subject: 404, as if it did not exist.
    for kind, pk in (("opportunity", world["sh"].pk), ("account", world["sh"].account_id)):
        response = manager.get(URL, {"subject_kind": kind, "subject_id": pk})
        assert response.status_code == 404
        assert response.json()["code"] == "not_found"
        assert SH_DEAL not in response.content.decode()
    assert manager.get(URL, {"q": SH_DEAL}).json()["count"] == 0


def test_the_shanghai_manager_reads_the_reverse(
    api_for: Any, world: dict[str, Any], org: dict[str, Any]
) -> None:
    sh_manager = api_for("sh_manager")
    answer = sh_manager.get(URL, {"page_size": 200})
    text = answer.content.decode()
    assert answer.json()["count"] == audit_events_visible_to(org["sh_manager"]).count()
    assert SH_DEAL in text and "上海特批" in text
    for secret in (BJ_DEAL, OVERRIDE_REASON, APPROVAL_COMMENT, "华北电力集团", "王总"):
        assert secret not in text, secret


@pytest.mark.parametrize("name", ["executive", "admin"])
def test_executives_and_administrators_read_everything(
    api_for: Any, world: dict[str, Any], name: str
) -> None:
    client = api_for(name)
    # Their own token creation is an event too: counted after it.
    total = AuditEvent.objects.count()
    data = client.get(URL, {"page_size": 200}).json()
    assert data["count"] == total
    text = json.dumps(data, ensure_ascii=False)
    assert SH_DEAL in text and BJ_DEAL in text


def test_an_override_and_an_approval_carry_actor_and_reason(
    api_for: Any, world: dict[str, Any], org: dict[str, Any]
) -> None:
    manager = api_for("manager")
    overrides = manager.get(URL, {"action": "gate.override"}).json()
    assert overrides["count"] == 1
    event = overrides["results"][0]
    assert event["actor"] == {"id": org["manager"].pk, "username": "manager", "name": "manager"}
    assert event["action_label"] == "Gate overridden"
    assert event["reason"] == OVERRIDE_REASON
    assert event["subject"] == {"kind": "opportunity", "id": world["bj"].pk, "name": BJ_DEAL}
    assert event["object_type"] == "opportunity"
    missing = {c["field"]: c for c in event["changes"]}["missing"]
    assert missing["before"] is None
    assert "The customer accepts buying packaged software" in missing["after"]
    approvals = manager.get(URL, {"action": "approval.approve"}).json()["results"]
    assert len(approvals) == 1
    approved = approvals[0]
    assert approved["actor"]["username"] == "manager"
    assert approved["reason"] == APPROVAL_COMMENT
    assert approved["object_type"] == "approval"
    assert approved["subject"]["id"] == world["bj"].pk
    status = {c["field"]: c for c in approved["changes"]}["status"]
    assert (status["before"], status["after"]) == ("Pending", "Approved")
    assert approved["before"]["status"] == "pending" and approved["after"]["status"] == "approved"
    roles = manager.get(URL, {"action": "user.role_change"}).json()["results"]
    assert {r["object_repr"] for r in roles} == {"teammate", "seller"}
    assert {r["actor"]["username"] for r in roles} == {"admin"}


def test_filters_give_exact_counts(
    api_for: Any, world: dict[str, Any], org: dict[str, Any]
) -> None:
    manager, executive = api_for("manager"), api_for("executive")

    def count(client: Any, **params: Any) -> int:
        answer = client.get(URL, params)
        assert answer.status_code == 200, answer.content
        return int(answer.json()["count"])

    assert count(manager, action="gate.override") == 1
    assert count(executive, action="gate.override") == 2
    assert count(manager, object_type="approval") == 2
    assert count(executive, object_type="approval") == 4
    assert count(executive, actor_id=org["admin"].pk) == 4
    assert count(executive, action="user.role_change") == 4
    day = ROLE_CHANGE_DAY.isoformat()
    # Whole days in the caller's zone (Asia/Shanghai).
    assert count(executive, date_from=day, date_to=day) == 2
    assert count(executive, date_to=day, action="user.role_change") == 3
    assert count(manager, date_from=day, date_to=day) == 1
    on_deal = AuditEvent.objects.filter(
        content_type__model="opportunity", object_id=str(world["bj"].pk)
    ).count()
    assert count(manager, q="电力财务") == on_deal + 2
    assert count(manager, subject_kind="opportunity", subject_id=world["bj"].pk) == on_deal + 2
    assert (
        count(manager, subject_kind="opportunity", subject_id=world["bj"].pk, action="team.add")
        == 0
    )
    assert count(manager, subject_kind="account", subject_id=world["bj"].account_id) == 3
    assert count(executive, subject_kind="opportunity", subject_id=world["sh"].pk) > 0


def test_invalid_filters_are_422(api_for: Any, world: dict[str, Any]) -> None:
    manager = api_for("manager")
    for params in (
        {"action": "opportunity.delete"},
        {"object_type": "invoice"},
        {"subject_kind": "quote", "subject_id": 1},
        {"subject_kind": "opportunity"},
        {"date_from": "not-a-date"},
        {"actor_id": 0},
    ):
        response = manager.get(URL, params)
        assert response.status_code == 422, params
        assert response.json()["code"] == "validation_failed"


def test_escaped_text_comes_back_as_written(api_for: Any, walker: Any, org: dict[str, Any]) -> None:
    nasty = '<script>alert("x")</script>'
    opp = walker.create(name="Deal")
    ps.opportunity_advance(
        opportunity=opp, to_stage="intent", actor=org["manager"], override_reason=nasty
    )
    data = api_for("manager").get(URL, {"action": "gate.override"}).json()
    assert [e["reason"] for e in data["results"]] == [nasty]


def test_labels_in_chinese(api_for: Any, world: dict[str, Any]) -> None:
    data = api_for("manager", "zh-hans").get(URL, {"action": "opportunity.advance"}).json()
    stage = {c["field"]: c for c in data["results"][0]["changes"]}["stage"]
    assert (stage["before"], stage["after"]) == ("发掘潜在商机", "确认客户意向")


def test_query_count_does_not_grow_with_rows(
    api_for: Any,
    world: dict[str, Any],
    walker: Any,
    org: dict[str, Any],
    django_assert_max_num_queries: Any,
) -> None:
    from tests.web.test_audit_page import add_deals

    add_deals(walker, org, 1)
    manager = api_for("manager")
    manager.get(URL)
    with django_assert_max_num_queries(40) as few:
        assert manager.get(URL, {"page_size": 200}).status_code == 200
    add_deals(walker, org, 6)
    with django_assert_max_num_queries(len(few.captured_queries)):
        data = manager.get(URL, {"page_size": 200}).json()
    assert len(data["results"]) == data["count"] > 50
