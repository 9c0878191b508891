"""`loudou import pipedrive`: a deals list-view export written by hand in the documented format,
with its traps: every header prefixed "Deal - ", Status Open/Won/Lost (a lost deal's stage is the
one it was lost in), deleted deals left out, no stage history, and an XLSX export whose dates are
Excel serial numbers."""

import datetime as dt
from pathlib import Path
from typing import Any

from loudou.analytics.caches import caches_verify
from loudou.core import clock
from loudou.pipeline.models import Opportunity
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
    write_xlsx,
)

HEADER = (
    "Deal - ID,Deal - Title,Deal - Organization,Deal - Contact person,Deal - Owner,Deal - Value,"
    "Deal - Currency,Deal - Pipeline,Deal - Stage,Deal - Status,Deal - Probability,"
    "Deal - Expected close date,Deal - Deal created,Deal - Won time,Deal - Lost time,"
    "Deal - Last stage change,Deal - Lost reason\n"
)
ROWS = [
    "11,华能集团财务共享,华能集团,张总,seller,1200000,CNY,Pipeline,Contact Made,Open,25,"
    "2026-12-31,2026-03-01 09:00:00,,,2026-04-01 10:00:00,",
    "12,国网ERP二期,国家电网,,teammate,3500000,CNY,Pipeline,Negotiations Started,Won,80,"
    "2026-06-30,2026-02-01 09:00:00,2026-06-20 15:00:00,,2026-05-01 10:00:00,",
    "13,中粮集团预算,中粮集团,,seller,800000,CNY,Pipeline,Demo Scheduled,Lost,40,2026-05-31,"
    "2026-01-05 09:00:00,,2026-04-10 16:00:00,2026-03-01 10:00:00,价格太高",
    "14,旧商机,某公司,,seller,100,CNY,Pipeline,Archived Stage,Deleted,5,2026-05-31,"
    "2026-01-05 09:00:00,,,,",
    '15,中石化采购,中国石化,,teammate,"990,000.50",USD,Pipeline,Qualified,Open,10,2026-10-31,'
    "2026-05-05 09:00:00,,,,",
    "16,招商局HR,招商局集团,,seller,450000,CNY,Pipeline,Proposal Made,Open,60,2026-09-30,"
    "2026-02-10 09:00:00,,,2026-04-15 10:00:00,",
]
NAMES = ["华能集团财务共享", "国网ERP二期", "中粮集团预算", "中石化采购", "招商局HR"]
MAPPING = {
    "Contact Made": "intent",
    "Demo Scheduled": "project",
    "Negotiations Started": "negotiation",
    "Qualified": "discover",
    "Proposal Made": "recognition",
}


def export(tmp_path: Path, rows: list[str] = ROWS, name: str = "deals.csv") -> str:
    return str(write(tmp_path, name, HEADER + "\n".join(rows) + "\n"))


