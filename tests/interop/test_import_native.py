"""`loudou import native`: the template `loudou import template` writes, filled in as a user
would (XLSX with English headers; CSV files with Chinese headers), with accounts, contacts,
opportunities and history; re-imports of an edited file update what changed, and the ids keep
them from duplicating."""

import datetime as dt
import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from openpyxl import load_workbook

from loudou.analytics.caches import caches_verify
from loudou.core import clock
from loudou.customers.models import Account, Contact
from loudou.pipeline.models import OpportunityHistory
from tests.conftest import credit_code
from tests.interop.crm_files import (
    at,
    counts,
    deal,
    history,
    problems,
    refused_import,
    run_import,
    same_report,
)

ACCOUNTS = [
    [
        "A-001",
        "华能集团",
        credit_code(7),
        "power",
        "large",
        12000,
        12,
        "",
        "seller",
        "集团财务",
        "",
    ],
    ["A-002", "华能新能源", "", "电力", "medium", 800, 3, "华能集团", "teammate", "", ""],
]
CONTACTS = [["C-001", "华能集团", "王总", "CFO", "", "wang@example.com", "decision_maker"]]
DEALS = [
    ["D-001", "集团财务共享", "华能集团", "seller", "intent", "open", "¥1,200,000", "CNY",
     dt.date(2026, 12, 31), dt.date(2026, 3, 1), None, None, "财务共享", ""],
    ["D-002", "新能源ERP", "华能新能源", "teammate", "closed", "won", 800000, "CNY",
     dt.date(2026, 6, 30), dt.date(2026, 1, 10), dt.datetime(2026, 6, 20, 15, 0), None, "", ""],
    ["D-003", "集团HR", "华能集团", "seller", "project", "lost", 300000, "CNY",
     dt.date(2026, 5, 31), dt.date(2026, 2, 1), dt.datetime(2026, 5, 5, 12, 0), None, "", "预算"],
]  # fmt: skip
HISTORY = [
    ["D-001", dt.datetime(2026, 3, 1, 9, 0), "discover", "open", None, None],
    ["D-001", dt.datetime(2026, 4, 1, 10, 0), "intent", "open", None, None],
    ["D-002", "2026-01-10 09:00", "discover", "open", 600000, None],
    ["D-002", "2026-03-01 10:00", "引导客户立项", "open", None, None],
]


def filled_template(tmp_path: Path, deals: list[list[Any]] = DEALS, name: str = "t.xlsx") -> str:
    """The template as `loudou import template` writes it, its example rows replaced."""
    path = tmp_path / name
    call_command("import", "template", str(path), "--language", "en", stdout=StringIO())
    book = load_workbook(path)
    assert book.sheetnames == ["README", "accounts", "contacts", "opportunities", "history"]
    for sheet, rows in zip(book.sheetnames[1:], (ACCOUNTS, CONTACTS, deals, HISTORY), strict=True):
        book[sheet].delete_rows(2)
        for row in rows:
            book[sheet].append(row)
    book.save(path)
    return str(path)


