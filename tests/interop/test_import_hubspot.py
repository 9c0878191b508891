"""`loudou import hubspot`: a deals export written by hand in the documented format, with its
traps: `Date entered "<stage> (<pipeline>)"` columns in both quote styles that hold only the
latest entry into each stage (a deal that went back keeps only its latest visits), "Deal owner"
with a lower-case o, and an API-style export with internal names, stage ids and epoch times."""

from decimal import Decimal
from pathlib import Path
from typing import Any

from loudou.analytics.caches import caches_verify
from loudou.core import clock
from loudou.pipeline.models import Opportunity, OpportunityHistory
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
    '"Record ID","Deal Name","Associated Company","Deal Stage","Pipeline","Amount","Close Date",'
    '"Create Date","Deal owner",'
    '"Date entered ""Appointment Scheduled (Sales Pipeline)""",'
    "\"Date entered 'Qualified To Buy (Sales Pipeline)'\","
    '"Date entered ""Contract Sent (Sales Pipeline)""",'
    '"Date entered ""Closed Won (Sales Pipeline)""",'
    '"Date entered ""Closed Lost (Sales Pipeline)"""\n'
)
ROWS = [
    '1001,华能集团财务共享,华能集团,Contract Sent,Sales Pipeline,"1,200,000",2026-12-31,'
    "2026-03-01 09:00,seller,2026-03-01 09:00,2026-03-10 10:00,2026-05-20 15:00,,",
    "1002,国网ERP二期,国家电网,Closed Won,Sales Pipeline,3500000,2026-04-20,2026-02-01 09:00,"
    "teammate,2026-02-01 09:00,2026-02-15 10:00,2026-04-01 11:00,2026-04-20 11:00,",
    # Lost while in Qualified To Buy.
    "1003,中粮集团预算,中粮集团,Closed Lost,Sales Pipeline,800000,2026-03-03,2026-01-05 09:00,"
    "seller,2026-01-05 09:00,2026-01-20 10:00,,,2026-03-03 16:00",
    # Went Appointment → Qualified (02-10, lost: only the latest entry is kept) → Contract Sent
    # → back to Qualified on 04-01.
    "1004,招商局HR,招商局集团,Qualified To Buy,Sales Pipeline,450000,2026-09-30,"
    "2026-02-01 09:00,teammate,2026-02-01 09:00,2026-04-01 10:00,2026-03-01 10:00,,",
    "1005,中石化采购,中国石化,Appointment Scheduled,Sales Pipeline,,2026-10-31,2026-05-05 09:00,"
    "seller,2026-05-05 09:00,,,,",
]
NAMES = ["华能集团财务共享", "国网ERP二期", "中粮集团预算", "招商局HR", "中石化采购"]


def export(tmp_path: Path, rows: list[str] = ROWS, name: str = "hubspot-crm-exports.csv") -> str:
    # HubSpot writes UTF-8 with a BOM.
    return str(write(tmp_path, name, HEADER + "\n".join(rows) + "\n", encoding="utf-8-sig"))


