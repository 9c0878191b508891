"""`loudou import odoo`: a crm.lead export written by hand in the documented format, with its
traps: field labels or (import-compatible export) technical names, leads mixed with
opportunities (left out), lost deals archived (Active False) with probability 0, the "Won" stage,
and no stage history."""

import datetime as dt
from pathlib import Path
from typing import Any

from loudou.analytics.caches import caches_verify
from loudou.core import clock
from loudou.interop.models import ExternalId
from tests.interop.crm_files import (
    at,
    counts,
    deal,
    history,
    problems,
    refused_import,
    run_import,
    same_report,
    write,
)

HEADER = (
    "Opportunity,Customer,Salesperson,Stage,Expected Revenue,Expected Closing,Created on,"
    "Closed Date,Probability,Active,Type,Lost Reason,Sales Team\n"
)
ROWS = [
    'Huaneng finance,华能集团,seller,New,"1,200,000.00",2026-12-31,2026-03-01 09:00:00,,10,True,'
    "Opportunity,,Beijing",
    "国网ERP二期,国家电网,teammate,Won,3500000.00,2026-06-30,2026-02-01 09:00:00,"
    "2026-06-20 15:00:00,100,True,Opportunity,,Beijing",
    # Marked lost in Proposition: Odoo archives it and sets its probability to 0.
    "中粮集团预算,中粮集团,seller,Proposition,800000.00,2026-05-31,2026-01-05 09:00:00,"
    "2026-04-10 16:00:00,0,False,Opportunity,Too expensive,Beijing",
    "招商局HR,招商局集团,seller,Proposition,450000.00,2026-09-30,2026-02-10 09:00:00,,70,True,"
    "Opportunity,,Beijing",
    "某线索,某公司,seller,New,0,,2026-05-01 09:00:00,,10,True,Lead,,Beijing",
    "中石化采购,中国石化,teammate,Qualified,990000.00,2026-10-31,2026-05-05 09:00:00,,30,True,"
    "Opportunity,,Beijing",
]
NAMES = ["Huaneng finance", "国网ERP二期", "中粮集团预算", "招商局HR", "中石化采购"]


def export(tmp_path: Path, rows: list[str] = ROWS, name: str = "crm.lead.csv") -> str:
    return str(write(tmp_path, name, HEADER + "\n".join(rows) + "\n"))


def test_a_labelled_export_archived_is_lost_and_leads_are_left_out(
    org: dict[str, Any], tmp_path: Path
) -> None:
    path = export(tmp_path)
    report = run_import("odoo", path)
    assert (report["deals_in_file"], report["new"], report["already_imported"]) == (5, 5, 0)
    assert report["mapping"] == {
        "New": "discover", "Proposition": "recognition", "Qualified": "intent", "Won": "won"
    }  # fmt: skip
    # Proposition's 70 % is its open deal's: the lost deal's 0 % says how it ended.
    assert report["mapping_how"] == {
        "New": "probability 10 %",
        "Proposition": "probability 70 %",
        "Qualified": "probability 30 %",
        "Won": "name",
    }
    assert report["notes"] == [
        "Odoo's export has no stage history: each deal is recorded in its current stage from "
        "its creation",
        "1 leads (not opportunities) left out",
    ]
    assert report["by_stage"] == {
        "discover": 1, "intent": 1, "lost": 1, "recognition": 1, "won": 1
    }  # fmt: skip
    assert deal("Huaneng finance") == (
        "discover", "open", "1200000.00", dt.date(2026, 12, 31), None, "seller", "华能集团"
    )  # fmt: skip
    assert history("Huaneng finance") == [("discover", "open", at(2026, 3, 1, 9, 0))]
    assert deal("国网ERP二期") == (
        "closed", "won", "3500000.00", dt.date(2026, 6, 30), dt.date(2026, 6, 20), "teammate",
        "国家电网",
    )  # fmt: skip
    assert history("国网ERP二期") == [
        ("discover", "open", at(2026, 2, 1, 9, 0)),
        ("closed", "won", at(2026, 6, 20, 15, 0)),
    ]
    assert deal("中粮集团预算") == (
        "recognition", "lost", "800000.00", dt.date(2026, 5, 31), dt.date(2026, 4, 10),
        "seller", "中粮集团",
    )  # fmt: skip
    assert history("中粮集团预算") == [
        ("recognition", "open", at(2026, 1, 5, 9, 0)),
        ("recognition", "lost", at(2026, 4, 10, 16, 0)),
    ]
    assert deal("中石化采购")[:2] == ("intent", "open")
    assert counts()["opportunities"] == 5
    assert caches_verify() == []

    # No id column: the account and name identify a deal, so a re-import updates nothing twice.
    again = run_import("odoo", path)
    assert (again["new"], again["already_imported"], again["updated"]) == (0, 5, 0)
    assert counts()["opportunities"] == 5 and counts()["history"] == 7


