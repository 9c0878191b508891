"""Exports through the API: `GET /api/v1/exports/<list>?format=csv|xlsx&<the list's filters>`
gives every row the list endpoint matches, as the caller may see them, in a file."""

import csv
import datetime as dt
import io
from typing import Any

import pytest
from django.utils import timezone
from openpyxl import load_workbook

from loudou.api.routers import exports as export_router
from loudou.api.routers.accounts import AccountFilters
from loudou.api.routers.opportunities import OpportunityFilters
from loudou.core import clock
from loudou.pipeline import services as ps
from tests.web.test_approvals_page import request_approval

TODAY = timezone.localdate()
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FORMULA = "=1+2"
PATHS = ["opportunities", "accounts", "contacts", "activities", "approvals", "stalled"]


def csv_rows(response: Any) -> list[list[str]]:
    assert response.status_code == 200, response.content[:400]
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response.content.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"), newline="")))


def xlsx_rows(response: Any) -> list[list[Any]]:
    assert response.status_code == 200, response.content[:400]
    assert response["Content-Type"] == XLSX
    sheet = load_workbook(io.BytesIO(response.content)).active
    return [[c.value for c in row] for row in sheet.iter_rows()]


def column(rows: list[list[Any]], header: str) -> list[Any]:
    index = rows[0].index(header)
    return [row[index] for row in rows[1:]]


@pytest.fixture
def deals(walker: Any, org: dict[str, Any], sh_deal: Any) -> dict[str, Any]:
    """Four deals of the Beijing seller (one named like a formula, one at intent, one lost), an
    activity on one; and the Shanghai seller's deal (sh_deal), all created 100 days ago."""
    seller = org["seller"]
    found: dict[str, Any] = {"sh": sh_deal}
    with clock.frozen_at(timezone.now() - dt.timedelta(days=100)):
        found["a"] = walker.create("A 财务共享", amount="300000", close_date=TODAY)
        found["b"] = walker.create("B 供应链", amount="100000")
        found["f"] = walker.create(FORMULA, amount="200000")
    found["c"] = walker.to(walker.create("C 人力云", amount="700000"), "intent")
    found["lost"] = ps.opportunity_lose(
        opportunity=walker.create("D 丢单", amount="50000"), actor=seller, reason="price"
    )
    found["activity"] = ps.activity_plan(
        opportunity=found["a"], actor=seller, kind="visit", subject="@拜访 CIO", due_on=TODAY
    )
    ps.activity_plan(
        opportunity=sh_deal, actor=org["sh_seller"], kind="call", subject="上海电话", due_on=TODAY
    )
    return found


@pytest.mark.parametrize("path", PATHS)
def test_anonymous_is_refused(db: Any, anonymous: Any, path: str) -> None:
    response = anonymous.get(f"exports/{path}", {"format": "csv"})
    assert response.status_code == 401
    assert response["Content-Type"].startswith("application/problem+json")
    assert response.json()["code"] == "not_authenticated"


def test_the_filters_are_the_lists_minus_its_pages() -> None:
    """A filter added to GET /opportunities or GET /accounts must be applied by its export."""
    extra = {"format", "header"}
    opp = set(export_router.OpportunityExport.model_fields) - extra
    assert opp == set(OpportunityFilters.model_fields) - export_router.PAGINATION
    assert opp == export_router.OPPORTUNITY_FILTERS
    acc = set(export_router.AccountExport.model_fields) - extra
    assert acc == set(AccountFilters.model_fields) - export_router.PAGINATION
    assert acc == export_router.ACCOUNT_FILTERS


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"status": "open", "sort": "amount"},
        {"q": "财务", "sort": "-amount"},
        {"stage": "intent"},
        {"close_to": TODAY.isoformat(), "sort": "close_date"},
        {"status": "lost", "branch": "bj"},
        {"sort": "stage"},
    ],
)
def test_opportunities_are_the_lists_rows_on_every_page(
    deals: dict[str, Any], api_for: Any, params: dict[str, str]
) -> None:
    seller = api_for("seller")
    listed = []
    page = 1
    while True:
        body = seller.get("opportunities", {**params, "page": page, "page_size": 2}).json()
        listed += [str(o["id"]) for o in body["results"]]
        if page >= body["pages"]:
            break
        page += 1
    assert listed
    rows = csv_rows(seller.get("exports/opportunities", {**params, "format": "csv"}))
    assert column(rows, "ID") == listed
    sheet = xlsx_rows(seller.get("exports/opportunities", {**params, "format": "xlsx"}))
    assert [str(v) for v in column(sheet, "ID")] == listed