def test_deals_and_latest_stage_entries_become_history(org: dict[str, Any], tmp_path: Path) -> None:
    path = export(tmp_path)
    report = run_import("hubspot", path)
    assert (report["new"], report["already_imported"], report["deals_in_file"]) == (5, 0, 5)
    assert report["mapping"] == {
        "Appointment Scheduled": "intent",
        "Closed Lost": "lost",
        "Closed Won": "won",
        "Contract Sent": "negotiation",
        "Qualified To Buy": "project",
    }
    assert report["mapping_how"] == {
        "Appointment Scheduled": "probability 20 %",
        "Closed Lost": "name",
        "Closed Won": "name",
        "Contract Sent": "probability 90 %",
        "Qualified To Buy": "probability 40 %",
    }
    assert report["by_stage"] == {
        "intent": 1, "lost": 1, "negotiation": 1, "project": 1, "won": 1
    }  # fmt: skip
    assert report["created"] == {
        "accounts": 5, "contacts": 0, "opportunities": 5, "history_rows": 14
    }  # fmt: skip
    assert report["notes"] == [
        "HubSpot keeps only the latest entry into each stage: 1 deals went back to an earlier "
        "stage, and only their latest visits are in the history"
    ]
    assert deal("华能集团财务共享") == (
        "negotiation", "open", "1200000.00", _d(2026, 12, 31), None, "seller", "华能集团"
    )  # fmt: skip
    assert history("华能集团财务共享") == [
        ("intent", "open", at(2026, 3, 1, 9, 0)),
        ("project", "open", at(2026, 3, 10, 10, 0)),
        ("negotiation", "open", at(2026, 5, 20, 15, 0)),
    ]
    assert deal("国网ERP二期") == (
        "closed", "won", "3500000.00", _d(2026, 4, 20), _d(2026, 4, 20), "teammate", "国家电网"
    )  # fmt: skip
    assert history("国网ERP二期") == [
        ("intent", "open", at(2026, 2, 1, 9, 0)),
        ("project", "open", at(2026, 2, 15, 10, 0)),
        ("negotiation", "open", at(2026, 4, 1, 11, 0)),
        ("closed", "won", at(2026, 4, 20, 11, 0)),
    ]
    # Lost in the stage it was in.
    assert deal("中粮集团预算") == (
        "project", "lost", "800000.00", _d(2026, 3, 3), _d(2026, 3, 3), "seller", "中粮集团"
    )  # fmt: skip
    assert history("中粮集团预算") == [
        ("intent", "open", at(2026, 1, 5, 9, 0)),
        ("project", "open", at(2026, 1, 20, 10, 0)),
        ("project", "lost", at(2026, 3, 3, 16, 0)),
    ]
    # Went back: the latest entries, in time order, give intent → negotiation → project.
    assert deal("招商局HR")[:2] == ("project", "open")
    assert history("招商局HR") == [
        ("intent", "open", at(2026, 2, 1, 9, 0)),
        ("negotiation", "open", at(2026, 3, 1, 10, 0)),
        ("project", "open", at(2026, 4, 1, 10, 0)),
    ]
    assert deal("中石化采购") == (
        "intent", "open", "0.00", _d(2026, 10, 31), None, "seller", "中国石化"
    )  # fmt: skip
    assert history("中石化采购") == [("intent", "open", at(2026, 5, 5, 9, 0))]
    assert caches_verify() == []

    again = run_import("hubspot", path)
    assert (again["new"], again["already_imported"], again["updated"]) == (0, 5, 0)
    assert again["created"]["history_rows"] == 0
    assert Opportunity.objects.count() == 5 and OpportunityHistory.objects.count() == 14
    assert caches_verify() == []


def _d(*parts: int) -> Any:
    import datetime as dt

    return dt.date(*parts)


def test_a_changed_export_updates_only_the_changed_deals(
    org: dict[str, Any], tmp_path: Path
) -> None:
    run_import("hubspot", export(tmp_path))
    before = {name: history(name) for name in NAMES}
    rows = list(ROWS)
    rows[0] = rows[0].replace('"1,200,000"', '"1,500,000"')
    rows[4] = (
        "1005,中石化采购,中国石化,Qualified To Buy,Sales Pipeline,,2026-10-31,2026-05-05 09:00,"
        "seller,2026-05-05 09:00,2026-06-01 10:00,,,"
    )
    changed = export(tmp_path, rows, "changed.csv")
    with clock.frozen_at(at(2026, 7, 1, 9, 0)):
        dry = run_import("hubspot", changed, "--dry-run")
        assert {n: history(n) for n in NAMES} == before
        real = run_import("hubspot", changed)
    same_report(dry, real)
    assert (real["new"], real["already_imported"], real["updated"], real["unchanged"]) == (
        0, 5, 2, 3
    )  # fmt: skip
    assert Opportunity.objects.get(name="华能集团财务共享").amount == Decimal("1500000.00")
    # The amount change is recorded now (the source gives no time for it)...
    assert history("华能集团财务共享") == [
        *before["华能集团财务共享"],
        ("negotiation", "open", at(2026, 7, 1, 9, 0)),
    ]
    # ... the stage change at the time HubSpot says the deal entered the stage.
    assert history("中石化采购") == [
        ("intent", "open", at(2026, 5, 5, 9, 0)),
        ("project", "open", at(2026, 6, 1, 10, 0)),
    ]
    for name in NAMES[1:4]:
        assert history(name) == before[name]
    assert caches_verify() == []


def test_a_bad_export_imports_nothing_and_names_every_bad_cell(
    org: dict[str, Any], tmp_path: Path
) -> None:
    rows = list(ROWS)
    rows[1] = rows[1].replace("3500000", "three million")
    rows[2] = rows[2].replace("2026-01-20 10:00", "2026-13-20 10:00")
    rows[3] = rows[3].replace(",teammate,", ",nobody,")
    rows[4] = rows[4].replace(",中国石化,", ",,")
    report, message = refused_import("hubspot", export(tmp_path, rows))
    assert message == "4 problems in the file; nothing was imported."
    assert problems(report) == [
        (3, "Amount", "three million", "not an amount"),
        (4, "Date entered 'Qualified To Buy (Sales Pipeline)'", "2026-13-20 10:00",
         "not a date (write it as 2026-03-01)"),
        (6, "Associated Company", "", "required"),
        (5, "owner", "nobody", "no loudou user by this name: map it in the mapping file's "
         "owners, or give a default owner"),
    ]  # fmt: skip
    assert counts() == {
        "opportunities": 0, "history": 0, "accounts": 0, "contacts": 0, "external_ids": 0,
        "audit": counts()["audit"],
    }  # fmt: skip