def test_deals_with_status_and_the_stage_they_closed_in(
    org: dict[str, Any], tmp_path: Path
) -> None:
    path = export(tmp_path)
    report = run_import("pipedrive", path)
    assert (report["deals_in_file"], report["new"], report["already_imported"]) == (5, 5, 0)
    # The deleted deal's stage is not in the mapping: no deal goes there.
    assert report["mapping"] == MAPPING
    assert report["mapping_how"] == {
        "Contact Made": "probability 25 %",
        "Demo Scheduled": "probability 40 %",
        "Negotiations Started": "probability 80 %",
        "Qualified": "probability 10 %",
        "Proposal Made": "probability 60 %",
    }
    assert report["by_stage"] == {
        "discover": 1, "intent": 1, "lost": 1, "recognition": 1, "won": 1
    }  # fmt: skip
    assert report["notes"] == [
        "Pipedrive's export has no stage history: each deal is recorded in its current stage "
        "from its creation; 4 deals changed stage after it (the export gives only the last "
        "change, not the stages before)",
        "1 deleted deals left out",
    ]
    assert report["created"] == {
        "accounts": 5, "contacts": 0, "opportunities": 5, "history_rows": 7
    }  # fmt: skip
    assert deal("华能集团财务共享") == (
        "intent", "open", "1200000.00", dt.date(2026, 12, 31), None, "seller", "华能集团"
    )  # fmt: skip
    assert history("华能集团财务共享") == [("intent", "open", at(2026, 3, 1, 9, 0))]
    # Won from the stage it was in, at the won time.
    assert deal("国网ERP二期") == (
        "closed", "won", "3500000.00", dt.date(2026, 6, 30), dt.date(2026, 6, 20), "teammate",
        "国家电网",
    )  # fmt: skip
    assert history("国网ERP二期") == [
        ("negotiation", "open", at(2026, 2, 1, 9, 0)),
        ("closed", "won", at(2026, 6, 20, 15, 0)),
    ]
    # Lost in the stage the file names, at the lost time.
    assert deal("中粮集团预算") == (
        "project", "lost", "800000.00", dt.date(2026, 5, 31), dt.date(2026, 4, 10), "seller",
        "中粮集团",
    )  # fmt: skip
    assert history("中粮集团预算") == [
        ("project", "open", at(2026, 1, 5, 9, 0)),
        ("project", "lost", at(2026, 4, 10, 16, 0)),
    ]
    usd = Opportunity.objects.get(name="中石化采购")
    assert (str(usd.amount), usd.currency, usd.stage.key) == ("990000.50", "USD", "discover")
    assert not Opportunity.objects.filter(name="旧商机").exists()
    assert caches_verify() == []

    again = run_import("pipedrive", path)
    assert (again["new"], again["already_imported"], again["updated"]) == (0, 5, 0)
    assert counts()["opportunities"] == 5 and counts()["history"] == 7


def test_a_changed_export_updates_only_the_changed_deals(
    org: dict[str, Any], tmp_path: Path
) -> None:
    run_import("pipedrive", export(tmp_path))
    before = {name: history(name) for name in NAMES}
    rows = list(ROWS)
    rows[0] = rows[0].replace("Contact Made,Open,25", "Proposal Made,Open,60")
    rows[4] = rows[4].replace(",Open,10,2026-10-31,2026-05-05 09:00:00,,,,", (
        ",Lost,10,2026-10-31,2026-05-05 09:00:00,,2026-07-05 16:00:00,,预算取消"
    ))  # fmt: skip
    changed = export(tmp_path, rows, "changed.csv")
    with clock.frozen_at(at(2026, 7, 10, 9, 0)):
        dry = run_import("pipedrive", changed, "--dry-run")
        assert {name: history(name) for name in NAMES} == before
        real = run_import("pipedrive", changed)
    same_report(dry, real)
    assert (real["new"], real["already_imported"], real["updated"], real["unchanged"]) == (
        0, 5, 2, 3
    )  # fmt: skip
    # The export gives no time for the stage change but the last one's: recorded at the import.
    assert history("华能集团财务共享") == [
        ("intent", "open", at(2026, 3, 1, 9, 0)),
        ("recognition", "open", at(2026, 7, 10, 9, 0)),
    ]
    assert history("中石化采购") == [
        ("discover", "open", at(2026, 5, 5, 9, 0)),
        ("discover", "lost", at(2026, 7, 5, 16, 0)),
    ]
    assert deal("中石化采购")[:5] == (
        "discover", "lost", "990000.50", dt.date(2026, 10, 31), dt.date(2026, 7, 5)
    )  # fmt: skip
    for name in ("国网ERP二期", "中粮集团预算", "招商局HR"):
        assert history(name) == before[name]
    assert caches_verify() == []