def test_another_branch_sees_only_its_own_rows(deals: dict[str, Any], api_for: Any) -> None:
    sh = csv_rows(api_for("sh_seller").get("exports/opportunities"))
    assert column(sh, "Opportunity") == ["上汽财务共享"]
    bj = csv_rows(api_for("seller").get("exports/opportunities"))
    assert "上汽财务共享" not in column(bj, "Opportunity")
    assert len(bj) == 1 + 5
    # Naming the other branch or its account finds nothing.
    asked = api_for("seller").get("exports/opportunities", {"branch": "sh"})
    assert csv_rows(asked)[1:] == []
    account = deals["sh"].account_id
    assert (
        csv_rows(api_for("seller").get("exports/opportunities", {"account_id": account}))[1:] == []
    )
    accounts = csv_rows(api_for("sh_seller").get("exports/accounts"))
    assert column(accounts, "Account") == ["上海汽车集团"]
    activities = csv_rows(api_for("sh_seller").get("exports/activities"))
    assert column(activities, "Subject") == ["上海电话"]


def test_values_types_and_neutralising(deals: dict[str, Any], api_for: Any) -> None:
    seller = api_for("seller")
    rows = csv_rows(seller.get("exports/opportunities", {"q": "A 财务", "header": "keys"}))
    a = deals["a"]
    assert rows[0][:5] == ["id", "name", "account.id", "account.name", "owner.username"]
    row = dict(zip(rows[0], rows[1], strict=True))
    assert row["id"] == str(a.pk) and row["name"] == "A 财务共享"
    assert row["amount"] == "300000.00" and row["currency"] == "CNY"
    assert row["close_date"] == TODAY.isoformat()
    assert row["status"] == "open" and row["stage.key"] == "discover"
    assert row["branch.code"] == "bj" and row["owner.username"] == "seller"
    assert row["probability_override"] == "" and row["lost_reason"] == ""
    formula = csv_rows(seller.get("exports/opportunities", {"q": "=1", "format": "csv"}))
    assert column(formula, "Opportunity") == ["'=1+2"]
    sheet = load_workbook(
        io.BytesIO(seller.get("exports/opportunities", {"q": "=1", "format": "xlsx"}).content)
    ).active
    headers = [c.value for c in sheet[1]]
    name = sheet.cell(2, headers.index("Opportunity") + 1)
    assert (name.value, name.data_type, name.quotePrefix) == ("=1+2", "s", True)
    amount = sheet.cell(2, headers.index("Amount") + 1)
    assert amount.data_type == "n" and amount.value == 200000
    created = sheet.cell(2, headers.index("Created at") + 1)
    assert created.is_date and isinstance(created.value, dt.datetime)
    lost = csv_rows(seller.get("exports/opportunities", {"status": "lost", "header": "keys"}))
    assert column(lost, "lost_reason") == ["price"]


def test_content_types_and_file_names(deals: dict[str, Any], api_for: Any) -> None:
    seller = api_for("seller")
    for path in PATHS:
        response = seller.get(f"exports/{path}", {"format": "xlsx"})
        assert response["Content-Type"] == XLSX
        assert response["Content-Disposition"].startswith('attachment; filename="')
        assert TODAY.isoformat() in response["Content-Disposition"]
        load_workbook(io.BytesIO(response.content))  # opens
        response = seller.get(f"exports/{path}")
        assert response["Content-Type"] == "text/csv; charset=utf-8"
    response = seller.get("exports/opportunities")
    assert response["Content-Disposition"] == (
        f'attachment; filename="opportunities-{TODAY.isoformat()}.csv"'
    )
    chinese = api_for("seller", "zh-hans").get("exports/opportunities")
    assert "filename*=UTF-8''%E5%95%86%E6%9C%BA-" in chinese["Content-Disposition"]
    header = csv_rows(chinese)[0]
    assert {"商机", "客户", "金额", "币种", "状态", "预计签约日期"} <= set(header)


def test_invalid_parameters_are_problems(deals: dict[str, Any], api_for: Any) -> None:
    seller = api_for("seller")
    bad = seller.get("exports/opportunities", {"format": "pdf"})
    assert bad.status_code == 422
    assert bad["Content-Type"].startswith("application/problem+json")
    assert bad.json()["errors"][0]["field"] == "format"
    unknown = seller.get("exports/accounts", {"branch": "nowhere"})
    assert unknown.status_code == 422 and unknown.json()["code"] == "validation_failed"
    sort = seller.get("exports/opportunities", {"sort": "password"})
    assert sort.status_code == 422


def test_accounts_filters(
    deals: dict[str, Any], account: Any, org: dict[str, Any], api_for: Any
) -> None:
    from loudou.customers.services import account_create
    from tests.conftest import credit_code

    account_create(actor=org["seller"], name="北京城建集团", credit_code=credit_code(11))
    seller = api_for("seller")
    every = csv_rows(seller.get("exports/accounts", {"sort": "-name"}))
    assert column(every, "Account") == ["华北电力集团", "北京城建集团"]
    target = xlsx_rows(seller.get("exports/accounts", {"target": "true", "format": "xlsx"}))
    assert column(target, "Account") == ["华北电力集团"]
    assert column(target, "Target account") == [True]
    assert column(target, "Employees") == [None]
    listed = [a["name"] for a in seller.get("accounts", {"sort": "-name"}).json()["results"]]
    assert listed == column(every, "Account")


