"""Targets (业绩目标) through the API: `POST /targets` sets a person's, a branch's or the
company's monthly target through `target_set` (managers for what they manage, administrators for
everything); `GET /targets` lists the targets the caller may see."""

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from loudou.core.models import AuditEvent
from loudou.org.models import Target
from loudou.org.services import target_set

MARCH = dt.date(2026, 3, 1)


def state() -> tuple[Any, ...]:
    """Every target and the number of audit events: what a refusal must leave alone."""
    rows = Target.objects.order_by("id").values_list(
        "scope", "user_id", "branch_id", "month", "amount", "currency"
    )
    return (list(rows), AuditEvent.objects.count())


def body(scope: str, **extra: Any) -> dict[str, Any]:
    return {"scope": scope, "month": "2026-03", "amount": "1200000", **extra}


def test_admin_sets_and_replaces_the_company_target(api_for: Any, org: dict[str, Any]) -> None:
    admin = api_for("admin")
    response = admin.post("targets", body("company", amount="5000000.5", currency="usd"))
    assert response.status_code == 200, response.content
    created = response.json()
    assert created == {
        "id": created["id"],
        "scope": "company",
        "month": "2026-03",
        "user": None,
        "branch": None,
        "amount": "5000000.50",
        "currency": "USD",
    }
    again = admin.post("targets", body("company", amount="6000000")).json()
    assert again["id"] == created["id"]
    assert (again["amount"], again["currency"]) == ("6000000.00", "CNY")
    target = Target.objects.get()
    assert (target.scope, target.month, target.amount) == ("company", MARCH, Decimal("6000000"))
    events = AuditEvent.objects.filter(action="target.set").order_by("id")
    assert [e.actor_id for e in events] == [org["admin"].pk] * 2
    assert events[1].before["amount"] == "5000000.50"
    assert events[1].after["amount"] == "6000000.00"


def test_manager_sets_targets_of_their_people_and_branch(api_for: Any, org: dict[str, Any]) -> None:
    manager = api_for("manager")
    person = manager.post("targets", body("user", user_id=org["seller"].pk)).json()
    assert person["scope"] == "user" and person["user"]["username"] == "seller"
    assert person["branch"] is None and person["amount"] == "1200000.00"
    branch = manager.post(
        "targets", body("branch", branch_id=org["beijing"].pk, month="2026-04", amount="3000000")
    ).json()
    assert branch["branch"]["code"] == "bj" and branch["month"] == "2026-04"
    assert sorted(Target.objects.values_list("scope", "month", "amount")) == [
        ("branch", dt.date(2026, 4, 1), Decimal("3000000.00")),
        ("user", MARCH, Decimal("1200000.00")),
    ]
    assert AuditEvent.objects.filter(action="target.set", actor=org["manager"]).count() == 2
    # The regional manager manages the branches below: Tianjin's seller too.
    north = api_for("north_manager")
    tianjin = north.post("targets", body("user", user_id=org["tj_seller"].pk, amount="800000"))
    assert tianjin.status_code == 200 and tianjin.json()["user"]["username"] == "tj_seller"


@pytest.mark.parametrize(
    ("caller", "target"),
    [
        ("seller", ("user", "seller")),  # not even their own
        ("seller", ("branch", "beijing")),
        ("seller", ("company", None)),
        ("manager", ("user", "sh_seller")),  # another branch's seller
        ("manager", ("user", "tj_seller")),  # a sister branch
        ("manager", ("branch", "north")),  # the region above
        ("manager", ("company", None)),
        ("sh_manager", ("branch", "beijing")),
        ("executive", ("company", None)),  # the company's target is the administrators'
    ],
)
def test_refused_changes_nothing(
    api_for: Any, org: dict[str, Any], caller: str, target: tuple[str, str | None]
) -> None:
    target_set(actor=org["admin"], month=MARCH, amount="1", user=org["seller"])
    target_set(actor=org["admin"], month=MARCH, amount="2", branch=org["beijing"])
    target_set(actor=org["admin"], month=MARCH, amount="3")
    client = api_for(caller)  # before the snapshot: making its token is audited
    before = state()
    scope, who = target
    subject = {f"{scope}_id": org[who].pk} if who else {}
    response = client.post("targets", body(scope, **subject))
    assert response.status_code == 403, response.content
    assert response["Content-Type"] == "application/problem+json; charset=utf-8"
    assert response.json()["code"] == "permission_denied"
    assert state() == before


