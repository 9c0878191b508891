"""Accounts and contacts through the API: the same services and visibility as the web."""

from typing import Any

from loudou.core.models import AuditEvent
from loudou.customers.models import Account, Contact
from tests.conftest import credit_code


def test_list_filters_sorts_and_pages(api_for: Any, org: dict[str, Any], account: Any) -> None:
    seller = api_for("seller")
    for n in range(3):
        seller.post("accounts", {"name": f"Z 客户 {n}", "industry": "retail"})
    page = seller.get("accounts", {"page_size": 2}).json()
    assert (page["count"], page["pages"], page["page"]) == (4, 2, 1)
    assert [a["name"] for a in page["results"]] == ["Z 客户 0", "Z 客户 1"]
    assert seller.get("accounts", {"page": 2, "page_size": 2}).json()["results"][-1]["name"] == (
        "华北电力集团"
    )
    targets = seller.get("accounts", {"target": True}).json()
    assert [a["id"] for a in targets["results"]] == [account.pk]
    assert seller.get("accounts", {"industry": "retail"}).json()["count"] == 3
    assert seller.get("accounts", {"q": credit_code(1)}).json()["results"][0]["id"] == account.pk
    newest = seller.get("accounts", {"sort": "-created_at"}).json()["results"][0]
    assert newest["name"] == "Z 客户 2"
    assert seller.get("accounts", {"branch": "bj"}).json()["count"] == 4
    assert seller.get("accounts", {"branch": "sh"}).json()["count"] == 0
    unknown = seller.get("accounts", {"branch": "nowhere"})
    assert unknown.status_code == 422 and unknown.json()["errors"][0]["field"] == "branch"


def test_detail_has_the_icp_fit_and_group(api_for: Any, account: Any) -> None:
    seller = api_for("seller")
    member = seller.post(
        "accounts", {"name": "华北电力北京公司", "parent_id": account.pk, "industry": "power"}
    ).json()
    body = seller.get(f"accounts/{account.pk}").json()
    assert body["is_target"] is True
    assert body["owner"]["username"] == "seller"
    assert body["branch"]["code"] == "bj"
    assert body["industry"] == "power"
    assert body["icp_fit"] and all(c["holds"] for c in body["icp_fit"] if c["required"])
    assert [(g["depth"], g["id"]) for g in body["group"]] == [(0, account.pk), (1, member["id"])]


def test_create_goes_through_the_service(api_for: Any, org: dict[str, Any]) -> None:
    response = api_for("seller").post(
        "accounts",
        {
            "name": "  天津港集团 ",
            "credit_code": credit_code(3).lower(),
            "industry": "logistics",
            "size_band": "large",
            "organisations_count": 8,
            "revenue": "12000000000.00",
            "revenue_currency": "CNY",
        },
    )
    assert response.status_code == 201
    body = response.json()
    account = Account.objects.get(pk=body["id"])
    assert (account.name, account.credit_code, account.owner) == (
        "天津港集团",
        credit_code(3),
        org["seller"],
    )
    assert body["revenue"] == "12000000000.00"
    assert AuditEvent.objects.filter(action="account.create", object_id=str(account.pk)).exists()


def test_sellers_cannot_create_for_others(api_for: Any, org: dict[str, Any]) -> None:
    response = api_for("seller").post("accounts", {"name": "代建", "owner_id": org["teammate"].pk})
    assert response.status_code == 403
    assert not Account.objects.filter(name="代建").exists()
    managed = api_for("manager").post("accounts", {"name": "代建", "owner_id": org["teammate"].pk})
    assert managed.status_code == 201
    assert managed.json()["owner"]["username"] == "teammate"


def test_update_changes_only_what_is_sent(api_for: Any, account: Any) -> None:
    response = api_for("seller").patch(f"accounts/{account.pk}", {"employees": 5000})
    assert response.status_code == 200
    account.refresh_from_db()
    assert (account.employees, account.name, account.industry.key) == (
        5000,
        "华北电力集团",
        "power",
    )


def test_update_refusal_changes_nothing(api_for: Any, account: Any) -> None:
    response = api_for("teammate").patch(f"accounts/{account.pk}", {"name": "X"})
    assert response.status_code == 404  # the teammate is on no deal of it: hidden
    cycle = api_for("seller").patch(f"accounts/{account.pk}", {"parent_id": account.pk})
    assert cycle.status_code == 422
    account.refresh_from_db()
    assert (account.name, account.parent_id) == ("华北电力集团", None)


def test_contacts(api_for: Any, account: Any) -> None:
    seller = api_for("seller")
    created = seller.post(
        f"accounts/{account.pk}/contacts",
        {
            "name": "李工",
            "title": "IT 经理",
            "selection_part": "evaluator",
            "email": "li@example.cn",
        },
    )
    assert created.status_code == 201
    contact_id = created.json()["id"]
    listed = seller.get(f"accounts/{account.pk}/contacts").json()
    assert [c["name"] for c in listed] == ["李工", "王总"]
    changed = seller.patch(
        f"accounts/{account.pk}/contacts/{contact_id}", {"selection_part": "influencer"}
    )
    assert changed.status_code == 200 and changed.json()["selection_part"] == "influencer"
    assert Contact.objects.get(pk=contact_id).title == "IT 经理"
    bad = seller.post(f"accounts/{account.pk}/contacts", {"name": "X", "selection_part": "boss"})
    assert bad.status_code == 422
    assert Contact.objects.filter(account=account).count() == 2


def test_names_are_data_not_markup(api_for: Any) -> None:
    name = '<script>alert("x")</script>'
    body = api_for("seller").post("accounts", {"name": name})
    assert body.status_code == 201
    assert body.json()["name"] == name
    assert body["Content-Type"] == "application/json; charset=utf-8"