def test_contacts(deals: dict[str, Any], account: Any, org: dict[str, Any], api_for: Any) -> None:
    from loudou.customers.services import contact_create

    contact_create(account=account, actor=org["seller"], name="+李工", title="IT 经理")
    seller = api_for("seller")
    rows = csv_rows(seller.get("exports/contacts"))
    assert column(rows, "Name") == ["'+李工", "王总"]
    assert column(rows, "Account") == ["华北电力集团", "华北电力集团"]
    assert column(rows, "Part in the selection team") == ["", "decision_maker"]
    one = csv_rows(seller.get("exports/contacts", {"account_id": account.pk, "q": "王"}))
    assert column(one, "Name") == ["王总"]
    part = csv_rows(seller.get("exports/contacts", {"selection_part": "decision_maker"}))
    assert column(part, "Name") == ["王总"]
    hidden = api_for("sh_seller").get("exports/contacts", {"account_id": account.pk})
    assert hidden.status_code == 404 and hidden.json()["code"] == "not_found"
    assert csv_rows(api_for("sh_seller").get("exports/contacts"))[1:] == []


def test_activities(deals: dict[str, Any], api_for: Any) -> None:
    seller = api_for("seller")
    rows = csv_rows(seller.get("exports/activities"))
    assert column(rows, "Subject") == ["'@拜访 CIO"]
    assert column(rows, "Opportunity") == ["A 财务共享"]
    assert column(rows, "Due on") == [TODAY.isoformat()]
    assert csv_rows(seller.get("exports/activities", {"done": "true"}))[1:] == []
    assert len(csv_rows(seller.get("exports/activities", {"kind": "visit"}))) == 2
    assert csv_rows(seller.get("exports/activities", {"kind": "call"}))[1:] == []
    one = seller.get("exports/activities", {"opportunity_id": deals["a"].pk})
    assert column(csv_rows(one), "ID") == [str(deals["activity"].pk)]
    hidden = seller.get("exports/activities", {"opportunity_id": deals["sh"].pk})
    assert hidden.status_code == 404


def test_approvals_waiting(deals: dict[str, Any], org: dict[str, Any], api_for: Any) -> None:
    pending = request_approval(deals["c"], org["seller"])
    manager = api_for("manager")
    rows = csv_rows(manager.get("exports/approvals"))
    assert column(rows, "ID") == [str(pending.pk)]
    assert column(rows, "Customer budget") == ["1200000.00"]
    assert column(rows, "Status") == ["pending"]
    assert [a["id"] for a in manager.get("approvals").json()] == [pending.pk]
    assert csv_rows(api_for("seller").get("exports/approvals"))[1:] == []
    assert csv_rows(api_for("sh_manager").get("exports/approvals"))[1:] == []


def test_stalled(deals: dict[str, Any], api_for: Any) -> None:
    seller = api_for("seller")
    report = seller.get("analytics/stalled").json()
    rows = xlsx_rows(seller.get("exports/stalled", {"format": "xlsx"}))
    assert column(rows, "ID") == [d["id"] for d in report["deals"]]
    assert len(report["deals"]) == 3  # the three still in discover since 100 days ago
    assert all(isinstance(v, int | float) for v in column(rows, "Amount"))
    assert all(isinstance(v, dt.datetime) for v in column(rows, "Close date"))
    sh = csv_rows(api_for("sh_seller").get("exports/stalled"))
    assert column(sh, "Deal") == []  # created today: not stalled
    assert csv_rows(seller.get("exports/stalled", {"branch": "sh"}))[1:] == []


def test_the_query_count_does_not_grow_with_the_rows(
    deals: dict[str, Any], walker: Any, org: dict[str, Any], api_for: Any
) -> None:
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    seller = api_for("seller")

    def queries(path: str) -> int:
        seller.get(path)
        with CaptureQueriesContext(connection) as captured:
            assert seller.get(path).status_code == 200
        return len(captured)

    paths = ["exports/opportunities", "exports/accounts", "exports/contacts", "exports/activities"]
    before = [queries(p) for p in paths]
    for i in range(3):
        opp = walker.create(name=f"E{i}", amount="1000")
        ps.activity_plan(
            opportunity=opp, actor=org["seller"], kind="call", subject="x", due_on=TODAY
        )
    assert [queries(p) for p in paths] == before


def test_moments_are_in_the_callers_time_zone(
    deals: dict[str, Any], org: dict[str, Any], api_for: Any
) -> None:
    import zoneinfo

    seller = org["seller"]
    seller.time_zone = "America/New_York"
    seller.save(update_fields=["time_zone"])
    rows = csv_rows(
        api_for("seller").get("exports/opportunities", {"q": "A 财务", "header": "keys"})
    )
    created = deals["a"].created_at.astimezone(zoneinfo.ZoneInfo("America/New_York"))
    assert column(rows, "created_at") == [created.strftime("%Y-%m-%d %H:%M")]