def test_the_filled_template_imports_everything(org: dict[str, Any], tmp_path: Path) -> None:
    path = filled_template(tmp_path)
    dry = run_import("native", path, "--dry-run")
    assert counts()["opportunities"] == counts()["accounts"] == counts()["contacts"] == 0
    report = run_import("native", path)
    same_report(dry, report)
    assert (report["new"], report["already_imported"]) == (3, 0)
    assert report["created"] == {
        "accounts": 2, "contacts": 1, "opportunities": 3, "history_rows": 7
    }  # fmt: skip
    assert report["mapping"] == {
        "closed": "won", "discover": "discover", "intent": "intent", "project": "project",
        "引导客户立项": "project",
    }  # fmt: skip
    assert set(report["mapping_how"].values()) == {"name"}
    group = Account.objects.get(name="华能集团")
    child = Account.objects.get(name="华能新能源")
    assert (group.owner.username, group.industry.key, group.employees) == ("seller", "power", 12000)
    assert (child.parent_id, child.owner.username, child.industry.key) == (
        group.pk, "teammate", "power"
    )  # fmt: skip
    contact = Contact.objects.get()
    assert (contact.account_id, contact.name, contact.selection_part) == (
        group.pk, "王总", "decision_maker"
    )  # fmt: skip
    assert deal("集团财务共享") == (
        "intent", "open", "1200000.00", dt.date(2026, 12, 31), None, "seller", "华能集团"
    )  # fmt: skip
    assert history("集团财务共享") == [
        ("discover", "open", at(2026, 3, 1, 9, 0)),
        ("intent", "open", at(2026, 4, 1, 10, 0)),
    ]
    assert deal("新能源ERP") == (
        "closed", "won", "800000.00", dt.date(2026, 6, 30), dt.date(2026, 6, 20), "teammate",
        "华能新能源",
    )  # fmt: skip
    assert history("新能源ERP") == [
        ("discover", "open", at(2026, 1, 10, 9, 0)),
        ("project", "open", at(2026, 3, 1, 10, 0)),
        ("closed", "won", at(2026, 6, 20, 15, 0)),
    ]
    # The history row's own amount, then the deal's.
    assert list(
        OpportunityHistory.objects.filter(opportunity__name="新能源ERP")
        .order_by("valid_from")
        .values_list("amount", flat=True)
    ) == [600000, 800000, 800000]
    assert deal("集团HR")[:5] == (
        "project", "lost", "300000.00", dt.date(2026, 5, 31), dt.date(2026, 5, 5)
    )  # fmt: skip
    assert history("集团HR") == [
        ("project", "open", at(2026, 2, 1, 12, 0)),
        ("project", "lost", at(2026, 5, 5, 12, 0)),
    ]
    assert caches_verify() == []

    before = counts()
    again = run_import("native", path)
    assert (again["new"], again["already_imported"], again["updated"]) == (0, 3, 0)
    assert (again["accounts_updated"], again["contacts_updated"]) == (0, 0)
    assert again["created"] == {
        "accounts": 0, "contacts": 0, "opportunities": 0, "history_rows": 0
    }  # fmt: skip
    assert {k: v for k, v in counts().items() if k != "audit"} == {
        k: v for k, v in before.items() if k != "audit"
    }


def test_an_edited_file_updates_the_changed_deals_with_history(
    org: dict[str, Any], tmp_path: Path
) -> None:
    run_import("native", filled_template(tmp_path))
    before = {name: history(name) for name in ("新能源ERP", "集团HR")}
    deals = [list(row) for row in DEALS]
    deals[0][4], deals[0][6] = "project", "1,500,000.00"  # moved on, and a bigger amount
    HISTORY.append(["D-001", dt.datetime(2026, 5, 10, 10, 0), "project", "open", None, None])
    try:
        edited = filled_template(tmp_path, deals, "edited.xlsx")
    finally:
        HISTORY.pop()
    with clock.frozen_at(at(2026, 7, 1, 9, 0)):
        dry = run_import("native", edited, "--dry-run")
        assert len(history("集团财务共享")) == 2
        real = run_import("native", edited)
    same_report(dry, real)
    assert (real["new"], real["already_imported"], real["updated"], real["unchanged"]) == (
        0, 3, 1, 2
    )  # fmt: skip
    assert deal("集团财务共享")[:3] == ("project", "open", "1500000.00")
    rows = OpportunityHistory.objects.filter(opportunity__name="集团财务共享").order_by(
        "valid_from"
    )
    assert [(r.stage.key, str(r.amount), r.valid_from, r.changed) for r in rows][1:] == [
        ("intent", "1200000.00", at(2026, 4, 1, 10, 0), ["stage", "probability"]),
        ("project", "1500000.00", at(2026, 5, 10, 10, 0), ["stage", "amount", "probability"]),
    ]
    assert {name: history(name) for name in before} == before
    assert caches_verify() == []


def test_chinese_headers_in_csv_files(org: dict[str, Any], tmp_path: Path) -> None:
    folder = tmp_path / "template"
    call_command("import", "template", str(folder), "--language", "zh-hans", stdout=StringIO())
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["历史.csv", "商机.csv", "客户.csv", "联系人.csv"]
    header = (folder / "商机.csv").read_bytes().decode("utf-8-sig").splitlines()[0]
    assert header.startswith("编号,商机名称,客户名称,负责人,阶段,状态,金额")
    keep = {
        name: (folder / name).read_bytes().decode("utf-8-sig").splitlines()[0] for name in names
    }
    (folder / "客户.csv").write_text(
        keep["客户.csv"] + "\nK-1,中粮集团,,制造,,,,,seller,,\n", "utf-8-sig"
    )
    (folder / "联系人.csv").write_text(keep["联系人.csv"] + "\n", encoding="utf-8-sig")
    (folder / "商机.csv").write_bytes(
        (keep["商机.csv"] + "\n"
         "S-1,中粮预算,中粮集团,seller,确认客户意向,进行中,120万,CNY,2026/12/31,2026年3月1日,,,,\n"
         "S-2,中粮HR,中粮集团,seller,完成销售成交,赢单,1.2亿,CNY,2026/6/30,2026/1/1,2026/6/1 10:00,,,\n"
         ).encode("gb18030")  # saved again by Excel on Chinese Windows
    )  # fmt: skip
    (folder / "历史.csv").write_text(
        keep["历史.csv"] + "\nS-2,2026-03-01 10:00,引导客户立项,进行中,,\n", encoding="utf-8-sig"
    )
    report = run_import("native", str(folder))
    assert report["encodings"] == ["gb18030", "utf-8-sig"]
    assert report["created"]["opportunities"] == 2
    assert deal("中粮预算") == (
        "intent", "open", "1200000.00", dt.date(2026, 12, 31), None, "seller", "中粮集团"
    )  # fmt: skip
    assert deal("中粮HR")[:5] == (
        "closed", "won", "120000000.00", dt.date(2026, 6, 30), dt.date(2026, 6, 1)
    )  # fmt: skip
    # Its history starts after its creation: the creation date is kept, in the first stage known.
    assert history("中粮HR") == [
        ("project", "open", at(2026, 1, 1, 12, 0)),
        ("closed", "won", at(2026, 6, 1, 10, 0)),
    ]
    assert caches_verify() == []


