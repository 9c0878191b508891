"""Helpers for the CRM import tests: writing export files as the CRMs write them (CSV in a given
encoding, XLSX with typed cells), running `loudou import` as a user, and reading back what was
written (a deal's state, its history rows, the size of every table an import writes)."""

import datetime as dt
import json
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from loudou.core.models import AuditEvent
from loudou.customers.models import Account, Contact
from loudou.interop.models import ExternalId
from loudou.pipeline.models import Opportunity, OpportunityHistory


def at(*parts: int) -> dt.datetime:
    """An aware datetime in the installation's time zone (what a file's naive times mean)."""
    return timezone.make_aware(dt.datetime(*parts), timezone.get_current_timezone())  # type: ignore[misc]


def write(tmp_path: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / name
    path.write_bytes(text.encode(encoding))
    return path


def write_xlsx(path: Path, sheets: dict[str, list[list[Any]]]) -> Path:
    """A workbook with one sheet per entry (header row first), cells typed as given: dates and
    datetimes become Excel dates, numbers numbers."""
    from openpyxl import Workbook

    book = Workbook()
    book.remove(book.active)
    for name, rows in sheets.items():
        sheet = book.create_sheet(name)
        for row in rows:
            sheet.append(row)
    book.save(path)
    return path


def run_import(fmt: str, *args: str, user: str = "admin") -> dict[str, Any]:
    """`loudou import FMT ARGS --as USER --json`: the report."""
    out = StringIO()
    call_command("import", fmt, *args, "--as", user, "--json", stdout=out)
    report: dict[str, Any] = json.loads(out.getvalue())
    report.pop("seconds", None)
    return report


def refused_import(fmt: str, *args: str, user: str = "admin") -> tuple[dict[str, Any], str]:
    """An import that must fail: (the JSON report printed, if any; the error message)."""
    out = StringIO()
    with pytest.raises(CommandError) as error:
        call_command("import", fmt, *args, "--as", user, "--json", stdout=out)
    text = out.getvalue()
    return (json.loads(text) if text else {}), str(error.value)


def problems(report: dict[str, Any]) -> list[tuple[int, str, str, str]]:
    """The report's problems as (row, column, value, reason)."""
    return [(p["row"], p["column"], p["value"], p["reason"]) for p in report["problems"]]


def deal(name: str) -> tuple[Any, ...]:
    """(stage key, status, amount as text, close date, closed_on, owner, account) of a deal."""
    opp = Opportunity.objects.select_related("stage", "owner", "account").get(name=name)
    return (
        opp.stage.key,
        opp.status,
        str(opp.amount),
        opp.close_date,
        opp.closed_on,
        opp.owner.username,
        opp.account.name,
    )


def history(name: str) -> list[tuple[str, str, dt.datetime]]:
    """A deal's history rows, oldest first: (stage key, status, valid_from)."""
    rows = OpportunityHistory.objects.filter(opportunity__name=name).order_by("valid_from", "id")
    return list(rows.values_list("stage__key", "status", "valid_from"))


def counts() -> dict[str, int]:
    """How many rows each table an import writes holds (a refused import changes none)."""
    return {
        "opportunities": Opportunity.objects.count(),
        "history": OpportunityHistory.objects.count(),
        "accounts": Account.objects.count(),
        "contacts": Contact.objects.count(),
        "external_ids": ExternalId.objects.count(),
        "audit": AuditEvent.objects.count(),
    }


def same_report(dry: dict[str, Any], real: dict[str, Any]) -> None:
    """A dry run's report is the real run's, but for the dry_run flag."""
    assert dry["dry_run"] is True and real["dry_run"] is False
    assert {k: v for k, v in dry.items() if k != "dry_run"} == {
        k: v for k, v in real.items() if k != "dry_run"
    }