def test_a_bad_export_imports_nothing_and_names_every_bad_cell(
    org: dict[str, Any], tmp_path: Path
) -> None:
    rows = list(ROWS)
    rows[0] = rows[0].replace(",Open,25,", ",Maybe,25,")
    rows[1] = rows[1].replace(",3500000,", ",-3500000,")
    rows[2] = rows[2].replace("2026-05-31", "31/05/2026")  # day first, without --dayfirst
    report, message = refused_import("pipedrive", export(tmp_path, rows))
    assert message == "3 problems in the file; nothing was imported."
    assert problems(report) == [
        (2, "Deal - Status", "Maybe", "must be Open, Won or Lost"),
        (3, "Deal - Value", "-3500000", "a negative amount"),
        (4, "Deal - Expected close date", "31/05/2026", "not a date (write it as 2026-03-01)"),
    ]
    assert counts()["opportunities"] == 0 and counts()["accounts"] == 0
    # The same file read day first imports but for the two other bad cells.
    report, _message = refused_import("pipedrive", export(tmp_path, rows), "--dayfirst")
    assert [p[0] for p in problems(report)] == [2, 3]


def test_an_xlsx_export_with_excel_serial_dates(org: dict[str, Any], tmp_path: Path) -> None:
    header = [h for h in HEADER.strip().split(",")]
    # 46387 is 2026-12-31; 46082.375 is 2026-03-01 09:00; one created date is a real date cell.
    rows = [
        [21, "华能集团财务共享", "华能集团", "张总", "seller", 1200000, "CNY", "Pipeline",
         "Contact Made", "Open", 25, 46387, 46082.375, None, None, None, None],
        [22, "国网ERP二期", "国家电网", None, "teammate", 3500000.5, "CNY", "Pipeline",
         "Negotiations Started", "Won", None, dt.datetime(2026, 6, 30),
         dt.datetime(2026, 2, 1, 9, 0), 46193.625, None, None, None],
    ]  # fmt: skip
    path = write_xlsx(tmp_path / "deals.xlsx", {"Deals": [header, *rows]})
    mapping = write(
        tmp_path, "m.yaml", "stages:\n  Contact Made: intent\n  Negotiations Started: negotiation\n"
    )
    report = run_import("pipedrive", str(path), "--mapping", str(mapping))
    assert report["encodings"] == ["xlsx"]
    assert report["mapping_how"] == {"Contact Made": "file", "Negotiations Started": "file"}
    assert deal("华能集团财务共享")[:4] == (
        "intent", "open", "1200000.00", dt.date(2026, 12, 31)
    )  # fmt: skip
    assert history("华能集团财务共享") == [("intent", "open", at(2026, 3, 1, 9, 0))]
    assert deal("国网ERP二期")[:5] == (
        "closed", "won", "3500000.50", dt.date(2026, 6, 30), dt.date(2026, 6, 20)
    )  # fmt: skip
    assert history("国网ERP二期") == [
        ("negotiation", "open", at(2026, 2, 1, 9, 0)),
        ("closed", "won", at(2026, 6, 20, 15, 0)),
    ]
    assert caches_verify() == []


def test_saved_mapping_passed_back_and_permissions(org: dict[str, Any], tmp_path: Path) -> None:
    path = export(tmp_path)
    saved = tmp_path / "mapping.yaml"
    dry = run_import("pipedrive", path, "--dry-run", "--save-mapping", str(saved))
    assert counts()["opportunities"] == 0
    before = counts()
    _report, message = refused_import("pipedrive", path, user="seller")
    assert message == "Only an administrator, or a manager of every owner's branch, may import."
    shanghai = export(tmp_path, [ROWS[0].replace(",seller,", ",sh_seller,")], "sh.csv")
    _report, message = refused_import("pipedrive", shanghai, user="manager")
    assert message == "Only an administrator, or a manager of every owner's branch, may import."
    assert counts() == before
    real = run_import("pipedrive", path, "--mapping", str(saved), user="manager")
    assert real["mapping"] == dry["mapping"] == MAPPING
    assert set(real["mapping_how"].values()) == {"file"}
    assert (real["new"], real["by_stage"], real["created"]) == (
        dry["new"], dry["by_stage"], dry["created"]
    )  # fmt: skip
    assert caches_verify() == []