def test_executive_sets_any_branch(api_for: Any, org: dict[str, Any]) -> None:
    response = api_for("executive").post("targets", body("branch", branch_id=org["shanghai"].pk))
    assert response.status_code == 200 and response.json()["branch"]["code"] == "sh"


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        (body("user"), "user_id"),
        (body("branch"), "branch_id"),
        (body("company", branch_id=1), "branch_id"),
        (body("branch", user_id=1, branch_id=1), "user_id"),
        (body("user", user_id=999_999), "user_id"),
        (body("branch", branch_id=999_999), "branch_id"),
        (body("company", month="2026-13"), "month"),
        (body("company", month="2026-03-01"), "month"),
        (body("company", amount="-1"), "amount"),
        (body("company", amount="1.234"), "amount"),
        (body("company", currency="RMBX"), "currency"),
        (body("people"), "scope"),
        ({"scope": "company", "month": "2026-03"}, "amount"),
        (body("company", note="x"), "note"),
    ],
)
def test_invalid_input_is_422_and_changes_nothing(
    api_for: Any, org: dict[str, Any], payload: dict[str, Any], field: str
) -> None:
    admin = api_for("admin")
    before = state()
    response = admin.post("targets", payload)
    assert response.status_code == 422, response.content
    problem = response.json()
    assert problem["code"] == "validation_failed"
    assert field in [e["field"] for e in problem["errors"]]
    assert state() == before


def test_anonymous_is_401(anonymous: Any, db: Any) -> None:
    response = anonymous.post("targets", body("company"))
    assert response.status_code == 401 and response.json()["code"] == "not_authenticated"
    assert not Target.objects.exists()


def test_the_list_shows_what_the_caller_may_see(api_for: Any, org: dict[str, Any]) -> None:
    admin = org["admin"]
    made = {
        "seller": target_set(actor=admin, month=MARCH, amount="100", user=org["seller"]),
        "teammate": target_set(actor=admin, month=MARCH, amount="110", user=org["teammate"]),
        "sh_seller": target_set(actor=admin, month=MARCH, amount="120", user=org["sh_seller"]),
        "bj": target_set(actor=admin, month=MARCH, amount="500", branch=org["beijing"]),
        "sh": target_set(actor=admin, month=MARCH, amount="600", branch=org["shanghai"]),
        "company": target_set(actor=admin, month=MARCH, amount="9000"),
        "april": target_set(
            actor=admin, month=dt.date(2026, 4, 1), amount="130", user=org["seller"]
        ),
    }
    ids = {name: t.pk for name, t in made.items()}

    def seen(caller: str, **params: Any) -> list[int]:
        response = api_for(caller).get("targets", params)
        assert response.status_code == 200, response.content
        return [t["id"] for t in response.json()["results"]]

    assert seen("seller") == [ids["seller"], ids["april"]]
    assert seen("teammate") == [ids["teammate"]]
    assert seen("manager") == [ids["seller"], ids["teammate"], ids["bj"], ids["april"]]
    assert seen("sh_manager") == [ids["sh_seller"], ids["sh"]]
    assert sorted(seen("executive")) == sorted(ids.values())
    assert seen("manager", scope="branch") == [ids["bj"]]
    assert seen("manager", month_from="2026-04") == [ids["april"]]
    assert seen("manager", month_to="2026-03", user_id=org["seller"].pk) == [ids["seller"]]
    assert seen("executive", branch_id=org["shanghai"].pk) == [ids["sh"]]
    assert seen("executive", sort="-month")[0] == ids["april"]
    listed = api_for("seller").get("targets").json()
    assert listed["count"] == 2 and listed["results"][0] == {
        "id": ids["seller"],
        "scope": "user",
        "month": "2026-03",
        "user": {"id": org["seller"].pk, "username": "seller", "name": "seller"},
        "branch": None,
        "amount": "100.00",
        "currency": "CNY",
    }
    # Walked by cursor, one at a time.
    executive = api_for("executive")
    walked, cursor = [], ""
    while cursor is not None:
        page = executive.get("targets", {"cursor": cursor, "page_size": 1}).json()
        walked += [t["id"] for t in page["results"]]
        cursor = page["next_cursor"]
    assert walked == seen("executive")