def test_a_bad_file_imports_nothing_and_names_every_bad_cell(
    org: dict[str, Any], tmp_path: Path
) -> None:
    deals = [list(row) for row in DEALS]
    deals[0][5] = "Maybe"
    deals[1][8] = "2026-02-30"
    deals.append(list(DEALS[2]))  # the same id again
    HISTORY.append(["D-404", "2026-03-01 10:00", "discover", "open", None, None])
    try:
        path = filled_template(tmp_path, deals)
    finally:
        HISTORY.pop()
    before = counts()
    report, message = refused_import("native", path)
    # D-001's and D-002's history rows are not reported: their deals' rows are.
    assert message == "4 problems in the file; nothing was imported."
    assert problems(report) == [
        (2, "status", "Maybe", "must be open, won or lost"),
        (3, "close_date", "2026-02-30", "not a date (write it as 2026-03-01)"),
        (6, "deal_id", "D-404", "history of a deal the file does not have"),
        (5, "", "D-003", "the same deal as row 4 (same id)"),
    ]
    assert counts() == before


def test_only_an_administrator_or_the_owners_manager_may_import(
    org: dict[str, Any], tmp_path: Path
) -> None:
    path = filled_template(tmp_path)
    before = counts()
    _report, message = refused_import("native", path, user="seller")
    assert message == "Only an administrator, or a manager of every owner's branch, may import."
    deals = [list(row) for row in DEALS]
    deals[2][3] = "sh_seller"
    _report, message = refused_import(
        "native", filled_template(tmp_path, deals, "sh.xlsx"), user="manager"
    )
    assert message == "Only an administrator, or a manager of every owner's branch, may import."
    assert counts() == before
    assert run_import("native", path, user="manager")["new"] == 3
    assert caches_verify() == []


def test_deals_never_go_on_an_account_the_importer_cannot_see(
    org: dict[str, Any], tmp_path: Path
) -> None:
    from loudou.customers.services import account_create

    theirs = account_create(actor=org["sh_seller"], name="上海电气")
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "opportunities.csv").write_text(
        "id,name,account,owner,stage,status,amount,close_date,created_at\n"
        "O-1,电气财务,上海电气,seller,intent,open,100,2026-12-31,2026-03-01\n"
    )
    report = run_import("native", str(folder), user="manager")
    assert report["accounts_to_create"] == ["上海电气"]
    assert deal("电气财务")[5:] == ("seller", "上海电气")
    assert not theirs.opportunities.exists()
    assert Account.objects.get(name="上海电气", branch=org["beijing"]).owner.username == "seller"


def test_an_account_without_owner_needs_a_default_owner_at_the_command_line(
    org: dict[str, Any], tmp_path: Path
) -> None:
    """Without --as the command acts as the system, which belongs to no branch and cannot own an
    account: an ownerless account row is a problem unless --default-owner names someone."""
    from tests.interop.crm_files import write

    path = write(tmp_path, "accounts.csv", "id,name,owner\nA-9,无主客户,\n", "utf-8-sig")
    before = counts()
    out = StringIO()
    with pytest.raises(CommandError):
        call_command("import", "native", str(path), "--json", stdout=out)
    report = json.loads(out.getvalue())
    assert problems(report) == [(2, "owner", "", "no owner: give one, or a default owner")]
    assert counts() == before

    call_command("import", "native", str(path), "--default-owner", "teammate", stdout=StringIO())
    account = Account.objects.get(name="无主客户")
    assert (account.owner.username, account.branch_id) == ("teammate", org["beijing"].pk)
