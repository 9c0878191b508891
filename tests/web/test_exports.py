"""Exports of the web lists: `?export=csv|xlsx` on a list's URL gives every row the list matches
(all its pages), with the same filters, sort and visibility as the page; text that could run as a
formula is neutralised; headers come in the reader's language."""

import csv
import datetime as dt
import io
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from openpyxl import load_workbook

from loudou.core import clock
from loudou.pipeline import services as ps
from loudou.web.views import accounts as account_views
from loudou.web.views import board as board_views
from loudou.web.views import funnel as funnel_views
from tests.web.test_approvals_page import request_approval

TODAY = timezone.localdate()
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FORMULA = '=HYPERLINK("http://x","点我")'


def csv_rows(response: Any) -> list[list[str]]:
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response.content.startswith(b"\xef\xbb\xbf")
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"), newline="")))


def xlsx_sheet(response: Any) -> Any:
    assert response.status_code == 200, response.content[:300]
    assert response["Content-Type"] == XLSX
    return load_workbook(io.BytesIO(response.content)).active


def xlsx_rows(response: Any) -> list[list[Any]]:
    return [[c.value for c in row] for row in xlsx_sheet(response).iter_rows()]


def column(rows: list[list[Any]], header: str) -> list[Any]:
    index = rows[0].index(header)
    return [row[index] for row in rows[1:]]


@pytest.fixture
def deals(walker: Any, org: dict[str, Any], sh_account: Any) -> dict[str, Any]:
    """Seven open deals of the Beijing seller created 100 days ago (stalled in discover: its
    limit is 60 days), one with a name that is a formula, one lost; and the Shanghai seller's
    上海财务云, which no Beijing user may see."""
    seller = org["seller"]
    found: dict[str, Any] = {}
    with clock.frozen_at(timezone.now() - dt.timedelta(days=100)):
        for i, amount in enumerate(["300000", "700000", "100000", "900000", "500000", "200000"]):
            found[f"D{i + 1}"] = walker.create(
                name=f"D{i + 1} 财务共享",
                amount=amount,
                close_date=TODAY + dt.timedelta(days=10 * (6 - i)),
            )
        found["formula"] = walker.create(name=FORMULA, amount="50000")
        found["sh"] = ps.opportunity_create(
            actor=org["sh_seller"],
            account=sh_account,
            name="上海财务云",
            amount="3000000",
            close_date=TODAY + dt.timedelta(days=30),
            source="Event",
            evidence={"need_found": "CFO"},
        )
    found["lost"] = ps.opportunity_lose(
        opportunity=walker.create(name="D7 丢单", amount="400000"), actor=seller, reason="price"
    )
    return found


def page_names(client: Any, url: str, params: dict[str, str]) -> list[str]:
    """The deal names the opportunity list shows over all its pages."""
    names: list[str] = []
    page = 1
    while True:
        response = client.get(url, {**params, "page": page})
        assert response.status_code == 200
        names += [card.opportunity.name for card in response.context["rows"]]
        if not response.context["page"].has_next():
            return names
        page += 1


# --- access ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/opportunities/?export=csv",
        "/board/?export=xlsx",
        "/accounts/?export=csv",
        "/accounts/1/?export=csv&list=contacts",
        "/approvals/?export=xlsx&list=mine",
        "/funnel/deals/?stage=discover&export=csv",
        "/funnel/?stage=discover&export=csv",
        "/analytics/stalled/?export=csv",
    ],
)
def test_anonymous_is_sent_to_login(db: Any, client: Any, url: str) -> None:
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/?next=")


def test_an_unknown_format_shows_the_page(deals: dict[str, Any], client_for: Any) -> None:
    response = client_for("seller").get("/opportunities/?export=pdf")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")


# --- the opportunity list -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"sort": "-amount"},
        {"sort": "name", "status": "all"},
        {"status": "all", "q": "财务共享", "sort": "-close"},
        {"status": "lost"},
    ],
)
def test_list_export_has_the_rows_of_every_page_in_order(
    deals: dict[str, Any], client_for: Any, monkeypatch: Any, params: dict[str, str]
) -> None:
    monkeypatch.setattr(board_views, "PER_PAGE", 3)
    client = client_for("seller")
    shown = page_names(client, "/opportunities/", params)
    assert shown, "the filters must match something"
    exported = csv_rows(client.get("/opportunities/", {**params, "export": "csv"}))
    assert column(exported, "Opportunity") == ["'" + n if n == FORMULA else n for n in shown]
    workbook = xlsx_rows(client.get("/opportunities/", {**params, "export": "xlsx"}))
    assert column(workbook, "Opportunity") == shown