def test_a_changed_export_updates_only_the_changed_deals(
    org: dict[str, Any], tmp_path: Path
) -> None:
    run_import("odoo", export(tmp_path))
    before = {name: history(name) for name in NAMES}
    rows = list(ROWS)
    # Odoo moves the probability with the stage; the automatic mapping reads it again.
    rows[0] = rows[0].replace(",New,", ",Qualified,").replace(",,10,True,", ",,30,True,")
    rows[5] = rows[5].replace(
        ",,30,True,Opportunity,,", ",2026-07-05 16:00:00,0,False,Opportunity,No budget,"
    )
    changed = export(tmp_path, rows, "changed.csv")
    with clock.frozen_at(at(2026, 7, 10, 9, 0)):
        dry = run_import("odoo", changed, "--dry-run")
        assert {name: history(name) for name in NAMES} == before
        real = run_import("odoo", changed)
    same_report(dry, real)
    assert (real["new"], real["already_imported"], real["updated"], real["unchanged"]) == (
        0, 5, 2, 3
    )  # fmt: skip
    assert history("Huaneng finance") == [
        ("discover", "open", at(2026, 3, 1, 9, 0)),
        ("intent", "open", at(2026, 7, 10, 9, 0)),
    ]
    assert history("中石化采购") == [
        ("intent", "open", at(2026, 5, 5, 9, 0)),
        ("intent", "lost", at(2026, 7, 5, 16, 0)),
    ]
    assert deal("中石化采购")[:5] == (
        "intent", "lost", "990000.00", dt.date(2026, 10, 31), dt.date(2026, 7, 5)
    )  # fmt: skip
    for name in NAMES[1:4]:
        assert history(name) == before[name]
    assert caches_verify() == []


TECHNICAL = """\
id,name,partner_id,user_id,stage_id,expected_revenue,date_deadline,create_date,date_closed,\
probability,active,type
__export__.crm_lead_41_a1b2,华润集团司库,华润集团,Mitchell Admin,Qualified,"$ 32.000,00",\
2026-11-30,2026-04-01 08:30:00,,30,True,opportunity
__export__.crm_lead_42_c3d4,首钢集团HR,首钢集团,Mitchell Admin,Won,"1.200.000,00",2026-06-30,\
2026-01-15 10:00:00,2026-06-01 11:00:00,100,True,opportunity
__export__.crm_lead_43_e5f6,线索甲,某公司,Mitchell Admin,New,0,,2026-05-01 09:00:00,,10,True,lead
"""


def test_an_import_compatible_export_with_technical_names(
    org: dict[str, Any], tmp_path: Path
) -> None:
    path = write(tmp_path, "crm_lead.csv", TECHNICAL)
    mapping = write(tmp_path, "m.yaml", "owners:\n  Mitchell Admin: teammate\n")
    saved = tmp_path / "saved.yaml"
    report = run_import(
        "odoo", str(path), "--mapping", str(mapping), "--save-mapping", str(saved), "--dry-run"
    )
    assert report["mapping"] == {"Qualified": "intent", "Won": "won"}
    assert report["notes"][1] == "1 leads (not opportunities) left out"
    assert 'owners:\n  "Mitchell Admin": teammate\n' in saved.read_text(encoding="utf-8")
    real = run_import("odoo", str(path), "--mapping", str(saved))
    assert set(real["mapping_how"].values()) == {"file"}
    assert real["mapping"] == report["mapping"] and real["created"] == report["created"]
    assert deal("华润集团司库") == (
        "intent", "open", "32000.00", dt.date(2026, 11, 30), None, "teammate", "华润集团"
    )  # fmt: skip
    assert deal("首钢集团HR")[:5] == (
        "closed", "won", "1200000.00", dt.date(2026, 6, 30), dt.date(2026, 6, 1)
    )  # fmt: skip
    assert history("首钢集团HR") == [
        ("discover", "open", at(2026, 1, 15, 10, 0)),
        ("closed", "won", at(2026, 6, 1, 11, 0)),
    ]
    assert sorted(
        ExternalId.objects.filter(source="odoo").values_list("external_id", flat=True)
    ) == ["__export__.crm_lead_41_a1b2", "__export__.crm_lead_42_c3d4"]
    assert caches_verify() == []


def test_a_bad_export_imports_nothing_and_names_every_bad_cell(
    org: dict[str, Any], tmp_path: Path
) -> None:
    rows = list(ROWS)
    rows[0] = rows[0].replace(",True,", ",Maybe,")
    rows[1] = rows[1].replace("3500000.00", "(3500000.00)")
    rows[3] = rows[3].replace(",70,", ",170,")
    report, message = refused_import("odoo", export(tmp_path, rows))
    assert message == "3 problems in the file; nothing was imported."
    assert problems(report) == [
        (2, "Active", "Maybe", "not yes or no"),
        (3, "Expected Revenue", "(3500000.00)", "a negative amount"),
        (5, "Probability", "170", "a probability above 100 %"),
    ]
    assert counts()["opportunities"] == 0 and counts()["accounts"] == 0


def test_only_an_administrator_or_the_owners_manager_may_import(
    org: dict[str, Any], tmp_path: Path
) -> None:
    before = counts()
    _report, message = refused_import("odoo", export(tmp_path), user="seller")
    assert message == "Only an administrator, or a manager of every owner's branch, may import."
    shanghai = export(tmp_path, [ROWS[0].replace(",seller,", ",sh_seller,")], "sh.csv")
    _report, message = refused_import("odoo", shanghai, user="manager")
    assert message == "Only an administrator, or a manager of every owner's branch, may import."
    assert counts() == before
    assert run_import("odoo", shanghai, user="sh_manager")["new"] == 1