def test_saved_mapping_passed_back_gives_the_same_import(
    org: dict[str, Any], tmp_path: Path
) -> None:
    saved = tmp_path / "mapping.yaml"
    path = export(tmp_path)
    dry = run_import("hubspot", path, "--dry-run", "--save-mapping", str(saved))
    text = saved.read_text(encoding="utf-8")
    assert text.splitlines()[2:] == [
        "playbook: project-funnel",
        "stages:",
        '  "Appointment Scheduled": intent  # probability 20 %',
        '  "Qualified To Buy": project  # probability 40 %',
        '  "Contract Sent": negotiation  # probability 90 %',
        '  "Closed Won": won  # name',
        '  "Closed Lost": lost  # name',
    ]
    real = run_import("hubspot", path, "--mapping", str(saved))
    assert real["mapping"] == dry["mapping"]
    assert set(real["mapping_how"].values()) == {"file"}
    assert {k: real[k] for k in ("new", "by_stage", "created")} == {
        k: dry[k] for k in ("new", "by_stage", "created")
    }
    assert history("招商局HR")[-1] == ("project", "open", at(2026, 4, 1, 10, 0))


API_EXPORT = """\
hs_object_id,dealname,Company name,dealstage,pipeline,amount,closedate,createdate,\
hubspot_owner_id,hs_v2_date_entered_appointmentscheduled,hs_v2_date_entered_contractsent,\
hs_v2_date_entered_closedwon,hs_v2_date_entered_current_stage,hs_is_closed_won,hs_is_closed
2001,中信集团司库,中信集团,closedwon,default,2000000.5,2026-06-30T00:00:00Z,\
2026-01-10T01:00:00Z,51234567,1768006800000,1772330400000,1782784800000,1782784800000,true,true
2002,宝武钢铁采购,宝武钢铁,contractsent,default,990000,2026-12-01T00:00:00Z,\
2026-02-01T02:00:00Z,51234567,2026-02-01T02:00:00Z,2026-03-05T06:30:00.000Z,,\
2026-03-05T06:30:00.000Z,false,false
"""


def test_an_api_style_export_with_internal_names(org: dict[str, Any], tmp_path: Path) -> None:
    path = write(tmp_path, "deals.csv", API_EXPORT)
    mapping = write(tmp_path, "owners.yaml", "owners:\n  '51234567': teammate\n")
    report = run_import("hubspot", str(path), "--mapping", str(mapping))
    assert report["mapping"] == {
        "Appointment Scheduled": "intent", "Closed Won": "won", "Contract Sent": "negotiation"
    }  # fmt: skip
    assert deal("中信集团司库") == (
        "closed", "won", "2000000.50", _d(2026, 6, 30), _d(2026, 6, 30), "teammate", "中信集团"
    )  # fmt: skip
    # Epoch milliseconds are UTC instants.
    assert history("中信集团司库") == [
        ("intent", "open", at(2026, 1, 10, 9, 0)),
        ("negotiation", "open", at(2026, 3, 1, 10, 0)),
        ("closed", "won", at(2026, 6, 30, 10, 0)),
    ]
    assert history("宝武钢铁采购") == [
        ("intent", "open", at(2026, 2, 1, 10, 0)),
        ("negotiation", "open", at(2026, 3, 5, 14, 30)),
    ]
    assert caches_verify() == []


def test_only_an_administrator_or_the_owners_manager_may_import(
    org: dict[str, Any], tmp_path: Path
) -> None:
    path = export(tmp_path)
    before = counts()
    _report, message = refused_import("hubspot", path, user="seller")
    assert message == "Only an administrator, or a manager of every owner's branch, may import."
    assert counts() == before
    shanghai = HEADER + ROWS[0].replace(",seller,", ",sh_seller,") + "\n"
    other = str(write(tmp_path, "sh.csv", shanghai))
    _report, message = refused_import("hubspot", other, user="manager")
    assert message == "Only an administrator, or a manager of every owner's branch, may import."
    assert counts() == before
    # The Beijing manager may import the Beijing sellers' deals.
    assert run_import("hubspot", path, user="manager")["new"] == 5