def test_list_export_columns_and_typed_values(deals: dict[str, Any], client_for: Any) -> None:
    client = client_for("seller")
    rows = csv_rows(client.get("/opportunities/?q=D4&export=csv"))
    assert rows[0] == [
        "ID",
        "Opportunity",
        "Account",
        "Stage",
        "Status",
        "Amount",
        "Currency",
        "Probability",
        "Weighted amount",
        "Close date",
        "Owner",
        "Branch",
        "Days in stage",
        "Stalled",
        "Next stage",
        "Criteria held",
        "Criteria required",
    ]
    d4 = deals["D4"]
    assert rows[1:] == [
        [
            str(d4.pk),
            "D4 财务共享",
            "华北电力集团",
            "Discover potential opportunities",
            "Open",
            "900000.00",
            "CNY",
            "10",
            "90000.00",
            (TODAY + dt.timedelta(days=30)).isoformat(),
            "seller",
            "北京分公司",
            "100",
            "Yes",
            "Confirm customer intent",
            "0",
            "4",
        ]
    ], rows
    sheet = xlsx_sheet(client.get("/opportunities/?q=D4&export=xlsx"))
    values = {h.value: c for h, c in zip(sheet[1], sheet[2], strict=True)}
    assert values["Amount"].data_type == "n" and values["Amount"].value == 900000
    assert values["Amount"].number_format == "#,##0.00"
    assert values["Close date"].is_date
    assert values["Close date"].value == dt.datetime.combine(
        TODAY + dt.timedelta(days=30), dt.time()
    )
    assert values["Days in stage"].value == 100
    assert values["ID"].value == d4.pk


def test_a_shanghai_seller_exports_no_beijing_deal(deals: dict[str, Any], client_for: Any) -> None:
    sh = csv_rows(client_for("sh_seller").get("/opportunities/?status=all&export=csv"))
    assert column(sh, "Opportunity") == ["上海财务云"]
    bj = xlsx_rows(client_for("seller").get("/opportunities/?status=all&export=xlsx"))
    names = column(bj, "Opportunity")
    assert "上海财务云" not in names and len(names) == 8
    # Even when asking for the Shanghai branch by id.
    branch = deals["sh"].branch_id
    asked = csv_rows(client_for("seller").get(f"/opportunities/?branch={branch}&export=csv"))
    assert asked[1:] == []


def test_a_formula_name_is_neutralised(deals: dict[str, Any], client_for: Any) -> None:
    client = client_for("seller")
    rows = csv_rows(client.get("/opportunities/", {"q": "HYPERLINK", "export": "csv"}))
    assert column(rows, "Opportunity") == ["'" + FORMULA]
    assert column(rows, "Amount") == ["50000.00"]
    sheet = xlsx_sheet(client.get("/opportunities/", {"q": "HYPERLINK", "export": "xlsx"}))
    cell = sheet["B2"]
    assert (cell.value, cell.data_type, cell.quotePrefix) == (FORMULA, "s", True)


def test_chinese_headers_and_file_name(deals: dict[str, Any], client_for: Any) -> None:
    response = client_for("seller", "zh-hans").get("/opportunities/?export=csv")
    header = csv_rows(response)[0]
    for chinese in ("商机", "客户", "阶段", "状态", "金额", "币种", "预计签约日期", "负责人"):
        assert chinese in header
    assert "Opportunity" not in header and "Amount" not in header
    disposition = response["Content-Disposition"]
    today = clock.today()  # the installation's date (Asia/Shanghai), not the machine's
    assert disposition.startswith(f'attachment; filename="export-{today.isoformat()}.csv"')
    assert f"filename*=UTF-8''%E5%95%86%E6%9C%BA-{today.isoformat()}.csv" in disposition
    sheet = xlsx_sheet(client_for("seller", "zh-hans").get("/opportunities/?export=xlsx"))
    assert sheet.title == "商机"
    assert sheet["B1"].value == "商机" and sheet["B1"].font.b


def test_english_file_name(deals: dict[str, Any], client_for: Any) -> None:
    response = client_for("seller").get("/opportunities/?export=xlsx")
    assert response["Content-Disposition"] == (
        f'attachment; filename="opportunities-{clock.today().isoformat()}.xlsx"'
    )
    assert response["Cache-Control"] == "private, no-store"


def test_owner_filter_and_quarter_are_kept(
    deals: dict[str, Any], org: dict[str, Any], client_for: Any
) -> None:
    client = client_for("manager")
    mine = csv_rows(client.get(f"/opportunities/?owner={org['manager'].pk}&export=csv"))
    assert mine[1:] == []
    seller = csv_rows(client.get(f"/opportunities/?owner={org['seller'].pk}&export=csv"))
    assert len(seller) - 1 == 7  # open by default: the lost one is left out


