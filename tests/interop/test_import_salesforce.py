"""`loudou import salesforce`: an Opportunity report export with OpportunityHistory, written by
hand in the documented format with its traps (renamed stages, one history row per save, bulk
load times, formatted money, a GBK file from Excel)."""

import datetime as dt
import json
from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from loudou.analytics.caches import caches_verify
from loudou.interop.models import ExternalId
from loudou.pipeline.models import Opportunity, OpportunityHistory

OPPORTUNITIES = """\
Opportunity ID,Opportunity Name,Account Name,Opportunity Owner,Stage,Probability (%),Amount,Close Date,Created Date,Won,Closed
006A1,华能集团财务共享,华能集团,seller,Prospecting,10,"¥1,200,000.00",2026/12/31,2026-09-01,0,0
006A2,国网ERP二期,国家电网,seller,Negotiation/Review,90,"3,500,000",2026/11/30,2026-06-15,0,0
006A3,中粮集团预算,中粮集团,teammate,Closed Won,100,800000,2026/10/15,2026-05-10,1,1
006A4,招商局HR,招商局集团,teammate,Id. Decision Makers,60,"450,000",2026/9/30,2026-04-01,0,1
"""
HISTORY = """\
OpportunityId,CreatedDate,StageName,Amount,CloseDate
006A2,2026-06-15 09:00:00,Prospecting,3000000,2026-11-30
006A2,2026-07-01 10:00:00,Prospecting,3500000,2026-11-30
006A2,2026-07-01 10:00:00,Prospecting,3500000,2026-11-30
006A2,2026-08-10 11:30:00,Needs Analysis,3500000,2026-11-30
006A2,2026-10-20 16:00:00,Negotiation/Review,3500000,2026-11-30
006A3,2026-05-10 09:00:00,Prospecting,800000,2026-10-15
006A3,2026-10-15 12:00:00,Closed Won,800000,2026-10-15
"""
MAPPING = """\
playbook: project-funnel
stages:
  Prospecting: discover
  Needs Analysis: intent
  Id. Decision Makers: project
  Negotiation/Review: negotiation
  Closed Won: won
"""


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8-sig") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def run(*args: str) -> dict[str, Any]:
    out = StringIO()
    call_command("import", "salesforce", *args, "--as", "admin", "--json", stdout=out)
    return json.loads(out.getvalue())


def test_opportunities_and_history_import_all_or_nothing(
    org: dict[str, Any], tmp_path: Path
) -> None:
    opps = write(tmp_path, "opps.csv", OPPORTUNITIES)
    history = write(tmp_path, "history.csv", HISTORY)
    mapping = write(tmp_path, "mapping.yaml", MAPPING)
    report = run(str(opps), "--history", str(history), "--mapping", str(mapping))
    assert (report["new"], report["already_imported"]) == (4, 0)
    assert report["created"]["opportunities"] == 4
    assert report["created"]["accounts"] == 4
    a2 = Opportunity.objects.get(name="国网ERP二期")
    assert (a2.stage.key, a2.status, a2.amount) == ("negotiation", "open", Decimal("3500000.00"))
    steps = list(
        OpportunityHistory.objects.filter(opportunity=a2)
        .order_by("valid_from", "id")
        .values_list("stage__key", "amount", "changed")
    )
    # The repeated save is gone; the amount change stays as its own row.
    assert [(s, str(a)) for s, a, _c in steps] == [
        ("discover", "3000000.00"),
        ("discover", "3500000.00"),
        ("intent", "3500000.00"),
        ("negotiation", "3500000.00"),
    ]
    assert steps[1][2] == ["amount"]
    won = Opportunity.objects.get(name="中粮集团预算")
    assert (won.stage.key, won.status, won.closed_on) == ("closed", "won", dt.date(2026, 10, 15))
    lost = Opportunity.objects.get(name="招商局HR")
    assert (lost.stage.key, lost.status) == ("project", "lost")
    assert caches_verify() == []
    assert ExternalId.objects.filter(source="salesforce", kind="opportunity").count() == 4

    # The same files again: nothing new, nothing changed.
    again = run(str(opps), "--history", str(history), "--mapping", str(mapping))
    assert (again["new"], again["already_imported"], again["updated"]) == (0, 4, 0)
    assert Opportunity.objects.count() == 4


def test_a_bad_file_imports_nothing_and_lists_every_problem(
    org: dict[str, Any], tmp_path: Path
) -> None:
    bad = OPPORTUNITIES.replace("2026/12/31", "31.31.2026").replace(
        "seller,Negotiation", "nobody,Negotiation"
    )
    opps = write(tmp_path, "opps.csv", bad, encoding="gb18030")  # as Excel on Chinese Windows
    with pytest.raises(CommandError) as refused:
        call_command("import", "salesforce", str(opps), "--as", "admin", stdout=StringIO())
    lines = str(refused.value).splitlines()
    assert lines == [
        "2 problems in the file; nothing was imported.",
        "opps row 2, Close Date: “31.31.2026” not a date (write it as 2026-03-01)",
        "opps row 3, owner: “nobody” no loudou user by this name: map it in the mapping file's "
        "owners, or give a default owner",
    ]
    assert Opportunity.objects.count() == 0

    out = StringIO()
    with pytest.raises(CommandError):
        call_command("import", "salesforce", str(opps), "--as", "admin", "--json", stdout=out)
    report = json.loads(out.getvalue())
    assert [(p["row"], p["column"], p["value"]) for p in report["problems"]] == [
        (2, "Close Date", "31.31.2026"),
        (3, "owner", "nobody"),
    ]
    assert (report["encodings"], report["deals_in_file"]) == (["gb18030"], 3)


def test_the_next_import_maps_stages_as_the_last_one_did(
    org: dict[str, Any], tmp_path: Path
) -> None:
    """Stages mapped by probability would move when a file's probabilities move; the mapping a
    real import used is remembered for the next import from the same source."""
    first = "\n".join(
        [
            "Opportunity ID,Opportunity Name,Account Name,Opportunity Owner,Stage,Probability (%),"
            "Amount,Close Date,Created Date",
            "006B1,甲,甲公司,seller,Technical Review,20,100,2026/12/31,2026-09-01",
        ]
    )
    report = run(str(write(tmp_path, "a.csv", first)), "--dry-run")
    assert (report["mapping"]["Technical Review"], report["mapping_how"]["Technical Review"]) == (
        "intent",
        "probability 20 %",
    )
    run(str(write(tmp_path, "a.csv", first)))
    # The same stage now carries 75 %: by probability it would go to another stage.
    moved = first.replace("Technical Review,20", "Technical Review,75")
    report = run(str(write(tmp_path, "b.csv", moved)))
    assert (report["mapping"]["Technical Review"], report["mapping_how"]["Technical Review"]) == (
        "intent",
        "last import",
    )
    assert Opportunity.objects.get(name="甲").stage.key == "intent"