def test_the_list_links_to_its_export_with_its_filters(
    deals: dict[str, Any], client_for: Any
) -> None:
    html = client_for("seller").get("/opportunities/?q=D&sort=-amount&page=2").content.decode()
    assert 'href="?q=D&amp;sort=-amount&amp;export=csv"' in html
    assert 'href="?q=D&amp;sort=-amount&amp;export=xlsx"' in html


# --- the board --------------------------------------------------------------------------------


def test_board_export_lists_the_open_deals_column_by_column(
    deals: dict[str, Any], walker: Any, client_for: Any
) -> None:
    walker.to(deals["D6"], "intent")
    client = client_for("seller")
    rows = csv_rows(client.get("/board/?export=csv"))
    names = column(rows, "Opportunity")
    # Discover first (by close date), then intent; the lost deal and Shanghai's are not on it.
    assert names == [
        "D5 财务共享",
        "D4 财务共享",
        "D3 财务共享",
        "D2 财务共享",
        "D1 财务共享",
        "'" + FORMULA,
        "D6 财务共享",
    ]
    html = client.get("/board/?q=D").content.decode()
    assert 'href="?q=D&amp;export=xlsx"' in html


# --- accounts -----------------------------------------------------------------------------------


def test_accounts_export_has_every_page(
    deals: dict[str, Any], org: dict[str, Any], client_for: Any, monkeypatch: Any
) -> None:
    from loudou.customers.services import account_create
    from tests.conftest import credit_code

    account_create(actor=org["seller"], name="=1+1 集团", credit_code=credit_code(9))
    monkeypatch.setattr(account_views, "PER_PAGE", 1)
    client = client_for("seller")
    shown = []
    for page in (1, 2):
        response = client.get("/accounts/", {"sort": "-amount", "page": page})
        shown += [a.name for a in response.context["page"].object_list]
    assert shown == ["华北电力集团", "=1+1 集团"]
    rows = csv_rows(client.get("/accounts/?sort=-amount&export=csv"))
    assert column(rows, "Account") == ["华北电力集团", "'=1+1 集团"]
    assert column(rows, "Open deals") == ["7", "0"]
    assert column(rows, "Open amount") == ["2750000.00", "0.00"]
    assert column(rows, "Target account") == ["Yes", "No"]
    sheet = xlsx_rows(client.get("/accounts/?sort=-amount&export=xlsx&q=华北"))
    assert column(sheet, "Account") == ["华北电力集团"]
    assert column(sheet, "Open amount") == [2750000]
    # The Shanghai seller sees only their own account.
    sh = csv_rows(client_for("sh_seller").get("/accounts/?export=csv"))
    assert column(sh, "Account") == ["上海汽车集团"]
    assert column(sh, "Open amount") == ["3000000.00"]


def test_an_accounts_deals_and_contacts(
    deals: dict[str, Any], account: Any, client_for: Any
) -> None:
    client = client_for("seller")
    url = f"/accounts/{account.pk}/"
    page = client.get(url)
    shown = [o.name for o in page.context["page"].opportunities]
    rows = xlsx_rows(client.get(url, {"export": "xlsx", "list": "opportunities"}))
    assert column(rows, "Opportunity") == shown
    assert column(rows, "Status")[-1] == "Lost"
    contacts = csv_rows(client.get(url, {"export": "csv", "list": "contacts"}))
    assert contacts == [
        ["ID", "Name", "Title", "Part in the selection team", "Phone", "Email"],
        [str(account.contacts.get().pk), "王总", "CIO", "Decision maker", "", ""],
    ], contacts
    assert 'href="?list=contacts&amp;export=csv"' in page.content.decode()
    # Another branch: not found, no file.
    assert client_for("sh_seller").get(url, {"export": "csv"}).status_code == 404


# --- approvals ----------------------------------------------------------------------------------


def test_approval_lists(
    deals: dict[str, Any], walker: Any, org: dict[str, Any], client_for: Any
) -> None:
    opp = walker.to(deals["D1"], "intent")
    pending = request_approval(opp, org["seller"])
    decided_opp = walker.to(deals["D2"], "project")  # requested and approved by the walker
    manager = client_for("manager")
    waiting = csv_rows(manager.get("/approvals/?export=csv&list=waiting"))
    assert column(waiting, "ID") == [str(pending.pk)]
    assert column(waiting, "Opportunity") == ["D1 财务共享"]
    assert column(waiting, "Customer budget") == ["1200000.00"]
    assert column(waiting, "Status") == ["Pending"]
    decided = xlsx_rows(manager.get("/approvals/?export=xlsx&list=decided"))
    assert column(decided, "Opportunity") == [decided_opp.name]
    assert column(decided, "Status") == ["Approved"]
    assert isinstance(column(decided, "Decided")[0], dt.datetime)
    mine = csv_rows(client_for("seller").get("/approvals/?export=csv"))
    assert sorted(column(mine, "Opportunity")) == ["D1 财务共享", "D2 财务共享"]
    # Another branch's manager has nothing waiting and sees no Beijing request.
    other = csv_rows(client_for("sh_manager").get("/approvals/?export=csv&list=waiting"))
    assert other[1:] == []
    assert csv_rows(client_for("sh_manager").get("/approvals/?export=csv&list=decided"))[1:] == []
    html = manager.get("/approvals/").content.decode()
    assert 'href="?list=waiting&amp;export=csv"' in html
    assert 'href="?list=decided&amp;export=xlsx"' in html


# --- the funnel's stage list and the stalled deals ---------------------------------------------


def test_funnel_stage_export_has_every_deal_not_only_the_largest(
    deals: dict[str, Any], client_for: Any, monkeypatch: Any
) -> None:
    monkeypatch.setattr(funnel_views, "STAGE_DEALS_LIMIT", 2)
    client = client_for("seller")
    shown = client.get("/funnel/deals/?stage=discover")
    assert [d.opportunity.name for d in shown.context["stage_deals"]] == [
        "D4 财务共享",
        "D2 财务共享",
    ]
    expected = [
        "D4 财务共享",
        "D2 财务共享",
        "D5 财务共享",
        "D1 财务共享",
        "D6 财务共享",
        "D3 财务共享",
        "'" + FORMULA,
    ]
    rows = csv_rows(client.get("/funnel/deals/?stage=discover&export=csv"))
    assert column(rows, "Deal") == expected
    assert column(rows, "Amount")[0] == "900000.00"
    same = csv_rows(client.get("/funnel/?stage=discover&export=csv"))
    assert same == rows
    assert "/funnel/deals/?playbook=project-funnel&amp;stage=discover&amp;export=csv" in (
        shown.content.decode()
    )
    sh = xlsx_rows(client_for("sh_seller").get("/funnel/deals/?stage=discover&export=xlsx"))
    assert column(sh, "Deal") == ["上海财务云"]
    assert client.get("/funnel/deals/?stage=nope&export=csv").status_code == 404


def test_stalled_export_equals_the_page(deals: dict[str, Any], client_for: Any) -> None:
    client = client_for("seller")
    page = client.get("/analytics/stalled/")
    shown = [d["name"] for d in page.context["deals"]]
    assert len(shown) == 7
    rows = csv_rows(client.get("/analytics/stalled/?export=csv"))
    assert column(rows, "Deal") == ["'" + n if n == FORMULA else n for n in shown]
    assert "上海财务云" not in column(rows, "Deal")
    assert set(column(rows, "Threshold")) == {"60.0"}
    sheet = xlsx_rows(client.get("/analytics/stalled/?export=xlsx"))
    assert all(isinstance(v, float | int) for v in column(sheet, "Days over"))
    assert all(isinstance(v, int | float) for v in column(sheet, "Amount"))
    sh = csv_rows(client_for("sh_seller").get("/analytics/stalled/?export=csv"))
    assert column(sh, "Deal") == ["上海财务云"]
    assert 'href="?playbook=project-funnel&amp;export=csv"' in page.content.decode()


def test_the_query_count_does_not_grow_with_the_rows(
    deals: dict[str, Any], walker: Any, client_for: Any
) -> None:
    client = client_for("seller")

    def queries(url: str) -> tuple[int, int]:
        client.get(url)  # warm the per-process caches (playbook, stage thresholds)
        with CaptureQueriesContext(connection) as captured:
            rows = csv_rows(client.get(url))
        return len(captured), len(rows) - 1

    urls = [
        "/opportunities/?status=all&export=csv",
        "/board/?export=csv",
        "/accounts/?export=csv",
        "/funnel/deals/?stage=discover&export=csv",
        "/analytics/stalled/?export=csv",
    ]
    before = [queries(url) for url in urls]
    for i in range(4):
        walker.to(walker.create(name=f"E{i}", amount="1000"), "intent")
    after = [queries(url) for url in urls]
    assert [n for n, _rows in after] == [n for n, _rows in before]
    assert [rows for _n, rows in after][:2] == [rows + 4 for _n, rows in before][:2]
